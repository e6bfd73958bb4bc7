"""Lightcurve's message handlers: a calibrated point joins its event's curve; a deleted one leaves.

Both are taken only for an observation ingest announced, with its follow-up id and event
(``services.lightcurve.observations``); anything else is refused and dead-lettered with the reason."""
from __future__ import annotations

from services.lightcurve.observations import Announcements
from services.lightcurve.ports import PointStore
from services.lightcurve.store import point_doc
from shared.contracts import LightcurveUpdatedV1, ObservationCalibratedV1, ObservationDeletedV1


class PointKeeper:
    def __init__(self, store: PointStore, announcements: Announcements):
        self.store, self.announcements = store, announcements

    async def on_observation_calibrated(self, message: ObservationCalibratedV1) -> list[LightcurveUpdatedV1]:
        if message.dry_run or message.followup_id is None or await self.store.was_deleted(message.followup_id):
            return []
        await self.announcements.check(message.routing_key, observation_id=message.observation_id,
                                       followup_id=message.followup_id, event_ivorn=message.event.ivorn,
                                       observatory_id=message.observatory.id)
        await self.store.copies.note(message.event)  # the curve answers even before the event's own message
        await self.store.upsert_point(point_doc(message))
        return [LightcurveUpdatedV1(event_ivorn=message.event.ivorn, followup_id=message.followup_id,
                                    action="stored")]

    async def on_observation_deleted(self, message: ObservationDeletedV1) -> list[LightcurveUpdatedV1]:
        await self.announcements.check(message.routing_key, observation_id=message.observation_id,
                                       followup_id=message.followup_id, event_ivorn=message.event_ivorn)
        await self.store.delete_point(message.followup_id)
        return [LightcurveUpdatedV1(event_ivorn=message.event_ivorn, followup_id=message.followup_id,
                                    action="removed")]
