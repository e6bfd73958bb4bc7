"""Composition root of the calibration service."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from services.calibration.handlers import CalibrationDeps, Calibrator, Plotter
from services.calibration.recalibration import Recalibrator
from services.calibration.settings import CalibrationSettings
from services.calibration.store import INDEXES, CalibrationStore
from services.calibration.work import warm_up
from shared.db import ensure_indexes, make_client
from shared.messaging import Broker
from shared.ops import Ops, serving
from shared.pools import lower_priority, process_pool
from shared.refcat.providers import ReferenceSource
from shared.refcat.store import RefcatStore

log = logging.getLogger(__name__)


@asynccontextmanager
async def running(settings: CalibrationSettings):
    client = make_client(settings.mongo_url.get_secret_value())
    db = client[settings.mongo_db]
    await ensure_indexes(db, INDEXES)
    store = RefcatStore(db)
    await store.ensure_indexes()
    refcat = ReferenceSource(store, settings.online_refcat)
    executor, plot_executor = await asyncio.gather(process_pool(settings.process_workers, initializer=warm_up),
                                                   process_pool(1, initializer=lower_priority))
    calibrations = CalibrationStore(db)
    deps = CalibrationDeps(store=calibrations, refcat=refcat, executor=executor, plot_executor=plot_executor,
                           refcat_margin_deg=settings.refcat_margin_arcmin / 60, params=settings.params)
    log.info("calibration parameters: %s", settings.params.provenance())
    broker = Broker.from_settings(settings)
    await broker.start()
    calibrator, plotter = Calibrator(deps), Plotter(deps)
    recalibrator = Recalibrator(calibrator)
    await broker.subscribe(f"{settings.exchange}.calibration", {
        "upload.received.v1": calibrator.on_upload_received,
        "catalogue.measured.v1": calibrator.on_catalogue_measured,
        "recalibration.requested.v1": recalibrator.on_recalibration_requested,
        "observation.deleted.v1": calibrator.on_observation_deleted})
    plots = await broker.subscribe(f"{settings.exchange}.calibration.plots",
                                   {"plot.requested.v1": plotter.on_requested})
    await broker.unbind(plots, ["observation.calibrated.v1", "observation.failed.v1"])  # every outcome's, once
    try:
        async with serving(Ops("calibration", db, broker), settings.metrics_host, settings.metrics_port):
            yield deps
    finally:
        await broker.close()
        await calibrations.flush()  # the per-star arrays still being written
        executor.shutdown(wait=False, cancel_futures=True)
        plot_executor.shutdown(wait=False, cancel_futures=True)
        await client.close()
