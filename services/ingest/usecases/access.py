"""Who is asking: a token's record, and what it may do."""
from __future__ import annotations

from services.ingest.errors import Forbidden, NotAuthenticated
from services.ingest.store import IngestStore


async def authenticate(store: IngestStore, token: str, *, unknown: str = "unknown or missing token") -> dict:
    """The record of a known token; ``NotAuthenticated`` (with the sentence ``unknown``) otherwise."""
    record = await store.find_token(token)
    if record is None:
        raise NotAuthenticated(unknown)
    return record


def require_admin(record: dict, reason: str) -> dict:
    if not record.get("is_admin"):
        raise Forbidden(reason)
    return record


def require_voevent_poster(record: dict) -> dict:
    if not (record.get("is_admin") or record.get("allow_voevents")):
        raise Forbidden("this token may not post VOEvents (an admin token, or one allowed VOEvents, may)")
    return record
