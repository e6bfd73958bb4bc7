"""The objects ingest's request handlers need, built once by the composition root."""
from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from services.ingest.results import ResultWaiters
from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore
from services.ingest.usecases.uploads import Uploads


@dataclass
class IngestDeps:
    settings: IngestSettings
    store: IngestStore
    uploads: Uploads
    waiters: ResultWaiters
    publish: object  # async (message, *, correlation_id=None) -> None
    broker: object | None = None


DEPS = web.AppKey("deps", IngestDeps)


def token_from(request: web.Request, form=None) -> str:
    """The hashtag from the form, the query string or the cookie, in that order."""
    for source in (form or {}, request.query, request.cookies):
        value = source.get("hashtag")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""
