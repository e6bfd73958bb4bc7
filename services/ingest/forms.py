"""Reading a posted form for every HTTP adapter: ``TooLarge`` or ``InvalidInput`` with the reason when it
cannot be read."""
from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from services.ingest.deps import DEPS
from services.ingest.errors import InvalidInput, TooLarge
from services.ingest.ratelimit import limit_form_token


async def posted(request: web.Request):
    """The posted form (its fields and files); ``TooManyRequests`` when its hashtag is over its rate limit."""
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge as exc:
        limit_mb = request.app[DEPS].settings.max_upload_mb
        raise TooLarge(f"the request is larger than the limit of {limit_mb:g} MB") from exc
    except (ValueError, HttpProcessingError) as exc:
        raise InvalidInput(f"the form could not be read: {exc}") from exc
    limit_form_token(request, form)
    return form
