"""The upload use case shared by every intake (CPCS form, REST, AMQP): check, store, publish, wait.

A stored upload is one write: the observation document carries the message to publish in its ``outbox``
(``services/ingest/outbox.py`` publishes what the broker has not confirmed, and re-drives what never got
an outcome); once that write is done the upload is accepted whatever the broker does. Before it, a failure
undoes what was written (the file's reservation, its bytes) unless the database cannot say whether the
observation was written: then nothing is undone (the reservation of an observation that is not there is
free again after ``ORPHAN_CLAIM_AGE_S``). An outage of the database or the broker is ``Unavailable``
(503 with ``Retry-After``), and so is a file whose reservation has no observation behind it yet (an upload
of it still being stored, or one cut off half-way, e.g. ingest killed): a 409 would name a point that may
never exist, and the client, told to try again, either meets the stored point (409) or takes over the
reservation once it is ``ORPHAN_CLAIM_AGE_S`` old."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
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
    Unavailable,
)
from services.ingest.images import ImageIntake, inspect_image, upload_values
from services.ingest.results import ResultWaiters
from services.ingest.store import IngestStore, now
from services.ingest.tokens import token_hash
from shared.catalogue import CatalogueError, read_catalogue
from shared.contracts import (
    EventRef,
    FieldCircle,
    ImageReceivedV1,
    ObservationCalibratedV1,
    ObservationFailedV1,
    ObservationRecord,
    ObservatoryRef,
    UploadReceivedV1,
)
from shared.errors import is_infrastructure
from shared.fitsimage import ImageRefused
from shared.footprint import enclosing_circle
from shared.observability import UPLOADS
from shared.remembered import Remembered

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
    published: bool = True  # False: in the outbox, the broker has not confirmed it yet


#: When to try again after an outage of the database or the broker (the ``Retry-After`` of the 503).
RETRY_AFTER_S = 5
#: How long the answer waits for the broker to confirm a stored upload's message before leaving it to the
#: outbox relay (the upload is accepted either way).
PUBLISH_WAIT_S = 5.0
#: How long an upload token's observatory, once read, is taken without reading it again. Tokens and
#: observatories are written once and never changed by the services; a token record deleted or changed
#: by hand in the database takes effect within this time. Only known tokens are remembered.
IDENTITY_KEEP_S = 30.0
#: How many tokens' observatories are remembered at most (the oldest go first).
IDENTITY_MAX = 1024
#: A dry run's catalogue up to this size travels to calibration in its message (``inline_data``) and is
#: not stored at all; a larger one, and an image, go through the ``scratch`` bucket.
INLINE_DRY_RUN_MAX_BYTES = 4_000_000


def outage(exc: BaseException, done: str = "nothing was stored: send the upload again") -> Unavailable:
    """The observer's sentence for an outage of a part we need."""
    parts = {"pymongo": "database", "aiormq": "message broker", "aio_pika": "message broker"}
    part, seen = "database or message broker", set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if type(cause).__module__.split(".")[0] in parts:
            part = parts[type(cause).__module__.split(".")[0]]
            break
        cause = cause.__cause__ or cause.__context__
    return Unavailable(f"the {part} is not reachable just now, {done} in {RETRY_AFTER_S} s",
                       retry_after_s=RETRY_AFTER_S)


def outbox_entry(message, correlation_id: str) -> dict:
    """A message as the observation's outbox keeps it: routing key, body (JSON text), correlation id."""
    return {"id": uuid.uuid4().hex, "routing_key": message.routing_key, "body": message.model_dump_json(),
            "correlation_id": correlation_id}


