"""The image path's two services (astrometry, photometry) as they stand in this version.

They run as their own processes and own their queues, so the topology is the final one, but
image processing itself is not implemented yet: an image message is answered with
``observation.failed.v1`` and a reason the observer can act on (upload a source catalogue).
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from shared.contracts import ImageReceivedV1, ImageSolvedV1, ObservationFailedV1
from shared.messaging import Broker
from shared.settings import Settings

NOT_YET = ("image calibration is not available on this server yet: run SExtractor (or similar) on the "
           "image and upload the source catalogue instead")


def refuse(stage: str):
    async def on_image(message: ImageReceivedV1 | ImageSolvedV1) -> list[ObservationFailedV1]:
        return [ObservationFailedV1(observation_id=message.observation_id, correlation_id=message.correlation_id,
                                    event_ivorn=message.event.ivorn, stage=stage, reason=NOT_YET)]
    return on_image


def running_for(stage: str, routing_key: str):
    @asynccontextmanager
    async def running(settings: Settings):
        broker = Broker.from_settings(settings)
        await broker.start()
        await broker.subscribe(f"{settings.exchange}.{stage}", {routing_key: refuse(stage)})
        try:
            yield broker
        finally:
            await broker.close()
    return running
