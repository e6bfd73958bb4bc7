"""The use case every VOEvent intake calls (HTTP POST, AMQP ``voevent.received.v1``, VTP subscriber).

packet -> taken or ignored (roles, streams) -> already recorded? (duplicate) -> the event created or
merged (compare-and-set on its revision, so concurrent deliveries cannot lose a packet) -> aliases ->
``event.created.v1``/``event.updated.v1``, the alert's photometry for the light curve -> the packet's
outcome recorded -> ``voevent.processed.v1``. Delivering a packet again changes nothing.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from services.ingest.answers import dead_letter_reason
from services.ingest.errors import IngestError, InvalidInput, TooLarge
from services.ingest.event_messages import event_created, event_updated
from services.ingest.ports import EventStore, PacketRecords, Publish, RawDelivery
from services.ingest.voevents.events import Merged, aliases_of, event_id, history_entry, merge, new_event
from services.ingest.voevents.packet import Packet, PacketError, parse_packet
from services.ingest.voevents.policy import VoeventPolicy, describe_angle
from shared.contracts import (
    AlertPhotometryReceivedV1,
    AlertPoint,
    Message,
    VoeventProcessedV1,
)
from shared.errors import PermanentError, TransientError

log = logging.getLogger(__name__)
ROUTING_KEY = "voevent.received.v1"
VIA_HEADER = "x-cpcs-via"
_ATTEMPTS = 20


@dataclass(frozen=True)
class Outcome:
    packet_ivorn: str
    role: str
    outcome: str  # created, updated, recorded_without_target, duplicate, ignored
    reason: str
    event: dict | None
    event_created: bool = False


class VoeventIntake:
    def __init__(self, store: EventStore, log_: PacketRecords, publish: Publish, policy: VoeventPolicy, *,
                 max_packet_bytes: int):
        self.store, self.log, self.publish, self.policy = store, log_, publish, policy
        self.max_packet_bytes = max_packet_bytes

    async def receive(self, data: bytes, *, via: str) -> Outcome:
        """Handle one packet; ``InvalidInput``/``TooLarge`` when it cannot be read."""
        packet = await self.read(data)
        outcome = await self._decide(packet, via)
        event_ivorn = outcome.event["_id"] if outcome.event else None
        # a duplicate is recorded too when no record names it yet: the packet was merged by a delivery
        # that stopped before recording it, and later deliveries should stop at the record
        if outcome.outcome != "duplicate" or await self.log.get(packet.ivorn) is None:
            await self.log.record(packet.ivorn, outcome=outcome.outcome, reason=outcome.reason, event=event_ivorn,
                                  via=via)
        await self.publish(VoeventProcessedV1(
            packet_ivorn=packet.ivorn, via=via, role=packet.role, outcome=outcome.outcome, reason=outcome.reason,
            event_ivorn=event_ivorn, target_usable=outcome.event.get("target_usable", True) if outcome.event else None))
        return outcome

    async def _decide(self, packet: Packet, via: str) -> Outcome:
        ignored = self.policy.ignores(packet.role, packet.ivorn)
        if ignored:
            return Outcome(packet.ivorn, packet.role, "ignored", ignored, None)
        record = await self.log.get(packet.ivorn)
        if record is not None and record.get("done") and record.get("outcome") != "ignored":
            event = await self.store.get_event(record["event"]) if record.get("event") else None
            return Outcome(packet.ivorn, packet.role, "duplicate",
                           f"the packet is already recorded on event {record.get('event')}", event)
        return await self._take(packet, via)

    async def on_delivery(self, delivery: RawDelivery) -> None:
        """AMQP ``voevent.received.v1``: the body is the packet; unreadable ones are dead-lettered."""
        via = str((delivery.headers or {}).get(VIA_HEADER) or "amqp")
        try:
            await self.receive(delivery.body, via=via if via in ("amqp", "vtp") else "amqp")
        except IngestError as exc:
            raise PermanentError(dead_letter_reason(exc)) from exc

    async def read(self, data: bytes) -> Packet:
        if len(data) > self.max_packet_bytes:
            raise TooLarge(f"the packet is {len(data) / 1024:.0f} KiB; the limit is "
                           f"{self.max_packet_bytes / 1024:.0f} KiB")
        try:
            return await asyncio.to_thread(parse_packet, data)
        except PacketError as exc:
            raise InvalidInput(f"not a VOEvent packet we can read: {exc}") from exc

    async def _take(self, packet: Packet, via: str) -> Outcome:
        entry = history_entry(packet, self.policy, via=via, received_at=datetime.now(UTC))
        for _ in range(_ATTEMPTS):
            current = await self._known_event(packet)
            if current is None:
                doc = new_event(packet, entry, alert_id=await self.store.next_alert_id(),
                                now=datetime.now(UTC))
                try:
                    await self.store.insert_event(doc)
                except DuplicateKeyError:  # another delivery of this transient created it just now
                    continue
                return await self._finish(packet, doc, created=True)
            merged = merge(current, packet, entry, now=datetime.now(UTC))
            if merged is None:
                return await self._finish(packet, current, created=False)
            if await self.store.replace_event(merged.doc, revision=current.get("revision")):
                return await self._finish(packet, merged.doc, created=False, merged=merged)
        raise TransientError(f"event of {packet.ivorn} kept changing under {_ATTEMPTS} attempts")

    async def _known_event(self, packet: Packet) -> dict | None:
        names = [event_id(packet), packet.ivorn, *(c.ivorn for c in packet.citations)]
        known = await self.store.events_known_as(names)
        for name in names:
            if name in known:
                return await self.store.get_event(known[name])
        return None

    async def _finish(self, packet: Packet, doc: dict, *, created: bool, merged: Merged | None = None) -> Outcome:
        held = await self.store.add_aliases(doc["_id"], aliases_of(packet))
        if held:
            log.info("aliases of %s already name other events: %s", packet.ivorn, held)
        changed = created or merged is not None
        for message in self._messages(packet, doc, created=created, merged=merged):
            await self.publish(message)
        if not changed:
            return Outcome(packet.ivorn, packet.role, "duplicate",
                           f"the packet is already recorded on event {doc['_id']}", doc)
        usable = doc.get("target_usable", True)
        label = ("created" if created else "updated") if usable else "recorded_without_target"
        return Outcome(packet.ivorn, packet.role, label, _reason(packet, doc, created, merged, self.policy),
                       doc, event_created=created)

    def _messages(self, packet: Packet, doc: dict, *, created: bool, merged: Merged | None) -> list[Message]:
        messages: list[Message] = []
        if created:
            messages.append(event_created(doc))
        elif merged is not None:
            messages.append(event_updated(doc, packet_ivorn=packet.ivorn, position_changed=merged.position_changed))
        if packet.photometry and packet.observed_mjd is not None:
            # sent again by a delivery that finds the packet merged but not yet recorded (a crash in
            # between, or a concurrent delivery): the light curve stores points idempotently by id
            messages.append(AlertPhotometryReceivedV1(
                event_ivorn=doc["_id"], packet_ivorn=packet.ivorn, survey=packet.survey,
                points=[AlertPoint(mjd=packet.observed_mjd, mag=m.mag, mag_err=m.mag_err, band=m.band)
                        for m in packet.photometry]))
        return messages


def _reason(packet: Packet, doc: dict, created: bool, merged: Merged | None, policy: VoeventPolicy) -> str:
    if not doc.get("target_usable", True):
        verb = "new event" if created else "packet added to event"
        return f"{verb} {doc['_id']}, recorded without a photometry target: {doc.get('no_target_reason')}"
    where = (f"RA {doc['ra_deg']:.5f}, Dec {doc['dec_deg']:+.5f} (error circle "
             f"{describe_angle(doc['error_radius_deg']) if doc.get('error_radius_deg') else 'not given'})")
    if created:
        return f"new event {doc['_id']} at {where}"
    own = policy.target_problem(packet)
    if merged is not None and merged.position_changed:
        return f"event {doc['_id']} refined to {where} by this packet"
    note = f"; this packet's own position is not usable: {own}" if own else ""
    return f"packet added to event {doc['_id']}, whose position stays {where} from {doc.get('position_from')}{note}"
