"""Reading a request's body for every HTTP adapter: a posted form, raw bytes or JSON; ``TooLarge`` or
``InvalidInput`` with the reason when it cannot be read."""
from __future__ import annotations

import json

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from services.ingest.errors import InvalidInput
from services.ingest.guard import FORM_ERRORS, form_refusal, too_large
from services.ingest.ratelimit import limit_form_token


async def posted(request: web.Request):
    """The posted form (its fields and files); ``TooManyRequests`` when its hashtag is over its rate limit."""
    refusal = await form_refusal(request)
    if refusal is not None:
        raise refusal
    form = await request.post()
    limit_form_token(request, form)
    return form


async def body_bytes(request: web.Request) -> bytes:
    """The raw body; refused when it is over the size limit or does not decompress as its encoding says."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large(request) from None
    except (RequestPayloadError, *FORM_ERRORS) as exc:
        raise InvalidInput(f"the request's body could not be read: {str(exc)[:200] or type(exc).__name__}") from exc


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


async def json_body(request: web.Request):
    """The body as JSON (strict: no NaN or Infinity), decoded with the request's charset (UTF-8 if none)."""
    raw = await body_bytes(request)
    charset = request.charset or "utf-8"
    try:
        text = raw.decode(charset)
    except LookupError:
        raise InvalidInput(f"the request's charset {charset[:40]!r} is not one this server knows") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"the body is not valid {charset[:40]} text") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidInput("the JSON is nested too deeply") from None
    except ValueError as exc:
        raise InvalidInput(f"the body is not JSON: {str(exc)[:200]}") from None