class Uploads:
    """Accepts uploads for the pipeline; the composition root gives it the store and a publisher."""

    def __init__(self, store: IngestStore, publish, *, max_bytes: int):
        self.store, self.publish, self.max_bytes = store, publish, max_bytes
        self._identities = Remembered()  # token hash -> observatory: two round trips less per upload

    async def accept(self, req: UploadRequest, correlation_id: str | None = None) -> Accepted:
        """Check, store and publish an upload (counted in ``cpcs_uploads_total`` by outcome)."""
        try:
            try:
                accepted = await self._accept(req, correlation_id)
            except IngestError:
                raise
            except Exception as exc:
                if is_infrastructure(exc):
                    log.warning("an upload refused for an outage: %s: %s", type(exc).__name__, exc)
                    raise outage(exc) from exc
                raise
        except IngestError as exc:
            UPLOADS.labels(type(exc).__name__).inc()
            raise
        UPLOADS.labels("accepted").inc()
        return accepted

    async def _accept(self, req: UploadRequest, correlation_id: str | None) -> Accepted:
        # the token's and the event's look-ups at once (one round trip less); the token's answer counts first
        authorised, found = await asyncio.gather(self._authorise(req.token), self.store.find_event(req.event_ivorn),
                                                 return_exceptions=True)
        if isinstance(authorised, BaseException):
            raise authorised
        if isinstance(found, BaseException):
            raise found
        observatory, event = authorised, found
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
        """The observatory a token uploads for; remembered ``IDENTITY_KEEP_S`` once found."""
        key = token_hash(token) if token else ""
        kept = self._identities.recall(key, IDENTITY_KEEP_S)
        if kept is not None:
            return kept
        record = await self.store.find_token(token)
        if record is None:
            raise NotAuthenticated("unknown or missing hashtag: uploads need a valid token")
        if not record.get("allow_upload", True) or record.get("observatory_id") is None:
            raise Forbidden("this hashtag is not allowed to upload")
        observatory = await self.store.get_observatory(record["observatory_id"])
        if observatory is None:
            raise Forbidden("the observatory of this hashtag no longer exists")
        self._identities.keep(key, observatory, IDENTITY_MAX)
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
            followup_id = await self.store.next_followup_id()
            taken = await self.store.claim_upload(sha256, event["_id"], observation_id, followup_id)
            if taken is not None and taken.get("pending_s"):
                raise Unavailable(f"an earlier upload of this file for {event['_id']} is still being stored, "
                                  f"or was cut off half-way; send it again in {math.ceil(taken['pending_s'])} s "
                                  "(it becomes a point once, whichever upload stores it)",
                                  retry_after_s=math.ceil(taken["pending_s"]))
            if taken is not None:
                raise Conflict(f"this file was already uploaded for {event['_id']} as point "
                                         f"{taken.get('followup_id')}; use dryRun=1 to repeat a test",
                                    followup_id=taken.get("followup_id"))
        inline = req.dry_run and not isinstance(stars, ImageIntake) and len(req.data) <= INLINE_DRY_RUN_MAX_BYTES
        try:
            file_id = "" if inline else await self.store.put_bytes(req.data, req.filename, sha256,
                                                                    scratch=req.dry_run)
        except BaseException:
            if not req.dry_run:  # never leave the file reserved for a point that does not exist
                await _quietly(self.store.release_upload(observation_id))
            raise
        message = self._message(req, stars, event, observatory, mjd, correlation_id, sha256, observation_id,
                                followup_id, file_id, inline=inline)
        if req.dry_run:
            try:
                await self.publish(message, correlation_id=correlation_id)
            except BaseException:
                if not inline:
                    await _quietly(self.store.delete_bytes(file_id, scratch=True))
                raise
            return Accepted(observation_id, followup_id, correlation_id, True)
        entry = outbox_entry(message, correlation_id)
        received = time.time()
        doc = _observation_doc(message, stars, req) | {
            "mjd_source": mjd_source, "outbox": [entry], "outbox_pending": True,
            "message": {k: entry[k] for k in ("routing_key", "body", "correlation_id")},
            "received_at_unix": received, "redriven_at_unix": received, "redrives": 0}
        try:
            await self.store.insert_observation(doc)
        except BaseException:
            await self._undo(observation_id, file_id)
            raise
        published = await self._publish_now(message, correlation_id, observation_id, entry["id"])
        return Accepted(observation_id, followup_id, correlation_id, False, published)

    async def _undo(self, observation_id: str, file_id: str) -> None:
        """The observation's write failed: undo the rest only once it is sure the observation is not there
        (a write whose answer was lost may have been done; then the relay publishes it as any other)."""
        try:
            await self.store.delete_observation(observation_id)
        except Exception as exc:
            log.warning("an upload's observation may or may not be stored (%s); its reservation and bytes "
                        "stay", exc)
            return
        await _quietly(self.store.delete_bytes(file_id))
        await _quietly(self.store.release_upload(observation_id))

    async def _publish_now(self, message, correlation_id: str, observation_id: str, entry_id: str) -> bool:
        """Publish a stored upload's message at once (the relay does it later if this cannot)."""
        try:
            await asyncio.wait_for(self.publish(message, correlation_id=correlation_id), PUBLISH_WAIT_S)
        except Exception as exc:  # the upload is stored with its message: the relay sends it
            log.warning("observation %s stored; its message waits in the outbox: %s: %s", observation_id,
                        type(exc).__name__, exc)
            return False
        await _quietly(self.store.clear_outbox(observation_id, [entry_id]))
        return True

    def _message(self, req, stars, event, observatory, mjd, correlation_id, sha256, observation_id,
                 followup_id, file_id, *, inline: bool = False):
        kind = ImageReceivedV1 if isinstance(stars, ImageIntake) else UploadReceivedV1
        # a dry run's catalogue may travel in the message itself (``inline``)
        stored = {"bucket": "inline", "inline_data": req.data} if inline else {
            "bucket": "scratch" if req.dry_run else "uploads"}
        return kind(
            observation_id=observation_id, followup_id=followup_id, correlation_id=correlation_id,
            dry_run=req.dry_run,
            event=EventRef(ivorn=event["_id"], ra_deg=event["ra_deg"], dec_deg=event["dec_deg"]),
            observatory=ObservatoryRef(id=observatory["_id"], name=observatory["name"]),
            file_id=file_id, **stored, filename=req.filename,
            sha256=sha256, mjd=mjd, exptime_s=req.exptime_s or _header_exptime(stars),
            match_radius_arcsec=req.match_radius_arcsec,
            force_filter=req.force_filter,
            declared_filter=req.declared_filter or _text(stars.header.get("FILTER")),
            observatory_filters=observatory_filters(observatory), comment=req.comment, no_plot=req.no_plot,
            field=_field(stars), **_image_fields(stars))


