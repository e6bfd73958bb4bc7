"""Composition root of the calibration service."""
from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager

from shared.db import ensure_indexes, make_client
from shared.messaging import Broker
from shared.refcat.store import RefcatStore
from shared.settings import Settings
from services.calibration import work
from services.calibration.handlers import CalibrationDeps, Calibrator, Plotter
from services.calibration.recalibration import Recalibrator
from services.calibration.store import INDEXES, CalibrationStore


def _warm_up() -> bool:
    return work.read_stars is not None


def _lower_priority() -> None:
    """Plots yield the CPU to calibrations: they are never on the path of an answer."""
    os.nice(10)


def _pool(workers: int, *, initializer=None) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer)


@asynccontextmanager
async def running(settings: Settings):
    client = make_client(settings.mongo_url.get_secret_value())
    db = client[settings.mongo_db]
    await ensure_indexes(db, INDEXES)
    refcat = RefcatStore(db)
    await refcat.ensure_indexes()
    executor, plot_executor = _pool(settings.process_workers), _pool(1, initializer=_lower_priority)
    loop = asyncio.get_running_loop()
    await asyncio.gather(loop.run_in_executor(executor, _warm_up), loop.run_in_executor(plot_executor, _warm_up))
    deps = CalibrationDeps(store=CalibrationStore(db), refcat=refcat, executor=executor, plot_executor=plot_executor,
                           refcat_margin_deg=settings.refcat_margin_arcmin / 60)
    broker = Broker.from_settings(settings)
    await broker.start()
    calibrator, plotter = Calibrator(deps), Plotter(deps)
    recalibrator = Recalibrator(calibrator)
    await broker.subscribe(f"{settings.exchange}.calibration", {
        "upload.received.v1": calibrator.on_upload_received,
        "recalibration.requested.v1": recalibrator.on_recalibration_requested,
        "observation.deleted.v1": calibrator.on_observation_deleted})
    await broker.subscribe(f"{settings.exchange}.calibration.plots", {
        "observation.calibrated.v1": plotter.on_outcome, "observation.failed.v1": plotter.on_outcome})
    try:
        yield deps
    finally:
        await broker.close()
        executor.shutdown(wait=False, cancel_futures=True)
        plot_executor.shutdown(wait=False, cancel_futures=True)
        await client.close()
