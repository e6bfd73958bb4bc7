"""Recalibration requests: choose stored points, send each to calibration, follow the outcomes."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from services.ingest.errors import InvalidInput, NotFound
from services.ingest.store import IngestStore, now
from services.ingest.usecases.uploads import observatory_filters
from shared.calibration_params import CalibrationParameters
from shared.contracts import EventRef, ObservatoryRef, RecalibrationDoneV1, RecalibrationRequestedV1

STORED = ["calibrated", "limit"]


@dataclass(frozen=True)
class Selection:
    """Which stored points to recalibrate; at least one criterion (all given must hold)."""

    followup_ids: list[int] = field(default_factory=list)
    event_ivorn: str | None = None
    observatory_id: int | None = None
    mjd_min: float | None = None
    mjd_max: float | None = None

    def query(self) -> dict:
        query: dict = {"status": {"$in": STORED}}
        if self.followup_ids:
            query["followup_id"] = {"$in": [int(i) for i in self.followup_ids]}
        if self.event_ivorn:
            query["event_ivorn"] = self.event_ivorn
        if self.observatory_id is not None:
            query["observatory_id"] = int(self.observatory_id)
        if self.mjd_min is not None or self.mjd_max is not None:
            query["mjd"] = {k: v for k, v in (("$gte", self.mjd_min), ("$lte", self.mjd_max)) if v is not None}
        return query

    def is_empty(self) -> bool:
        return not (self.followup_ids or self.event_ivorn or self.observatory_id is not None
                    or self.mjd_min is not None or self.mjd_max is not None)


def selection_from(body: dict) -> Selection:
    try:
        observatory_id = body.get("observatory_id")
        selection = Selection(followup_ids=[int(i) for i in body.get("followup_ids") or []],
                              event_ivorn=body.get("event") or None,
                              observatory_id=None if observatory_id is None else int(observatory_id),
                              mjd_min=None if body.get("mjd_min") is None else float(body["mjd_min"]),
                              mjd_max=None if body.get("mjd_max") is None else float(body["mjd_max"]))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the selection is malformed: {exc}") from exc
    if selection.is_empty():
        raise InvalidInput("choose the points: followup_ids, event, observatory_id, mjd_min/mjd_max")
    return selection


def check_overrides(overrides: dict) -> dict:
    """Calibration parameter overrides calibration will accept, or ``InvalidInput`` with the reason."""
    try:
        CalibrationParameters.with_overrides(overrides)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    return overrides


class Recalibrations:
    def __init__(self, store: IngestStore, publish):
        self.store, self.publish = store, publish

    @property
    def db(self):
        return self.store.db

    async def request(self, selection: Selection, *, dry_run: bool, param_overrides: dict, reason: str,
                      requested_by: str) -> dict:
        observations = await self.db.observations.find(selection.query()).sort("followup_id", 1).to_list(None)
        recalibration_id = uuid.uuid4().hex
        record = {"_id": recalibration_id, "dry_run": dry_run, "param_overrides": param_overrides,
                  "reason": reason, "requested_by": requested_by, "requested_at": now(),
                  "selection": selection.query(), "followup_ids": [o["followup_id"] for o in observations]}
        await self.db.recalibrations.insert_one(record)
        for obs in observations:
            event = await self.store.find_event(obs["event_ivorn"])
            await self.publish(RecalibrationRequestedV1(
                recalibration_id=recalibration_id, observation_id=obs["_id"], followup_id=obs["followup_id"],
                correlation_id=uuid.uuid4().hex, dry_run=dry_run,
                event=EventRef(ivorn=event["_id"], ra_deg=event["ra_deg"], dec_deg=event["dec_deg"]),
                observatory=ObservatoryRef(id=obs["observatory_id"], name=obs["observatory_name"]),
                file_id=obs["file_id"], filename=obs.get("filename") or "catalogue", mjd=obs["mjd"],
                exptime_s=obs.get("exptime_s"), match_radius_arcsec=obs.get("match_radius_arcsec"),
                force_filter=obs.get("force_filter") or "no", declared_filter=obs.get("declared_filter"),
                observatory_filters=await self._observatory_filters(obs),
                param_overrides=param_overrides, reason=reason))
        return await self.report(recalibration_id)

    async def _observatory_filters(self, obs: dict) -> list[str] | None:
        """The filters the upload was calibrated with (older observations: the observatory's today)."""
        if "observatory_filters" in obs:
            return obs["observatory_filters"]
        observatory = await self.store.get_observatory(obs["observatory_id"])
        return observatory_filters(observatory or {})

    async def on_recalibration_done(self, message: RecalibrationDoneV1) -> None:
        await self.store.put_recalibration_result(
            {"_id": f"{message.recalibration_id}:{message.observation_id}",
             "recalibration_id": message.recalibration_id, **message.model_dump(mode="json")})

    async def report(self, recalibration_id: str) -> dict:
        record = await self.db.recalibrations.find_one({"_id": recalibration_id})
        if record is None:
            raise NotFound(f"there is no recalibration {recalibration_id}")
        results = await self.db.recalibration_results.find({"recalibration_id": recalibration_id}).to_list(None)
        rows = sorted((_row(r) for r in results), key=lambda r: r["followup_id"])
        return {"recalibration_id": recalibration_id, "dry_run": record["dry_run"],
                "param_overrides": record["param_overrides"], "reason": record["reason"],
                "selected": len(record["followup_ids"]), "finished": len(rows),
                "outcomes": {k: sum(r["outcome"] == k for r in rows) for k in ("previewed", "applied", "failed")},
                "points": rows}


def _row(result: dict) -> dict:
    before, after = result.get("before") or {}, result.get("after") or {}
    delta = (after["mag"] - before["mag"]) if after.get("mag") is not None and before.get("mag") is not None else None
    return {"followup_id": result["followup_id"], "outcome": result["outcome"], "reason": result.get("reason"),
            "mag_before": before.get("mag"), "mag_after": after.get("mag"), "delta_mag": delta,
            "filter_before": before.get("filter"), "filter_after": after.get("filter"),
            "params_hash": result.get("params_hash")}
