"""Calibration's message handlers: an upload becomes a calibrated point, a limit, or a failure."""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from services.calibration import work
from services.calibration.ports import CalibrationStorage, ReferenceCone
from shared.calibration_params import ParameterSet
from shared.catalogue import CatalogueError
from shared.contracts import (
    REGISTRY,
    CalibrationSummary,
    CatalogueMeasuredV1,
    ForcedTarget,
    ImageMetadata,
    Message,
    ObservationCalibratedV1,
    ObservationDeletedV1,
    ObservationFailedV1,
    PlotDeclinedV1,
    PlotRenderedV1,
    PlotRequestedV1,
    RecalibrationRequestedV1,
    UploadReceivedV1,
)
from shared.errors import TransientError
from shared.pools import run_in_pool
from shared.refcat.astrometry import jyear_from_mjd
from shared.refcat.query import QueryResult

log = logging.getLogger(__name__)
MAX_REFCAT_RADIUS_DEG = 2.0
#: Expired dry runs are looked for after a dry run at most this often (the look-up reads every stored
#: calibration on some servers: 17 ms of a real catalogue's answer on nx-27017 when done every time).
PURGE_INTERVAL_S = 60.0
SUMMARY_FIELDS = set(CalibrationSummary.model_fields)
#: A field (centre RA, Dec and radius in degrees) and the reference stars found for it.
FieldReferences = tuple[tuple[float, float, float], QueryResult]


@dataclass
class CalibrationDeps:
    store: CalibrationStorage  # CalibrationStore
    refcat: ReferenceCone  # ReferenceSource
    executor: Executor | None  # a process pool; None: the loop's default thread pool
    plot_executor: Executor | None = None
    refcat_margin_deg: float = 2.0 / 60
    params: ParameterSet = ParameterSet()  # the operator's parameter set (defaults unless configured)


