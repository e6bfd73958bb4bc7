"""Lightcurve's own copy of the events: what its pages show, kept from ``event.created.v1`` and
``event.updated.v1`` (collections ``lightcurve_events`` and ``lightcurve_aliases``).

Messages may come in any order and more than once: a message is applied when its ``revision`` is at
least the stored one (so a late ``event.created.v1`` cannot undo an ``event.updated.v1``, and a
replay of the same revision writes the same values). A point calibrated for an event not seen yet
(``observation.calibrated.v1`` carries its IVORN and position) leaves a minimal copy, revision -1,
which the event's own message replaces. Aliases are kept first come, first held, as ingest keeps them.
"""
from __future__ import annotations

import re

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.lightcurve.ports import EventCopyStore
from shared.contracts import EventCreatedV1, EventRef, EventUpdatedV1, LightcurveEventStoredV1
from shared.db import IndexSpec, asc
from shared.errors import TransientError

INDEXES = [IndexSpec("lightcurve_events", asc("alert_id")), IndexSpec("lightcurve_aliases", asc("event"))]
MINIMAL_REVISION = -1
_ATTEMPTS = 10


def projection(message: EventCreatedV1 | EventUpdatedV1) -> dict:
    return {"_id": message.ivorn, "alert_id": message.alert_id, "name": message.name,
            "aliases": list(message.aliases), "ra_deg": message.ra_deg, "dec_deg": message.dec_deg,
            "error_radius_deg": message.error_radius_deg, "target_usable": message.target_usable,
            "no_target_reason": message.no_target_reason, "source": message.source, "url": message.url,
            "n_packets": message.n_packets, "published": message.published, "revision": message.revision}


def minimal_projection(ref: EventRef) -> dict:
    return {"_id": ref.ivorn, "alert_id": None, "name": None, "aliases": [], "ra_deg": ref.ra_deg,
            "dec_deg": ref.dec_deg, "error_radius_deg": None, "target_usable": True, "no_target_reason": None,
            "source": "", "url": "", "n_packets": 0, "published": None, "revision": MINIMAL_REVISION}


class EventCopyKeeper:
    """The handler of ``event.created.v1``/``event.updated.v1``: the revision rule over a store of
    copies (``services.lightcurve.ports.EventCopyStore``; :class:`EventCopies` is the one in MongoDB)."""

    def __init__(self, copies: EventCopyStore):
        self.copies = copies

    async def on_event_message(self, message: EventCreatedV1 | EventUpdatedV1) -> list[LightcurveEventStoredV1]:
        await self.copies.hold_aliases(message.ivorn, message.aliases)
        applied = await self._apply(projection(message))
        return [LightcurveEventStoredV1(event_ivorn=message.ivorn, revision=message.revision, applied=applied)]

    async def _apply(self, doc: dict) -> bool:
        for _ in range(_ATTEMPTS):
            current = await self.copies.find_revision(doc["_id"])
            if current is None:
                if await self.copies.insert(doc):
                    return True
                continue
            if current.get("revision", MINIMAL_REVISION) > doc["revision"]:
                return False  # a newer revision is stored already
            if await self.copies.replace_at(doc, current.get("revision")):
                return True
        raise TransientError(f"the copy of event {doc['_id']} kept changing under {_ATTEMPTS} attempts")


#: How many IVORNs :meth:`EventCopies.note` remembers as copied (then it starts again from none).
KNOWN_MAX = 100_000


