"""The upload use case shared by every intake (CPCS form, REST, AMQP): check, store, publish, wait."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass

from services.ingest import checks
from services.ingest.errors import (
    Conflict,
    Forbidden,
    IngestError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Refused,
    TooLarge,
)
from services.ingest.images import ImageIntake, inspect_image, upload_values
from services.ingest.results import ResultWaiters
from services.ingest.store import IngestStore, now
from shared.catalogue import CatalogueError, read_catalogue
from shared.contracts import (
    EventRef,
    ImageReceivedV1,
    ObservationCalibratedV1,
    ObservationFailedV1,
    ObservationRecord,
    ObservatoryRef,
    UploadReceivedV1,
)
from shared.db import next_sequence
from shared.fitsimage import ImageRefused
from shared.observability import UPLOADS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadRequest:
    data: bytes
    filename: str
    event_ivorn: str
    token: str
    mjd: float | None = None
    exptime_s: float | None = None
    match_radius_arcsec: float | None = None
    force_filter: str = "no"
    dry_run: bool = False
    no_plot: bool = False
    comment: str = ""
    declared_filter: str | None = None


@dataclass(frozen=True)
class Accepted:
    observation_id: str
    followup_id: int | None
    correlation_id: str
    dry_run: bool


class Uploads:
    """Accepts uploads for the pipeline; the composition root gives it the store and a publisher."""

    def __init__(self, store: IngestStore, publish, *, max_bytes: int):
        self.store, self.publish, self.max_bytes = store, publish, max_bytes

    async def accept(self, req: UploadRequest, correlation_id: str | None = None) -> Accepted:
        """Check, store and publish an upload (counted in ``cpcs_uploads_total`` by outcome)."""
        try:
            accepted = await self._accept(req, correlation_id)
        except IngestError as exc:
            UPLOADS.labels(type(exc).__name__).inc()
            raise
        UPLOADS.labels("accepted").inc()
        return accepted

    async def _accept(self, req: UploadRequest, correlation_id: str | None) -> Accepted:
        observatory = await self._authorise(req.token)
        event = await self.store.find_event(req.event_ivorn)
        if event is None:
            raise NotFound(f"unknown event {req.event_ivorn}: add it first with /cgi/newevent")
        if not event.get("target_usable", True):
            raise Refused(f"event {event['_id']} has no position usable for photometry: "
                                     f"{event.get('no_target_reason') or 'no usable position'}")
        if not req.data:
            raise InvalidInput("no catalogue file was attached (field sexCat)")
        if len(req.data) > self.max_bytes:
            raise TooLarge(f"the file is {len(req.data) / 1e6:.1f} MB; the limit is "
                                     f"{self.max_bytes / 1e6:.0f} MB")
        stars = await self._read(req, observatory)
        mjd, mjd_source = _observation_mjd(req, stars)
        if mjd is None:
            raise InvalidInput("MJD is missing and the catalogue header has no MJD-OBS: "
                                     "give the MJD of the observation (mid-exposure)")
        refusal = checks.implausible_mjd(mjd, event)
        if refusal:
            raise Refused(refusal)
        if isinstance(stars, ImageIntake):
            refusal = checks.image_outside_event(stars.record, event)
        else:
            refusal = checks.catalogue_outside_event(stars, event, req.match_radius_arcsec)
        if refusal:
            raise Refused(refusal)
        return await self._store_and_publish(req, stars, event, observatory, mjd, mjd_source,
                                             correlation_id or uuid.uuid4().hex)

    async def _authorise(self, token: str) -> dict:
        record = await self.store.find_token(token)
        if record is None:
            raise NotAuthenticated("unknown or missing hashtag: uploads need a valid token")
        if not record.get("allow_upload", True) or record.get("observatory_id") is None:
            raise Forbidden("this hashtag is not allowed to upload")
        observatory = await self.store.get_observatory(record["observatory_id"])
        if observatory is None:
            raise Forbidden("the observatory of this hashtag no longer exists")
        return observatory

    async def _read(self, req: UploadRequest, observatory: dict):
        """The catalogue's stars, or, for a FITS image, its header record (ImageIntake)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, lambda: read_catalogue(
                req.data, filename=req.filename, exptime_s=req.exptime_s))
        except CatalogueError as exc:
            catalogue_error = exc
        upload = upload_values(req.mjd, req.exptime_s, req.declared_filter)
        try:
            image = await loop.run_in_executor(None, lambda: inspect_image(
                req.data, observatory=observatory, upload=upload))
        except ImageRefused as exc:
            raise InvalidInput(str(exc)) from exc
        if image is None:
            raise InvalidInput(str(catalogue_error)) from catalogue_error
        return image

    async def _store_and_publish(self, req, stars, event, observatory, mjd, mjd_source,
                                 correlation_id) -> Accepted:
        sha256 = hashlib.sha256(req.data).hexdigest()
        observation_id = uuid.uuid4().hex
        followup_id = None
        if not req.dry_run:
            followup_id = await next_sequence(self.store.db, "followup_id")
            taken = await self.store.claim_upload(sha256, event["_id"], observation_id, followup_id)
            if taken is not None:
                raise Conflict(f"this file was already uploaded for {event['_id']} as point "
                                         f"{taken.get('followup_id')}; use dryRun=1 to repeat a test",
                                    followup_id=taken.get("followup_id"))
        try:
            return await self._store(req, stars, event, observatory, mjd, mjd_source, correlation_id,
                                     sha256, observation_id, followup_id)
        except BaseException:
            if not req.dry_run:  # never leave the file reserved for a point that does not exist
                await _quietly(self.store.delete_observation(observation_id))
                await _quietly(self.store.release_upload(observation_id))
            raise

    async def _store(self, req, stars, event, observatory, mjd, mjd_source, correlation_id, sha256,
                     observation_id, followup_id) -> Accepted:
        file_id = await self.store.put_bytes(req.data, req.filename, sha256, scratch=req.dry_run)
        kind = ImageReceivedV1 if isinstance(stars, ImageIntake) else UploadReceivedV1
        message = kind(
            observation_id=observation_id, followup_id=followup_id, correlation_id=correlation_id,
            dry_run=req.dry_run,
            event=EventRef(ivorn=event["_id"], ra_deg=event["ra_deg"], dec_deg=event["dec_deg"]),
            observatory=ObservatoryRef(id=observatory["_id"], name=observatory["name"]),
            file_id=file_id, bucket="scratch" if req.dry_run else "uploads", filename=req.filename,
            sha256=sha256, mjd=mjd, exptime_s=req.exptime_s or _header_exptime(stars),
            match_radius_arcsec=req.match_radius_arcsec,
            force_filter=req.force_filter,
            declared_filter=req.declared_filter or _text(stars.header.get("FILTER")),
            observatory_filters=observatory_filters(observatory), comment=req.comment, no_plot=req.no_plot,
            **_image_fields(stars))
        try:
            if not req.dry_run:
                await self.store.insert_observation(_observation_doc(message, stars, req) | {"mjd_source": mjd_source})
            await self.publish(message, correlation_id=correlation_id)
        except BaseException:
            await _quietly(self.store.delete_bytes(file_id, scratch=req.dry_run))
            raise
        return Accepted(observation_id, followup_id, correlation_id, req.dry_run)


