"""Recalibration: a stored upload calibrated again; the previous calibration becomes history.

A dry run computes and reports (``recalibration.done.v1`` with outcome ``previewed``) and stores
nothing. Applied, the new calibration replaces the current one (the old one is kept in
``calibration_history``) and ``observation.calibrated.v1`` updates the light curve. A recalibration
that fails keeps the current calibration and records the failed attempt.
"""
from __future__ import annotations

from services.calibration import work
from services.calibration.handlers import Calibrator, _revive, _stored
from services.calibration.ports import CalibrationStorage
from shared.contracts import (
    CalibrationSummary,
    Message,
    ObservationCalibratedV1,
    RecalibrationDoneV1,
    RecalibrationRequestedV1,
)


class Recalibrator:
    def __init__(self, calibrator: Calibrator):
        self.calibrator = calibrator
        self.store: CalibrationStorage = calibrator.deps.store

    async def on_recalibration_requested(self, message: RecalibrationRequestedV1) -> list[Message]:
        current = await self.store.find(message.observation_id)
        try:
            work.params_with(message.param_overrides)
        except ValueError as exc:
            return [self._done(message, "failed", current, None, str(exc))]
        if current is not None and current.get("recalibration_id") == message.recalibration_id:
            return [_revive(m) for m in current["messages"]]  # applied already: same answer again
        image = current is not None and current.get("catalogue_file_id")
        if image:  # an image: calibrate its measured catalogue again, with its forced photometry
            data = await self.store.catalogue_bytes(current["catalogue_file_id"])
            message = message.model_copy(update={"match_radius_arcsec": message.match_radius_arcsec
                                                 or current.get("match_radius_arcsec")})
        else:
            data = await self.store.upload_bytes(message.file_id, "uploads")
        if data is None:
            return [self._done(message, "failed", current, None, "the stored upload is gone (point deleted?)")]
        outgoing, result = await self.calibrator.compute(message, data, message.param_overrides,
                                                         forced=current.get("forced_target") if image else None)
        if message.dry_run:
            return [self._done(message, "previewed", current, result, result.get("reason"))]
        if not isinstance(outgoing, ObservationCalibratedV1):
            await self.store.record_attempt(message.observation_id, message.recalibration_id, result)
            return [self._done(message, "failed", current, result, result.get("reason"))]
        done = self._done(message, "applied", current, result, None)
        await self.store.replace_current(
            {"_id": message.observation_id, "followup_id": message.followup_id, "event_ivorn": message.event.ivorn,
             "dry_run": False, "outcome": outgoing.routing_key, "message": _stored(outgoing), "result": result,
             "recalibration_id": message.recalibration_id, "messages": [_stored(outgoing), _stored(done)],
             **{k: current[k] for k in ("catalogue_file_id", "forced_target", "match_radius_arcsec")
                if current and k in current}},
            reason=message.reason)
        return [outgoing, done]

    @staticmethod
    def _done(message: RecalibrationRequestedV1, outcome: str, before: dict | None, after: dict | None,
              reason: str | None) -> RecalibrationDoneV1:
        return RecalibrationDoneV1(
            recalibration_id=message.recalibration_id, observation_id=message.observation_id,
            followup_id=message.followup_id, dry_run=message.dry_run, outcome=outcome, reason=reason,
            before=_summary(before["result"]) if before and before.get("result") else None,
            after=_summary(after) if after else None, params_hash=(after or {}).get("params_hash"))


def _summary(result: dict) -> CalibrationSummary:
    return CalibrationSummary(**{k: v for k, v in result.items() if k in CalibrationSummary.model_fields})
