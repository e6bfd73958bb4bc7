"""Ingest's message handlers: keep each observation's status in step with the pipeline, and delete a
dry run's scratch copy of the bytes once its outcome is known (ingest owns the ``scratch`` bucket)."""
from __future__ import annotations

from services.ingest.ports import StatusStore
from services.ingest.store import scratch_copy_of
from shared.contracts import ObservationCalibratedV1, ObservationFailedV1


class StatusRecorder:
    def __init__(self, store: StatusStore):
        self.store = store

    async def on_observation_calibrated(self, message: ObservationCalibratedV1) -> None:
        await self.store.record_outcome(message.observation_id, message.result.status,
                                        message.result.model_dump(), None)
        await self._clean_scratch(message)

    async def on_observation_failed(self, message: ObservationFailedV1) -> None:
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