class Calibrator:
    def __init__(self, deps: CalibrationDeps):
        self.deps = deps
        self._next_purge = 0.0  # time.monotonic() after which a dry run looks for expired ones again

    async def _run(self, fn: Callable, *args, **kwargs):
        return await run_in_pool(self.deps.executor, fn, *args, **kwargs)

    async def on_upload_received(self, message: UploadReceivedV1) -> list[Message]:
        if message.bucket == "inline":  # a dry run's catalogue that came in the message
            return await self._calibrate_once(message, lambda: _given(message.inline_data))
        return await self._calibrate_once(message,
                                          lambda: self.deps.store.upload_bytes(message.file_id, message.bucket,
                                                                               message.sha256))

    async def on_catalogue_measured(self, message: CatalogueMeasuredV1) -> list[Message]:
        """An image's measured catalogue: as an upload, with the forced photometry for a limit."""
        radius = message.match_radius_arcsec or _image_radius(message.image_metadata)
        message = message.model_copy(update={"match_radius_arcsec": radius})
        forced = None if message.target is None else message.target.model_dump(mode="json")
        return await self._calibrate_once(message, lambda: self.deps.store.catalogue_bytes(message.catalogue_file_id),
                                          forced=forced,
                                          extra={"catalogue_file_id": message.catalogue_file_id,
                                                 "forced_target": forced, "match_radius_arcsec": radius})

    async def _calibrate_once(self, message, load, *, forced: dict | None = None, extra: dict | None = None):
        store = self.deps.store
        t0 = time.perf_counter()
        # the stored answer (if any), the bytes and, when the message names the catalogue's field, its
        # references at once: a redelivery is rare, so all are almost always needed, and the reads then
        # cost one round trip
        done, data, found = await asyncio.gather(store.find(message.observation_id), load(),
                                                 self._references_of_field(message))
        if done is not None:  # delivered again after a crash: publish the same answer, compute nothing
            return _with_plot(message, _revive(done["message"]))
        if data is None:
            log.info("upload %s is gone (deleted before calibration); nothing to do", message.observation_id)
            return []
        t1 = time.perf_counter()
        outgoing, result = await self.compute(message, data, forced=forced, found=found)
        t2 = time.perf_counter()
        await store.save({"_id": message.observation_id, "followup_id": message.followup_id,
                          "event_ivorn": message.event.ivorn, "dry_run": message.dry_run,
                          "outcome": outgoing.routing_key, "message": _stored(outgoing),
                          "result": result, **(extra or {})}, dry_run=message.dry_run, first=True)
        if message.dry_run and time.monotonic() >= self._next_purge:  # the scratch copy of the bytes is
            # ingest's to delete, on this outcome
            self._next_purge = time.monotonic() + PURGE_INTERVAL_S
            await store.purge_expired_dry_runs()
        t3 = time.perf_counter()
        log.info("observation %s: %s in %.0f ms (stored answer and bytes %.0f, calibrate %.0f, store %.0f)",
                 message.observation_id, outgoing.routing_key, (t3 - t0) * 1e3, (t1 - t0) * 1e3,
                 (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return _with_plot(message, outgoing)

    async def _references_of_field(self, message: UploadReceivedV1) -> FieldReferences | None:
        """The references of the field the message names (with the margin), or None if it names none."""
        if message.field is None:
            return None
        circle = (message.field.ra_deg, message.field.dec_deg, message.field.radius_deg)
        return circle, await self._cone(circle, message.mjd)

    def _cone_radius_deg(self, field_radius_deg: float) -> float:
        return min(field_radius_deg + self.deps.refcat_margin_deg, MAX_REFCAT_RADIUS_DEG)

    async def _cone(self, circle: tuple[float, float, float], mjd: float) -> QueryResult:
        ra, dec, radius = circle
        try:
            return await self.deps.refcat.cone(ra, dec, self._cone_radius_deg(radius),
                                               epoch_jyear=jyear_from_mjd(mjd))
        except Exception as exc:
            raise TransientError(f"reference catalogue store unavailable: {exc}") from exc

    async def compute(self, message: UploadReceivedV1 | RecalibrationRequestedV1, data: bytes,
                      param_overrides: dict | None = None, *, forced: dict | None = None,
                      found: FieldReferences | None = None) -> tuple[Message, dict]:
        """Read, fetch references, calibrate: the message to publish and the full result (nothing stored).

        ``found``: the field the message named and its references; the stars are then read and calibrated
        in one trip to the worker (and read again, with their own field's references, if they do not lie
        in it)."""
        params = self.deps.params.overridden(param_overrides)  # the result records version, hash and source
        calibration = {"target_ra_deg": message.event.ra_deg, "target_dec_deg": message.event.dec_deg,
                       "match_radius_arcsec": message.match_radius_arcsec, "force_filter": message.force_filter,
                       "declared_filter": message.declared_filter, "params": params.params.as_dict(),
                       "observatory_filters": getattr(message, "observatory_filters", None), "packed": True}
        done = None
        try:
            if found is not None:
                circle, cone = found
                done = await self._run(work.read_and_calibrate, data, message.filename, message.exptime_s,
                                       cone.stars, field=circle, **calibration)
            if done is None:
                stars = await self._run(work.read_stars, data, message.filename, message.exptime_s)
                circle = work.field_of(stars)
                cone = await self._cone(circle, message.mjd)
                done = len(stars), await self._run(work.run_calibration, stars, cone.stars, **calibration)
        except CatalogueError as exc:
            return _failed(message, str(exc), None), work.failure(
                str(exc), target_ra_deg=message.event.ra_deg, target_dec_deg=message.event.dec_deg, params=params)
        n_stars, result = done
        (ra, dec, field_radius), references = circle, cone.stars
        radius = self._cone_radius_deg(field_radius)
        if forced:
            apply_forced_limit(result, forced)
        if not references:
            result["reason"] = (f"no reference catalogue on this server covers the field at RA {ra:.4f}, Dec {dec:.4f} "
                                f"(radius {radius * 60:.1f} arcmin); an operator can import one with "
                                "'cpcs refcat import'" + (f" ({cone.sentence()})" if cone.sentence() else ""))
        result["refcat_coverage"] = {name: c.status for name, c in cone.coverage.items()}
        result["params_provenance"] = params.provenance()
        summary = CalibrationSummary(**{k: v for k, v in result.items() if k in SUMMARY_FIELDS}
                                     | {"n_catalogue_stars": n_stars})
        if summary.status == "failed":
            return _failed(message, summary.reason or "calibration failed", summary), result
        return ObservationCalibratedV1(
            observation_id=message.observation_id, followup_id=message.followup_id,
            correlation_id=message.correlation_id, dry_run=message.dry_run, event=message.event,
            observatory=message.observatory, mjd=message.mjd, result=summary,
            algorithm_version=result["algorithm_version"], params_hash=result["params_hash"],
            refcat_versions={r.survey: r.version for r in references}, **_input_of(message)), result

    async def on_observation_deleted(self, message: ObservationDeletedV1) -> None:
        await self.deps.store.delete(message.observation_id)


class Plotter:
    """Draws an observation's calibration plot when it is asked for (``plot.requested.v1``): at once after
    the answer for an upload that shows it, on its first view otherwise; a stored plot is not drawn again."""

    def __init__(self, deps: CalibrationDeps):
        self.deps = deps

    async def on_requested(self, message: PlotRequestedV1) -> list[PlotRenderedV1 | PlotDeclinedV1]:
        store = self.deps.store
        doc = await store.find_with_stars(message.observation_id)
        if doc is None:
            return [PlotDeclinedV1(observation_id=message.observation_id,
                                   reason=f"no calibration of observation {message.observation_id} is kept "
                                          "(an unknown id, a deleted point, or a dry run older than a day)")]
        done = PlotRenderedV1(observation_id=message.observation_id, status=doc["result"]["status"])
        if await store.has_plot(message.observation_id):
            return [done]
        result = doc["result"]
        title = f"{doc['event_ivorn']}  point {doc.get('followup_id') or 'dry run'}"
        png = await run_in_pool(self.deps.plot_executor, work.draw_plot, result, title)
        await store.save_plot(message.observation_id, png)
        return [done]


def apply_forced_limit(result: dict, forced: dict | ForcedTarget) -> None:
    """For an image, a non-detection's limit comes from the noise at the event (forced photometry).

    ``forced`` is the message's target, or its stored form (read through the contract, so only its
    declared fields exist).
    """
    forced = forced if isinstance(forced, ForcedTarget) else ForcedTarget.model_validate(forced)
    if result.get("status") != "limit" or result.get("zeropoint") is None or forced.limit_mag_inst is None:
        return
    result["mag"] = forced.limit_mag_inst - result["zeropoint"]
    result["limit_sigma"] = forced.limit_sigma
    result["limit_method"] = "forced photometry at the event (local noise)"
    result["limit_err"] = forced_limit_err_mag(result)


def forced_limit_err_mag(result: dict) -> float | None:
    """The uncertainty of a limit from the noise at the event: the calibration's, as for a detection.

    The noise is measured on many pixels around the event, so its own uncertainty is far below the
    zero point's; what remains is the zero point, the star-to-star scatter (both widened by the
    few-star factor) and the colour term's share, the terms of ``total_err`` without the target's own.
    """
    zp_err, scatter = result.get("zp_err"), result.get("scatter")
    if zp_err is None or scatter is None:
        return None
    factor = result.get("small_sample_factor") or 1.0
    colour_err = result.get("colour_err") or 0.0
    return math.sqrt((factor * math.hypot(zp_err, scatter)) ** 2 + colour_err ** 2)


def _image_radius(metadata: ImageMetadata) -> float:
    """The target radius for an image: 2 arcsec, less when another star is closer to the event."""
    clear = metadata.target_clear_radius_arcsec
    return min(2.0, clear) if clear else 2.0  # an image's astrometry is ours: its radius is known


def _failed(message: UploadReceivedV1, reason: str, summary: CalibrationSummary | None) -> ObservationFailedV1:
    return ObservationFailedV1(observation_id=message.observation_id, followup_id=message.followup_id,
                               correlation_id=message.correlation_id, dry_run=message.dry_run,
                               event_ivorn=message.event.ivorn, stage="calibration", reason=reason,
                               result=summary, **_input_of(message))


def _input_of(message) -> dict:
    """The stored bytes an outcome came from (a recalibration always reads the kept upload; bytes that came
    inline were stored nowhere)."""
    bucket = getattr(message, "bucket", "uploads")
    if bucket == "inline":
        return {"file_id": None, "bucket": None}
    return {"file_id": message.file_id, "bucket": bucket}


async def _given(data: bytes | None) -> bytes | None:
    return data


def _with_plot(message: UploadReceivedV1, outgoing: Message) -> list[Message]:
    """The outcome, and the plot's request when the upload shows its plot (``noPlot`` not set); any other
    plot is drawn on its first request, if ever (most automatic uploads never look at theirs)."""
    if message.no_plot:
        return [outgoing]
    return [outgoing, PlotRequestedV1(observation_id=message.observation_id)]


def _stored(message: Message) -> dict:
    return {"routing_key": message.routing_key, "body": message.model_dump(mode="json")}


def _revive(stored: dict) -> Message:
    return REGISTRY[stored["routing_key"]].model_validate(stored["body"])
