"""The observations ingest announced: what a result may be about (collection ``lightcurve_observations``).

Ingest announces every stored upload when it hands it on (``upload.received.v1``, ``image.received.v1``)
and every applied recalibration (``recalibration.requested.v1``); lightcurve keeps of each the
observation id, follow-up id, event and observatory. A result (``observation.calibrated.v1``) or a
deletion (``observation.deleted.v1``) is taken only for an observation announced so, and only when it
names the same follow-up id, event and observatory: anything else is refused and dead-lettered with the
reason. A point stored before these records existed stands as its own announcement.

The announcements have a queue of their own (``<exchange>.lightcurve.observations``): an announcement
that does not match its contract is dropped there with a log line (calibration, its consumer,
dead-letters it), and because that queue is not the results' queue, a result may overtake its
announcement: it is refused as a transient error, retried (``CPCS_MAX_RETRIES``) and only then
dead-lettered.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.lightcurve.ports import AnnouncementStore
from shared.contracts import ImageReceivedV1, RecalibrationRequestedV1, UploadReceivedV1
from shared.db import IndexSpec, asc
from shared.errors import NotYet, PermanentError
from shared.messaging import ORIGINAL_KEY_HEADER, Delivery, decode

log = logging.getLogger(__name__)

INDEXES = [IndexSpec("lightcurve_observations", asc("followup_id"))]
#: How many of its latest announcements a process remembers (about 200 bytes each).
RECENT_ANNOUNCEMENTS = 10_000
#: What ingest publishes when an observation is to be calibrated (and so may have a result).
ANNOUNCING_KEYS = ("upload.received.v1", "image.received.v1", "recalibration.requested.v1")
Announcement = UploadReceivedV1 | ImageReceivedV1 | RecalibrationRequestedV1


def announcements_queue(exchange: str) -> str:
    return f"{exchange}.lightcurve.observations"


class NotAnnounced(NotYet):
    """A result for an observation ingest has not announced (yet): the announcement travels on another
    queue and may come later (after an outage, say), so it is waited for (retried with backoff) up to
    ``patience_s`` after the first try, then dead-lettered."""


def record(message: Announcement) -> dict[str, Any]:
    return {"_id": message.observation_id, "followup_id": message.followup_id, "event_ivorn": message.event.ivorn,
            "observatory_id": message.observatory.id, "announced_by": message.routing_key,
            "announced_at": datetime.now(UTC)}


class ObservationRecords:
    """The ``lightcurve_observations`` collection (the ``AnnouncementStore`` of the handlers); a point of
    ``points`` stored before it existed counts as announced."""

    def __init__(self, db: AsyncDatabase):
        self.observations, self.points = db.lightcurve_observations, db.points

    async def announce(self, doc: dict[str, Any]) -> None:
        await self.observations.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def announced(self, observation_id: str) -> dict[str, Any] | None:
        found = await self.observations.find_one({"_id": observation_id})
        if found is not None:
            return found
        point = await self.points.find_one({"observation_id": observation_id},
                                           {"event_ivorn": 1, "observatory_id": 1})
        if point is None:
            return None
        return {"_id": observation_id, "followup_id": point["_id"], "event_ivorn": point["event_ivorn"],
                "observatory_id": point.get("observatory_id"), "announced_by": "points"}


class Announcements:
    """Keeps what ingest announced, and says whether a result may be taken."""

    def __init__(self, store: AnnouncementStore, *, wait_s: float = NotYet.patience_s):
        self.store = store
        self.wait_s = wait_s  # how long a result waits for its announcement before it is refused
        # the announcements this process recorded lately: a result that agrees with one is taken without
        # reading it back; any other (a miss, a disagreement) is judged by the stored record
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()

    async def on_announcement(self, message: Announcement) -> None:
        if message.dry_run or message.followup_id is None:
            return  # a dry run never becomes a point, so there is nothing to trust it with
        doc = record(message)
        await self.store.announce(doc)
        self.recent[doc["_id"]] = doc
        self.recent.move_to_end(doc["_id"])
        while len(self.recent) > RECENT_ANNOUNCEMENTS:
            self.recent.popitem(last=False)

    async def on_delivery(self, delivery: Delivery) -> None:
        """The raw consumer of the announcements' queue: an unreadable announcement is dropped with a log
        line (its own consumer, calibration, dead-letters it with the reason)."""
        key = str((delivery.headers or {}).get(ORIGINAL_KEY_HEADER) or delivery.routing_key)
        try:
            message = decode(key, delivery.body)
        except PermanentError as exc:
            log.info("not keeping an unreadable announcement (calibration dead-letters it): %s", exc)
            return
        if isinstance(message, UploadReceivedV1 | RecalibrationRequestedV1):
            await self.on_announcement(message)

    async def check(self, routing_key: str, *, observation_id: str, followup_id: int, event_ivorn: str,
                    observatory_id: int | None = None) -> None:
        """Raise unless ingest announced this observation with this follow-up id, event (and observatory)."""
        recent = self.recent.get(observation_id)
        if recent is not None and _agrees(recent, followup_id, event_ivorn, observatory_id):
            return
        known = await self.store.announced(observation_id)
        if known is None:
            refusal = NotAnnounced(f"{routing_key} refused: observation {observation_id} (follow-up {followup_id}) "
                                   f"was never announced by ingest, so this result cannot be trusted")
            refusal.patience_s = self.wait_s
            raise refusal
        if known.get("followup_id") != followup_id:
            raise PermanentError(f"{routing_key} refused: observation {observation_id} is follow-up "
                                 f"{known.get('followup_id')}, not {followup_id}")
        if known.get("event_ivorn") != event_ivorn:
            raise PermanentError(f"{routing_key} refused: observation {observation_id} belongs to event "
                                 f"{known.get('event_ivorn')}, not to the unknown event {event_ivorn}")
        if observatory_id is not None and known.get("observatory_id") not in (None, observatory_id):
            raise PermanentError(f"{routing_key} refused: observation {observation_id} was uploaded by "
                                 f"observatory {known.get('observatory_id')}, not {observatory_id}")


def _agrees(known: dict[str, Any], followup_id: int, event_ivorn: str, observatory_id: int | None) -> bool:
    return (known.get("followup_id") == followup_id and known.get("event_ivorn") == event_ivorn
            and (observatory_id is None or known.get("observatory_id") in (None, observatory_id)))
