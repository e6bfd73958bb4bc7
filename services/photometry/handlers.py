"""Photometry's handler: a solved image becomes a catalogue (stored) plus forced photometry at the event."""
from __future__ import annotations

import contextlib
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime

from gridfs.errors import NoFile

from services.photometry import work
from services.photometry.science.model import PhotometryParams
from shared.contracts import (
    CatalogueMeasuredV1,
    ForcedTarget,
    ImageMetadata,
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


@dataclass
class PhotometryDeps:
    db: object
    uploads: object
    scratch: object
    catalogues: object  # GridFS bucket "catalogues": the measured catalogues
    executor: Executor | None


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
            return [CatalogueMeasuredV1.model_validate(done["measured"])]
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
        await self.deps.db.image_metadata.replace_one(
            {"_id": message.observation_id},
            {"_id": message.observation_id, "metadata": metadata.model_dump(mode="json"),
             "target": None if target is None else target.model_dump(mode="json"),
             "header": None if record is None else record.model_dump(mode="json"), "catalogue_file_id": str(file_id),
             "measured": measured.model_dump(mode="json"), "stored_at": datetime.now(UTC),
             "params": {**self.params.provenance(), "values": self.params.values.to_dict()}}, upsert=True)
        return [measured]

    async def on_observation_deleted(self, message: ObservationDeletedV1) -> None:
        """A deleted point keeps nothing here: its measured catalogue and image metadata go."""
        await self._drop_catalogues(message.observation_id)
        await self.deps.db.image_metadata.delete_one({"_id": message.observation_id})

    async def _drop_catalogues(self, observation_id: str) -> None:
        files = await self.deps.catalogues.find({"metadata.observation_id": observation_id}).to_list(None)
        for f in files:
            with contextlib.suppress(NoFile):
                await self.deps.catalogues.delete(f._id)