class EventCopies:
    def __init__(self, db: AsyncDatabase):
        self.events, self.aliases = db.lightcurve_events, db.lightcurve_aliases
        # the IVORNs this process saw copied: copies are never deleted, so a point of a known event
        # needs no look-up (one round trip less per point)
        self._known: set[str] = set()

    def _remember(self, ivorn: str) -> None:
        if len(self._known) >= KNOWN_MAX:
            self._known.clear()
        self._known.add(ivorn)

    async def on_event_message(self, message: EventCreatedV1 | EventUpdatedV1) -> list[LightcurveEventStoredV1]:
        return await EventCopyKeeper(self).on_event_message(message)

    async def note(self, ref: EventRef) -> None:
        """An event known only from a point's message: keep its IVORN and position until its own message."""
        if ref.ivorn in self._known:
            return
        if await self.events.find_one({"_id": ref.ivorn}, {"_id": 1}) is None:
            try:
                await self.events.insert_one(minimal_projection(ref))
            except DuplicateKeyError:
                pass  # its own message (or another point) came meanwhile
        self._remember(ref.ivorn)

    async def find_revision(self, ivorn: str) -> dict | None:
        """The stored copy's revision (``{"_id", "revision"}``), None when there is no copy."""
        return await self.events.find_one({"_id": ivorn}, {"revision": 1})

    async def insert(self, doc: dict) -> bool:
        """Insert a first copy; False when one was inserted meanwhile."""
        try:
            await self.events.insert_one(doc)
        except DuplicateKeyError:
            return False
        self._remember(doc["_id"])
        return True

    async def replace_at(self, doc: dict, revision: int | None) -> bool:
        """Replace the copy if it still has ``revision`` (compare-and-set); False when it changed."""
        result = await self.events.replace_one({"_id": doc["_id"], "revision": revision}, doc)
        return result.matched_count == 1

    async def hold_aliases(self, ivorn: str, aliases: list[str]) -> None:
        docs = [{"_id": a, "event": ivorn} for a in dict.fromkeys(aliases) if a != ivorn]
        if not docs:
            return
        try:
            await self.aliases.insert_many(docs, ordered=False)
        except BulkWriteError as exc:  # an alias held already (by this event, or first by another) stays
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def find(self, *, ivorn: str | None = None, alert_id: int | None = None) -> dict | None:
        """By IVORN or any alias of it (packet IVORNs, ``Gaia16aac``), or by the numeric id."""
        if ivorn is None:
            return await self.events.find_one({"alert_id": alert_id})
        event = await self.events.find_one({"_id": ivorn})
        if event is None:
            alias = await self.aliases.find_one({"_id": ivorn})
            event = await self.events.find_one({"_id": alias["event"]}) if alias else None
        return event

    async def newest_first(self, *, offset: int, limit: int) -> list[dict]:
        """Events with their numeric id, newest first (a minimal copy waits for its event's message)."""
        return await (self.events.find({"alert_id": {"$ne": None}}).sort("alert_id", -1).skip(offset).limit(limit)
                      .to_list(None))

    @staticmethod
    def listing_match(q: str, ivorns: list[str] | None) -> dict:
        """The filter of the events list: events with their numeric id, whose IVORN, name or an alias holds
        ``q`` (any case), among ``ivorns`` when given."""
        match: dict = {"alert_id": {"$gt": 0}}  # ids count from 1; a minimal copy has none
        if q:
            pattern = {"$regex": re.escape(q), "$options": "i"}
            match["$or"] = [{"_id": pattern}, {"name": pattern}]
        if ivorns is not None:
            match["_id"] = {"$in": ivorns}
        return match

    async def listing_count(self, match: dict) -> int:
        """By an aggregation's ``$count``: ``count_documents`` is slow on nx-27017 (it groups every document)."""
        result = await (await self.events.aggregate([{"$match": match}, {"$count": "n"}])).to_list(None)
        return int(result[0]["n"]) if result else 0

    async def listing_page(self, match: dict, offset: int, limit: int, ascending: bool) -> list[dict]:
        order = 1 if ascending else -1
        return await self.events.find(match).sort("alert_id", order).skip(offset).limit(limit).to_list(None)

    async def listing_keys(self, match: dict) -> list[dict]:
        """Only the IVORN and numeric id of every matching event (to order them by another collection)."""
        return await self.events.find(match, {"alert_id": 1}).to_list(None)

    async def count(self) -> int:
        return await self.events.count_documents({})
