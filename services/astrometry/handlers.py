"""Astrometry's handler: an uploaded image gets a WCS checked against reference stars, or a reason."""
from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from shared.contracts import ImageReceivedV1, ImageSolvedV1, Message
from shared.errors import TransientError
from shared.fitsimage import ImageRefused
from shared.pools import run_in_pool
from shared.imaging import failed, read_upload, upload_fields
from services.astrometry import work
from services.astrometry.science import AstrometryParams, SolveAttempt, header_rejection

log = logging.getLogger(__name__)
ASTROMETRIC_SURVEYS = ("GaiaDR3", "GaiaDR2")  # preferred, in this order; else the survey with most stars


@dataclass
class AstrometryDeps:
    db: object  # AsyncDatabase: reads the uploaded bytes and the observatory record
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
    def __init__(self, deps: AstrometryDeps, params: AstrometryParams = AstrometryParams()):
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
        data = await read_upload(self.deps, message)
        if data is None:
            return []
        observatory = await self.deps.db.observatories.find_one({"_id": message.observatory.id}) or {}
        upload = upload_fields(message)
        try:
            seen = await self._run(work.inspect, data, message.extension, observatory, upload,
                                   message.event.ra_deg, message.event.dec_deg)
        except ImageRefused as exc:
            return [failed(message, "astrometry", str(exc))]
        plan = [SolveAttempt(**a) for a in seen["attempts"]]
        started = time.monotonic()
        first, rest = plan[:1], plan[1:]
        solve_args = (data, message.extension, observatory, upload)
        target = dict(target_ra_deg=message.event.ra_deg, target_dec_deg=message.event.dec_deg)
        result = await self._run(work.run_solve, *solve_args, attempts=[a.to_dict() for a in first],
                                 references=[await self._references(a) for a in first], **target)
        if result.get("status") != "solved" and result.get("retryable") and rest:
            # the hinted scale failed: the wide range (around the event, then the header pointing)
            left = self.params.total_time_limit_s - (time.monotonic() - started)
            result = await self._run(work.run_solve, *solve_args, attempts=[a.to_dict() for a in rest],
                                     references=[await self._references(a) for a in rest], **target,
                                     earlier=result.get("attempts"), budget_s=left,
                                     header_rejected=header_rejection(result.get("notes")))
        if result.get("status") != "solved":
            return [failed(message, "astrometry", result.get("reason") or "the astrometry did not solve")]
        if result.get("target_outside"):
            log.info("observation %s solved but %s", message.observation_id, result["target_outside"])
            return [failed(message, "astrometry", result["target_outside"])]
        wcs_header = result.pop("wcs_header")
        log.info("observation %s solved: rms %.3f arcsec, %s stars, header WCS %s", message.observation_id,
                 result.get("rms_arcsec") or -1, result.get("n_stars"), result.get("header_wcs"))
        return [ImageSolvedV1(**message.model_dump(exclude={"message_id", "occurred_at"}),
                              wcs_header=_plain(wcs_header), astrometry=result, observation=seen["record"])]


def _plain(header: dict) -> dict:
    return {str(k): v for k, v in header.items() if isinstance(v, (int, float, str, bool)) and k not in ("COMMENT", "HISTORY", "")}

