"""The messages that tell other services about events: every field their readers show, from ingest's
own event document, so nobody needs to read ingest's ``events``.

``event.created.v1`` may be published again for a known event (``republish_events``, the command
``cpcs republish-events``): a reader that starts with an empty copy (a new lightcurve database, or one
from before it kept its own) gets every event as it is now. Readers upsert by IVORN and keep the
highest ``revision``.
"""
from __future__ import annotations

from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore
from shared.contracts import EventCreatedV1, EventUpdatedV1
from shared.db import make_client
from shared.messaging import Broker


def n_packets(doc: dict) -> int:
    """Alert packets merged into the event (an event typed in by hand has none)."""
    return sum(1 for e in doc.get("history") or () if e.get("packet_ivorn"))


def revision(doc: dict) -> int:
    """0 for an event never revised (typed in by hand, made by the API or the demo)."""
    return int(doc.get("revision") or 0)


def _aliases(doc: dict) -> list[str]:
    return list(doc.get("aliases") or [])


def event_created(doc: dict) -> EventCreatedV1:
    return EventCreatedV1(
        ivorn=doc["_id"], ra_deg=doc.get("ra_deg"), dec_deg=doc.get("dec_deg"), url=doc.get("url") or "",
        source=doc.get("source") or "manual", target_usable=doc.get("target_usable", True),
        no_target_reason=doc.get("no_target_reason"), aliases=_aliases(doc), alert_id=doc.get("alert_id"),
        name=doc.get("name"), published=doc.get("published"), error_radius_deg=doc.get("error_radius_deg"),
        n_packets=n_packets(doc), revision=revision(doc))


def event_updated(doc: dict, *, packet_ivorn: str, position_changed: bool) -> EventUpdatedV1:
    return EventUpdatedV1(
        ivorn=doc["_id"], packet_ivorn=packet_ivorn, ra_deg=doc.get("ra_deg"), dec_deg=doc.get("dec_deg"),
        error_radius_deg=doc.get("error_radius_deg"), position_changed=position_changed,
        target_usable=doc.get("target_usable", True), no_target_reason=doc.get("no_target_reason"),
        aliases=_aliases(doc), n_packets=n_packets(doc), alert_id=doc.get("alert_id"), name=doc.get("name"),
        published=doc.get("published"), url=doc.get("url") or "", source=doc.get("source") or "",
        revision=revision(doc))


async def republish_events(store, publish, *, batch: int = 500) -> int:
    """Publish ``event.created.v1`` for every stored event, oldest first; the number published."""
    count, offset = 0, 0
    while True:
        docs = await store.db.events.find({}).sort("alert_id", 1).skip(offset).limit(batch).to_list(None)
        for doc in docs:
            await publish(event_created(doc))
        count += len(docs)
        offset += batch
        if len(docs) < batch:
            return count


async def republish_all(settings: IngestSettings | None = None) -> int:
    """``republish_events`` on the database and exchange of the settings (``CPCS_*``)."""
    settings = settings or IngestSettings()
    client = make_client(settings.mongo_url.get_secret_value())
    broker = Broker.from_settings(settings)
    await broker.start()
    try:
        return await republish_events(IngestStore(client[settings.mongo_db]), broker.publish)
    finally:
        await broker.close()
        await client.close()