@dataclass(frozen=True)
class Waited:
    """An accepted upload and the pipeline's outcome, None if it did not come within the wait."""

    accepted: Accepted
    outcome: ObservationCalibratedV1 | ObservationFailedV1 | None


async def upload_and_wait(uploads: Uploads, waiters: ResultWaiters, req: UploadRequest, wait_s: float) -> Waited:
    """Accept an upload and wait up to ``wait_s`` for its outcome. A dry run's scratch copy is deleted by
    the outcome's durable handler (``services.ingest.handlers.StatusRecorder``), not on the answer's way."""
    correlation_id = uuid.uuid4().hex
    waiters.expect(correlation_id)
    try:
        accepted = await uploads.accept(req, correlation_id)
    except BaseException:
        waiters.forget(correlation_id)
        raise
    # a message still in the outbox (the broker is away) has no outcome to wait for yet
    outcome = await waiters.wait(correlation_id, wait_s if accepted.published else 0.0)
    return Waited(accepted, outcome)


#: What a kept dry run remembers, so that it can be stored later with the same parameters.
KEPT_FIELDS = ("event_ivorn", "mjd", "exptime_s", "match_radius_arcsec", "force_filter", "comment",
               "declared_filter", "no_plot")
GONE_DRY_RUN = ("this dry run is no longer kept (it was stored already, or it is older than a day): "
                "upload the file again")


async def keep_dry_run(store: IngestStore, req: UploadRequest, observatory_id: int) -> str:
    """Keep the bytes of a dry run that was answered (ingest's ``scratch`` bucket, removed after a day
    like every scratch copy) so that its observatory can store it without sending the file again; the
    id of the kept copy."""
    kept = {name: getattr(req, name) for name in KEPT_FIELDS} | {"observatory_id": observatory_id}
    return await store.put_bytes(req.data, req.filename, hashlib.sha256(req.data).hexdigest(), scratch=True,
                                 kept=kept)


async def kept_dry_run(store: IngestStore, kept_id: str, *, token: str, observatory_id: int | None) -> UploadRequest:
    """The stored (not dry) upload of a kept dry run, for the observatory that sent it; ``NotFound`` when it
    is gone or is another observatory's."""
    found = await store.kept_scratch_copy(kept_id)
    if found is None or observatory_id is None or found[2].get("observatory_id") != observatory_id:
        raise NotFound(GONE_DRY_RUN)
    data, filename, kept = found
    return UploadRequest(data=data, filename=filename, token=token, dry_run=False,
                         **{name: kept.get(name) for name in KEPT_FIELDS if kept.get(name) is not None})


async def store_kept_dry_run(uploads: Uploads, waiters: ResultWaiters, store: IngestStore, kept_id: str, *,
                             token: str, observatory_id: int | None, wait_s: float) -> tuple[UploadRequest, Waited]:
    """Store a kept dry run as a point, with the parameters it was tried with. The same checks apply as
    to any upload (a file already stored for the event is a ``Conflict``); once it is accepted and not
    failed, the kept copy is deleted (the bytes are in ``uploads`` now)."""
    req = await kept_dry_run(store, kept_id, token=token, observatory_id=observatory_id)
    waited = await upload_and_wait(uploads, waiters, req, wait_s)
    if not isinstance(waited.outcome, ObservationFailedV1):
        await store.delete_bytes(kept_id, scratch=True)
    return req, waited


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


def _field(stars) -> FieldCircle | None:
    """A catalogue's field (its references are fetched while calibration reads it); an image has none yet."""
    if isinstance(stars, ImageIntake) or len(stars) == 0:
        return None
    circle = enclosing_circle(stars.ra_deg, stars.dec_deg)
    if not all(map(math.isfinite, circle)):  # calibration reads and judges such a catalogue itself
        return None
    return FieldCircle(ra_deg=circle[0], dec_deg=circle[1], radius_deg=circle[2])


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
