"""Ingest's message handlers: keep each observation's status in step with the pipeline, and delete a
dry run's scratch copy of the bytes once its outcome is known (ingest owns the ``scratch`` bucket)."""
from __future__ import annotations

from services.ingest.ports import ProductRecords, StatusStore
from services.ingest.store import now, scratch_copy_of
from shared.contracts import ImageProductsV1, ObservationCalibratedV1, ObservationFailedV1


class StatusRecorder:
    def __init__(self, store: StatusStore):
        self.store = store

    async def on_observation_calibrated(self, message: ObservationCalibratedV1) -> None:
        if not message.dry_run:  # a dry run has no observation (nor a reservation) to update
            await self.store.record_outcome(message.observation_id, message.result.status,
                                            message.result.model_dump(), None)
        await self._clean_scratch(message)

    async def on_observation_failed(self, message: ObservationFailedV1) -> None:
        if not message.dry_run:
            result = message.result.model_dump() if message.result else None
            await self.store.record_outcome(message.observation_id, "failed", result, message.reason)
            # a failed calibration is no stored point: the same file may be sent again with other settings
            await self.store.release_upload(message.observation_id)
        await self._clean_scratch(message)

    async def _clean_scratch(self, message: ObservationCalibratedV1 | ObservationFailedV1) -> None:
        if message.dry_run:
            file_id = scratch_copy_of(message)
            if file_id is not None:
                await self.store.delete_bytes(file_id, scratch=True)
            await self.store.purge_stale_scratch()


class ProductRecorder:
    """Keeps the ids of an image's products (``image.products.v1``) with its observation, so the pages can
    serve them; a dry run's until it expires, a stored point's while the point exists."""

    def __init__(self, store: ProductRecords):
        self.store = store

    async def on_image_products(self, message: ImageProductsV1) -> None:
        await self.store.purge_expired_products()
        if not message.dry_run and await self.store.find_observation(message.observation_id) is None:
            return  # deleted meanwhile: photometry drops the products too
        await self.store.record_products({
            "_id": message.observation_id, "observatory_id": message.observatory.id,
            "observatory": message.observatory.name, "followup_id": message.followup_id,
            "event_ivorn": message.event_ivorn, "dry_run": message.dry_run,
            "products": [p.model_dump(mode="json") for p in message.products],
            "quality": message.quality.model_dump(mode="json"),
            "expires_at_unix": None if message.expires_at is None else message.expires_at.timestamp(),
            "recorded_at": now()})
