"""Astrometry's handler: an uploaded image gets a WCS checked against reference stars, or a reason."""
from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from services.astrometry import work
from services.astrometry.science import AstrometryParams, SolveAttempt, header_rejection
from services.astrometry.science.solver import DEFAULT_PARAMS
from shared.contracts import AstrometrySummary, ImageReceivedV1, ImageSolvedV1, Message
from shared.errors import TransientError
from shared.fitsimage import ImageRefused
from shared.imaging import declared, failed, read_upload, upload_fields
from shared.pools import run_in_pool

log = logging.getLogger(__name__)
ASTROMETRIC_SURVEYS = ("GaiaDR3", "GaiaDR2")  # preferred, in this order; else the survey with most stars


@dataclass
class AstrometryDeps:
    db: object  # AsyncDatabase (the uploads' GridFS buckets and the reference store live in it)
    uploads: object  # GridFS bucket "uploads"
    scratch: object  # GridFS bucket "scratch"
    refcat: object  # RefcatStore
    executor: Executor | None


def astrometric_reference(references: list) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """Positions (and a magnitude to rank them) from the best astrometric survey in the cone."""
    if not references:
        return None
    by_name = {r.survey: r for r in references}
    chosen = next((by_name[s] for s in ASTROMETRIC_SURVEYS if s in by_name), None)
    chosen = chosen or max(references, key=len)
    band = next((b for b in ("G", "r", "R", "V") if b in chosen.mags), next(iter(chosen.mags), None))
    return chosen.ra_deg, chosen.dec_deg, None if band is None else chosen.mags[band]


class Solver:
    def __init__(self, deps: AstrometryDeps, params: AstrometryParams = DEFAULT_PARAMS):
        self.deps = deps
        self.params = params

    async def _run(self, fn, *args, **kwargs):
        return await run_in_pool(self.deps.executor, fn, *args, **kwargs)

    async def _references(self, attempt: SolveAttempt):
        """The astrometric reference stars of an attempt's cone (None when the store has none there)."""
        try:
            references = await self.deps.refcat.cone(attempt.centre_ra_deg, attempt.centre_dec_deg,
                                                     attempt.cone_radius_deg)
        except Exception as exc:
            raise TransientError(f"reference catalogue store unavailable: {exc}") from exc
        return astrometric_reference(references)

    async def on_image_received(self, message: ImageReceivedV1) -> list[Message]:
        """Plan from the message's header record, solve (the frame read once), and say how it went.

        A message without the record (an older ingest) still works: the header is standardised here
        without the observatory record, and a log line says so.
        """
        data = await read_upload(self.deps, message)
        if data is None:
            return []
        record = message.observation
        hint = (message.event.ra_deg, message.event.dec_deg)
        try:
            shape = None if record is None else work.shape_of(record)
            if shape is None:
                if record is None:
                    log.warning("observation %s: image.received.v1 has no standardised header (an older ingest): "
                                "standardising it here without the observatory record", message.observation_id)
                record, shape = await self._run(work.inspect, data, message.extension, record, upload_fields(message))
            plan = work.plan(record, shape, *hint, params=self.params)
            result = await self._solve(message, data, record, plan)
        except ImageRefused as exc:
            return [failed(message, "astrometry", str(exc))]
        if result.get("status") != "solved":
            return [failed(message, "astrometry", result.get("reason") or "the astrometry did not solve")]
        if result.get("target_outside"):
            log.info("observation %s solved but %s", message.observation_id, result["target_outside"])
            return [failed(message, "astrometry", result["target_outside"])]
        summary = AstrometrySummary(**declared(AstrometrySummary, result))
        log.info("observation %s solved: rms %.3f arcsec, %s stars, header WCS %s", message.observation_id,
                 summary.rms_arcsec or -1, summary.n_stars, summary.header_wcs)
        return [ImageSolvedV1(**message.model_dump(exclude={"message_id", "occurred_at", "observation"}),
                              observation=record, wcs_header=_plain(result["wcs_header"]), astrometry=summary)]

    async def _solve(self, message: ImageReceivedV1, data: bytes, record, plan: list[SolveAttempt]) -> dict:
        """The hinted attempt first; the wide ones (their larger cones read only then) on the frame it read."""
        started = time.monotonic()
        first, rest = plan[:1], plan[1:]
        target = dict(target_ra_deg=message.event.ra_deg, target_dec_deg=message.event.dec_deg)
        result = await self._run(work.run_solve, data, message.extension, record, attempts=[a.to_dict() for a in first],
                                 references=[await self._references(a) for a in first], keep_frame=bool(rest),
                                 params=self.params, **target)
        frame = result.pop("frame", None)
        if result.get("status") != "solved" and result.get("retryable") and rest:
            # the hinted scale failed: the wide range (around the event, then the header pointing)
            left = self.params.total_time_limit_s - (time.monotonic() - started)
            result = await self._run(work.run_solve, data if frame is None else frame, message.extension, record,
                                     attempts=[a.to_dict() for a in rest],
                                     references=[await self._references(a) for a in rest], **target,
                                     earlier=result.get("attempts"), budget_s=left,
                                     header_rejected=header_rejection(result.get("notes")), params=self.params)
        return result


def _plain(header: dict) -> dict:
    return {str(k): v for k, v in header.items()
            if isinstance(v, (int, float, str, bool)) and k not in ("COMMENT", "HISTORY", "")}

