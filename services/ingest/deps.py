"""The objects ingest's request handlers need, built once by the composition root."""
from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from services.ingest.errors import Forbidden
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


#: Methods that change nothing: a token from a cookie alone is enough for them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE_ONLY = ("the hashtag came only from a cookie, which any other site can make a browser send: put it in "
               "the form's or query's hashtag field (or an Authorization: Bearer header), or use the page's form")


def token_from(request: web.Request, form=None) -> str:
    """The hashtag from the form, the query string or the cookie, in that order. A state-changing request
    (POST, DELETE, ...) whose hashtag comes only from the cookie is refused (``Forbidden``, 403): a
    cookie goes with every request a browser makes, including a forged one from another site."""
    for source in (form or {}, request.query):
        value = source.get("hashtag")
        if isinstance(value, str) and value.strip():
            return value.strip()
    cookie = request.cookies.get("hashtag", "").strip()
    if cookie and request.method not in SAFE_METHODS:
        raise Forbidden(COOKIE_ONLY)
    return cookie
