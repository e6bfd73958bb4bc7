"""Composition root of the lightcurve service."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from services.lightcurve import alerts, events, observations
from services.lightcurve.handlers import PointKeeper
from services.lightcurve.http import make_app
from services.lightcurve.plots import PlotRequests
from services.lightcurve.settings import LightcurveSettings
from services.lightcurve.store import INDEXES, LightcurveStore
from shared import ops
from shared.db import ensure_indexes, make_client
from shared.messaging import Broker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Running:
    """What a running lightcurve service holds (for the process that started it)."""

    store: LightcurveStore
    broker: Broker


@asynccontextmanager
async def running(settings: LightcurveSettings):
    client = make_client(settings.mongo_url.get_secret_value())
    db = client[settings.mongo_db]
    await ensure_indexes(db, INDEXES + alerts.INDEXES + events.INDEXES + observations.INDEXES)
    store = LightcurveStore(db)
    broker = Broker.from_settings(settings)
    await broker.start()
    announcements = observations.Announcements(observations.ObservationRecords(db),
                                                 wait_s=settings.announce_wait_s)
    await broker.subscribe_raw(observations.announcements_queue(settings.exchange),  # before the results' queue
                               list(observations.ANNOUNCING_KEYS), announcements.on_delivery)
    keeper = PointKeeper(store, announcements)
    alert_points = alerts.AlertPoints(alerts.AlertPointCollection(db))
    await broker.subscribe(f"{settings.exchange}.lightcurve", {
        "observation.calibrated.v1": keeper.on_observation_calibrated,
        "observation.deleted.v1": keeper.on_observation_deleted,
        "alert.photometry.received.v1": alert_points.on_alert_photometry_received,
        "event.created.v1": store.copies.on_event_message,
        "event.updated.v1": store.copies.on_event_message})
    if await store.copies.count() == 0:
        log.info("no events known yet: if this database had events before, run 'cpcs republish-events'")
    plots = PlotRequests(broker)
    await plots.start()
    app = make_app(store, settings, plots)
    ops.add_routes(app, ops.Ops("lightcurve", db, broker))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.lightcurve_port).start()
    try:
        yield Running(store, broker)
    finally:
        await runner.cleanup()
        await broker.close()
        await client.close()
