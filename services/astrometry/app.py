"""Composition root of the astrometry service."""
from __future__ import annotations

from contextlib import asynccontextmanager

from gridfs import AsyncGridFSBucket

from shared.db import make_client
from shared.messaging import Broker
from shared.pools import process_pool
from shared.refcat.store import RefcatStore
from shared.settings import Settings
from services.astrometry.handlers import AstrometryDeps, Solver


@asynccontextmanager
async def running(settings: Settings):
    client = make_client(settings.mongo_url.get_secret_value())
    db = client[settings.mongo_db]
    executor = await process_pool(settings.process_workers)
    deps = AstrometryDeps(db=db, uploads=AsyncGridFSBucket(db, bucket_name="uploads"),
                          scratch=AsyncGridFSBucket(db, bucket_name="scratch"), refcat=RefcatStore(db),
                          executor=executor)
    broker = Broker.from_settings(settings)
    await broker.start()
    await broker.subscribe(f"{settings.exchange}.astrometry", {"image.received.v1": Solver(deps).on_image_received})
    try:
        yield deps
    finally:
        await broker.close()
        executor.shutdown(wait=False, cancel_futures=True)
        await client.close()
