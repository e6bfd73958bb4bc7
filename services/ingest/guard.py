"""The last line against a 5xx from user input: a request that cannot be read (a broken multipart part
header), a number too large for the database (beyond 64 bits), or JSON nested too deep becomes
``InvalidInput`` with the reason, answered in the adapter's format: ``{"error", "status"}`` under
``/api/``, one line of text elsewhere (the CPCS endpoints, the pages)."""
from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from services.ingest.errors import IngestError, InvalidInput
from services.ingest.http_render import plain_refusal, problem


def refusal_of(exc: BaseException) -> IngestError | None:
    """The refusal an unreadable request deserves, or None for an error that is not the request's fault."""
    if isinstance(exc, HttpProcessingError):
        return InvalidInput(f"the request could not be read: {exc.message or type(exc).__name__}")
    if isinstance(exc, OverflowError):
        return InvalidInput("a number in the request is too large (at most 2**63 - 1)")
    if isinstance(exc, RecursionError):
        return InvalidInput("the JSON is nested too deeply")
    return None


@web.middleware
async def unreadable_requests(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (HttpProcessingError, OverflowError, RecursionError) as exc:
        refusal = refusal_of(exc)
        assert refusal is not None
        return problem(refusal) if request.path.startswith("/api/") else plain_refusal(refusal)
