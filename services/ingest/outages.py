"""An outage of the database or the broker under any HTTP request is a 503 with ``Retry-After`` and a
sentence (``usecases.uploads.outage``), in the adapter's format: ``{"error", "status", "retry_after_s"}``
under ``/api/``, one line of text elsewhere; never a bare 500."""
from __future__ import annotations

import logging

from aiohttp import web

from services.ingest.http_render import plain_refusal, problem
from services.ingest.usecases.uploads import outage
from shared.errors import is_infrastructure

log = logging.getLogger(__name__)


@web.middleware
async def outages(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        if not is_infrastructure(exc):
            raise
        log.warning("%s %s answered 503 for an outage: %s: %s", request.method, request.path,
                    type(exc).__name__, exc)
        refusal = outage(exc, "the request was not done: send it again")
        return problem(refusal) if request.path.startswith("/api/") else plain_refusal(refusal)
