"""Photometry's handler: a solved image becomes a catalogue (stored) plus forced photometry at the event."""
from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gridfs.errors import NoFile
from pymongo.errors import OperationFailure

from services.photometry import work
from services.photometry.products import CUTOUT_PX, FILES
from services.photometry.science.model import PhotometryParams
from shared.contracts import (
    CatalogueMeasuredV1,
    ForcedTarget,
    ImageMetadata,
    ImageProduct,
    ImageProductsV1,
    ImageQuality,
    ImageSolvedV1,
    Message,
    ObservationDeletedV1,
    UploadReceivedV1,
)
from shared.fitsimage import ImageRefused
from shared.imaging import declared, failed, read_upload, upload_fields
from shared.pools import run_in_pool
from shared.settings import LoadedParameters

log = logging.getLogger(__name__)

#: A dry run's products are deleted this long after they were stored (as its calibration expires).
DRY_RUN_PRODUCTS_KEEP = timedelta(days=1)


@dataclass
class PhotometryDeps:
    db: object
    uploads: object
    scratch: object
    catalogues: object  # GridFS bucket "catalogues": the measured catalogues
    executor: Executor | None
    products: object | None = None  # GridFS bucket "products": the downloads of image.products.v1 (None: none)


class Measurer:
    def __init__(self, deps: PhotometryDeps, params: LoadedParameters | None = None):
        self.deps = deps
        self.params = params or LoadedParameters(PhotometryParams())

    async def on_image_solved(self, message: ImageSolvedV1) -> list[Message]:
        """Measure the frame with the header record the message carries (never standardised again here).

        A message without the record (an older astrometry) still works: the header is standardised in
        the measuring step without the observatory record, and a log line says so.
        """
        done = await self.deps.db.image_metadata.find_one({"_id": message.observation_id})
        if done is not None and done.get("measured"):  # delivered again: the same answer, nothing new stored
            again: list[Message] = [CatalogueMeasuredV1.model_validate(done["measured"])]
            if self.deps.products is not None and done.get("products"):
                again.append(ImageProductsV1.model_validate(done["products"]))
            return again
        await self.purge_expired_products()
        data = await read_upload(self.deps, message)
        if data is None:
            return []
        if message.observation is None:
            log.warning("observation %s: image.solved.v1 has no standardised header (an older astrometry): "
                        "standardising it here without the observatory record", message.observation_id)
        try:
            result = await run_in_pool(self.deps.executor, work.run_measure, data, message.extension,
                                       message.observation, upload_fields(message), wcs_header=message.wcs_header,
                                       target_ra_deg=message.event.ra_deg, target_dec_deg=message.event.dec_deg,
                                       params=self.params.values)
        except ImageRefused as exc:
            return [failed(message, "photometry", str(exc))]
        if result["status"] != "measured":
            return [failed(message, "photometry", result["reason"])]
        await self._drop_catalogues(message.observation_id)  # a crash after an earlier upload left one
        file_id = await self.deps.catalogues.upload_from_stream(
            f"{message.observation_id}.fits", result["catalogue"], metadata={"observation_id": message.observation_id})
        target = None if not result["target"] else ForcedTarget(**declared(ForcedTarget, result["target"]))
        metadata = ImageMetadata(**declared(ImageMetadata, result["metadata"]), astrometry=message.astrometry)
        record = message.observation or result["observation"]
        fields = message.model_dump(include=set(UploadReceivedV1.model_fields) - {"message_id", "occurred_at"})
        measured = CatalogueMeasuredV1(**fields, catalogue_file_id=str(file_id), target=target,
                                       image_metadata=metadata)
        products = await self._store_products(message, result, metadata, target)
        await self.deps.db.image_metadata.replace_one(
            {"_id": message.observation_id},
            {"_id": message.observation_id, "metadata": metadata.model_dump(mode="json"),
             "target": None if target is None else target.model_dump(mode="json"),
             "header": None if record is None else record.model_dump(mode="json"), "catalogue_file_id": str(file_id),
             "measured": measured.model_dump(mode="json"), "stored_at": datetime.now(UTC),
             "products": None if products is None else products.model_dump(mode="json"),
             "params": {**self.params.provenance(), "values": self.params.values.to_dict()}}, upsert=True)
        return [measured] if products is None else [measured, products]

    async def _store_products(self, message: ImageSolvedV1, result: dict, metadata: ImageMetadata,
                              target: ForcedTarget | None) -> ImageProductsV1 | None:
        """The downloads written by the measuring step, stored in ``products``; the message naming them."""
        bucket = self.deps.products
        if bucket is None or not result.get("products"):
            return None
        await self._drop_products(message.observation_id)  # a crash after an earlier upload left some
        stored_at = time.time()
        expires = stored_at + DRY_RUN_PRODUCTS_KEEP.total_seconds() if message.dry_run else None
        items = []
        for kind, data in result["products"].items():
            filename, content_type = FILES[kind]
            file_id = await bucket.upload_from_stream(
                f"{message.observation_id}-{filename}", data,
                metadata={"observation_id": message.observation_id, "kind": kind, "content_type": content_type,
                          "dry_run": message.dry_run, "stored_at_unix": stored_at, "expires_at_unix": expires})
            items.append(ImageProduct(kind=kind, file_id=str(file_id), filename=filename, content_type=content_type,
                                      size_bytes=len(data)))
        log.info("observation %s: %d image products written in %.3f s", message.observation_id, len(items),
                 result.get("products_s", 0.0))
        astrometry = message.astrometry
        in_frame = target is not None and target.in_frame
        quality = ImageQuality(
            astrometry_rms_arcsec=astrometry.rms_arcsec if astrometry else None,
            astrometry_n_stars=astrometry.n_stars if astrometry else None, fwhm_arcsec=metadata.fwhm_arcsec,
            fwhm_px=metadata.fwhm_px, limiting_mag_inst_5sigma=metadata.limiting_mag_inst_5sigma,
            n_detected=metadata.n_detected, cutout_size_px=CUTOUT_PX if in_frame else None,
            target_x_px=target.x_px if in_frame and target else None,
            target_y_px=target.y_px if in_frame and target else None)
        return ImageProductsV1(
            observation_id=message.observation_id, followup_id=message.followup_id,
            correlation_id=message.correlation_id, dry_run=message.dry_run, event_ivorn=message.event.ivorn,
            observatory=message.observatory, products=items, quality=quality,
            expires_at=None if expires is None else datetime.fromtimestamp(expires, UTC))

    async def purge_expired_products(self, *, now_unix: float | None = None) -> int:
        """Delete the products of dry runs older than :data:`DRY_RUN_PRODUCTS_KEEP`."""
        bucket = self.deps.products
        if bucket is None:
            return 0
        cutoff = time.time() if now_unix is None else now_unix
        expired = await bucket.find({"metadata.expires_at_unix": {"$lt": cutoff}}).to_list(None)
        for f in expired:
            await self._delete_product(f._id)
        return len(expired)

    async def on_observation_deleted(self, message: ObservationDeletedV1) -> None:
        """A deleted point keeps nothing here: its measured catalogue, its products and image metadata go."""
        await self._drop_catalogues(message.observation_id)
        await self._drop_products(message.observation_id)
        await self.deps.db.image_metadata.delete_one({"_id": message.observation_id})

    async def _drop_products(self, observation_id: str) -> None:
        if self.deps.products is None:
            return
        files = await self.deps.products.find({"metadata.observation_id": observation_id}).to_list(None)
        for f in files:
            await self._delete_product(f._id)

    async def _delete_product(self, file_id) -> None:
        """Delete one product; one already gone (a concurrent delivery deleted it) is no error."""
        bucket = self.deps.products
        try:
            await bucket.delete(file_id)
        except NoFile:
            pass
        except OperationFailure:  # some servers answer a missing file with an error of their own
            # to_list(None): pymongo's GridFS cursor raises StopAsyncIteration from to_list(n) when it
            # has fewer than n files
            if await bucket.find({"_id": file_id}).to_list(None):
                raise

    async def _drop_catalogues(self, observation_id: str) -> None:
        files = await self.deps.catalogues.find({"metadata.observation_id": observation_id}).to_list(None)
        for f in files:
            with contextlib.suppress(NoFile):
                await self.deps.catalogues.delete(f._id)

