"""The last line against a 5xx from user input: a request that cannot be read (a broken multipart body or
part header, an unknown charset, a body that says it is compressed and is not), a number too large for the
database (beyond 64 bits), or JSON nested too deep becomes ``InvalidInput`` (an oversize form ``TooLarge``)
with the reason, answered in the adapter's format: ``{"error", "status"}`` under ``/api/``, one line of text
elsewhere (the CPCS endpoints, the pages).

``readable_forms`` reads a posted form once, before any handler, so that every handler's ``request.post()``
(aiohttp keeps the parsed form) gets a form that could be read; ``unreadable_requests`` maps what is still
raised while a handler reads the request."""
from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from services.ingest.deps import DEPS
from services.ingest.errors import IngestError, InvalidInput, TooLarge
from services.ingest.http_render import plain_refusal, problem

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
#: What aiohttp raises while it parses a form it cannot read (a missing or wrong boundary, an unknown charset
#: or transfer encoding, bad base64, a body cut short, a payload that does not decompress).
FORM_ERRORS = (ValueError, LookupError, RuntimeError, HttpProcessingError, RequestPayloadError)


def _said(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:200] if str(text).strip() else type(exc).__name__


def refusal_of(exc: BaseException) -> IngestError | None:
    """The refusal an unreadable request deserves, or None for an error that is not the request's fault."""
    if isinstance(exc, HttpProcessingError | RequestPayloadError):
        return InvalidInput(f"the request could not be read: {_said(exc)}")
    if isinstance(exc, OverflowError):
        return InvalidInput("a number in the request is too large (at most 2**63 - 1)")
    if isinstance(exc, RecursionError):
        return InvalidInput("the JSON is nested too deeply")
    return None


def answer(request: web.Request, refusal: IngestError) -> web.Response:
    return problem(refusal) if request.path.startswith("/api/") else plain_refusal(refusal)


def too_large(request: web.Request) -> TooLarge:
    deps = request.app.get(DEPS)
    limit = deps.settings.max_upload_mb if deps is not None else request.client_max_size / 1024 / 1024
    return TooLarge(f"the request is larger than the limit of {limit:g} MB")


async def form_refusal(request: web.Request) -> IngestError | None:
    """Read a posted form (kept by aiohttp for the handler); the refusal when it cannot be read."""
    try:
        await request.post()
    except web.HTTPRequestEntityTooLarge:
        return too_large(request)
    except FORM_ERRORS as exc:
        return InvalidInput(f"the form could not be read: {_said(exc)}")
    return None


@web.middleware
async def unreadable_requests(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (HttpProcessingError, RequestPayloadError, OverflowError, RecursionError) as exc:
        refusal = refusal_of(exc)
        assert refusal is not None
        return answer(request, refusal)


@web.middleware
async def readable_forms(request: web.Request, handler) -> web.StreamResponse:
    if request.method in ("POST", "PUT", "PATCH") and request.content_type in FORM_TYPES:
        refusal = await form_refusal(request)
        if refusal is not None:
            return answer(request, refusal)
    return await handler(request)