@dataclass(frozen=True)
class Waited:
    """An accepted upload and the pipeline's outcome, None if it did not come within the wait."""

    accepted: Accepted
    outcome: ObservationCalibratedV1 | ObservationFailedV1 | None


async def upload_and_wait(uploads: Uploads, waiters: ResultWaiters, store: IngestStore | None,
                          req: UploadRequest, wait_s: float) -> Waited:
    """Accept an upload and wait up to ``wait_s`` for its outcome; a dry run keeps nothing once answered."""
    correlation_id = uuid.uuid4().hex
    waiters.expect(correlation_id)
    try:
        accepted = await uploads.accept(req, correlation_id)
    except BaseException:
        waiters.forget(correlation_id)
        raise
    outcome = await waiters.wait(correlation_id, wait_s)
    if outcome is not None and accepted.dry_run and store is not None:  # the durable handler deletes
        # it too, for an answer nobody waited for
        await store.drop_dry_run_bytes(outcome)
    return Waited(accepted, outcome)


async def _quietly(step) -> None:
    """An undo step after a failure: the first error is the one to report, not this one's."""
    try:
        await step
    except Exception as exc:  # the database may be the reason we are undoing
        log.warning("could not undo part of a failed upload: %s", exc)


def _observation_doc(message: UploadReceivedV1, stars, req: UploadRequest) -> dict:
    return {"_id": message.observation_id, "followup_id": message.followup_id,
            "event_ivorn": message.event.ivorn, "observatory_id": message.observatory.id,
            "observatory_name": message.observatory.name, "mjd": message.mjd,
            "exptime_s": message.exptime_s, "file_id": message.file_id, "filename": message.filename,
            "sha256": message.sha256, "force_filter": message.force_filter,
            "match_radius_arcsec": message.match_radius_arcsec, "comment": req.comment,
            "declared_filter": message.declared_filter, "observatory_filters": message.observatory_filters,
            **_input_summary(stars),
            "status": "received", "received_at": now(), "result": None, "reason": None}


def observatory_filters(observatory: dict) -> list[str] | None:
    filters = observatory.get("filters")
    if isinstance(filters, dict):
        filters = list(filters.values())
    return [str(f) for f in filters] if filters else None


def _input_summary(stars) -> dict:
    if isinstance(stars, ImageIntake):
        return {"kind": "image", "image": {"header": stars.record}, "n_stars": None, "n_dropped": {},
                "file_format": "FITS image"}
    return {"kind": "catalogue", "n_stars": len(stars), "n_dropped": stars.n_dropped,
            "file_format": stars.file_format}


def _image_fields(stars) -> dict:
    """An image's message carries its header as standardised here, so no later stage reads it again."""
    return {"observation": ObservationRecord.model_validate(stars.record)} if isinstance(stars, ImageIntake) else {}


def _header_exptime(stars) -> float | None:
    return stars.record.get("exptime_s") if isinstance(stars, ImageIntake) else None


def _text(value) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _observation_mjd(req: UploadRequest, stars) -> tuple[float | None, str]:
    """The mid-exposure MJD of the observation and where it came from.

    A typed MJD is taken as mid-exposure, for catalogues and images alike (the original CPCS stored it
    as given); otherwise an image's standardised header gives its mid-exposure time, and a
    catalogue's header its mid-exposure keyword or MJD-OBS (start) plus half the exposure.
    """
    if req.mjd is not None:
        return req.mjd, "upload MJD (mid-exposure)"
    if isinstance(stars, ImageIntake):
        mid = stars.record.get("mjd_mid")
        return mid, "image header: " + str((stars.record.get("sources") or {}).get("mjd_mid") or "time keywords")
    exptime = req.exptime_s or _positive(stars.header.get("EXPTIME")) or _positive(stars.header.get("EXPOSURE"))
    return checks.header_mid_mjd(stars.header, exptime)


def _positive(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out > 0 and out == out and out != float("inf") else None
