"""Composition root of ingest: builds every object once and wires intakes to the pipeline."""
from __future__ import annotations

from contextlib import asynccontextmanager

from aiohttp import web

from services.ingest import guard, http_admin, http_api, http_cgi, outages, pages, proxy, ratelimit
from services.ingest import web as web_pages
from services.ingest.amqp_intake import ROUTING_KEY as INTAKE_KEY
from services.ingest.amqp_intake import AmqpIntake
from services.ingest.deps import DEPS, IngestDeps
from services.ingest.handlers import ProductRecorder, StatusRecorder
from services.ingest.outbox import OutboxRelay
from services.ingest.results import ResultWaiters
from services.ingest.settings import IngestSettings
from services.ingest.store import INDEXES, IngestStore
from services.ingest.usecases.recalibrations import Recalibrations
from services.ingest.usecases.uploads import Uploads
from services.ingest.voevents import wiring as voevents
from services.ingest.voevents.http import VOEVENTS
from shared import ops, unpacking
from shared.db import ensure_indexes, make_client
from shared.messaging import Broker, service_queues

RESULT_KEYS = ("observation.calibrated.v1", "observation.failed.v1")
FEEDS = web.AppKey("voevent_feeds", voevents.Voevents)


async def healthz(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        await deps.store.db.command("ping")
    except Exception as exc:  # the check reports, it does not fail the request
        return web.json_response({"status": "degraded", "database": str(exc)}, status=503)
    body = {"status": "ok", "service": "ingest"}
    alerts = request.app.get(FEEDS)
    if alerts is not None and alerts.subscribers:
        body["voevent_feeds"] = alerts.feeds()
    return web.json_response(body)


def make_app(deps: IngestDeps, alerts: voevents.Voevents | None = None,
             operations: ops.Ops | None = None) -> web.Application:
    app = web.Application(client_max_size=int(deps.settings.max_upload_mb * 1024 * 1024) + 65536,
                          middlewares=[outages.outages, guard.unreadable_requests, ratelimit.rate_limits,
                                       guard.readable_forms])
    app[DEPS] = deps
    ratelimit.setup(app, ratelimit.rates_of(deps.settings))
    web_pages.setup(app, deps.settings)
    if alerts is not None:
        app[VOEVENTS], app[FEEDS] = alerts.intake, alerts
    app.cleanup_ctx.append(proxy.session_ctx)
    proxy.add_routes(app)
    app.add_routes(http_cgi.routes)
    app.add_routes(http_api.routes)
    app.add_routes(http_admin.routes)
    app[http_admin.RECALIBRATIONS] = Recalibrations(deps.store, deps.publish)
    app.add_routes(pages.routes)
    app.router.add_get("/healthz", healthz)
    if operations is not None:
        ops.add_routes(app, operations)
    return app


@asynccontextmanager
async def running(settings: IngestSettings):
    unpacking.set_max_unpacked_bytes(int(settings.max_unpacked_mb * 1e6))
    client = make_client(settings.mongo_url.get_secret_value())
    db = client[settings.mongo_db]
    await ensure_indexes(db, INDEXES)
    broker = Broker.from_settings(settings)
    await broker.start()
    store = IngestStore(db)
    waiters = ResultWaiters()
    deps = IngestDeps(settings=settings, store=store, waiters=waiters, broker=broker, publish=broker.publish,
                      uploads=Uploads(store, broker.publish, max_bytes=int(settings.max_upload_mb * 1e6)))
    status = StatusRecorder(store)
    await broker.subscribe(f"{settings.exchange}.ingest", {
        "observation.calibrated.v1": status.on_observation_calibrated,
        "observation.failed.v1": status.on_observation_failed,
        "recalibration.done.v1": Recalibrations(store, broker.publish).on_recalibration_done,
        "image.products.v1": ProductRecorder(store).on_image_products})
    await broker.subscribe(None, dict.fromkeys(RESULT_KEYS, waiters.on_result))
    intake = AmqpIntake(deps, broker)
    alerts = await voevents.start(settings.voevent, store, broker)
    await broker.subscribe_raw(f"{settings.exchange}.ingest.intake", [INTAKE_KEY, voevents.ROUTING_KEY],
                               voevents.intake_router(intake.on_submission, alerts.intake.on_delivery))
    alerts.start_feeds()
    operations = ops.Ops("ingest", db, broker, sample_queues=[*service_queues(settings.exchange),
                                                             broker.dead_letter_queue])
    relay = OutboxRelay(store, broker.publish, interval_s=settings.outbox_interval_s,
                        reconcile_interval_s=settings.reconcile_interval_s,
                        reconcile_after_s=settings.reconcile_after_s, watch_dead_letters=broker.watch_dead_letters)
    relay.start()
    runner = web.AppRunner(make_app(deps, alerts, operations), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.ingest_port).start()
    try:
        yield deps
    finally:
        await runner.cleanup()
        await relay.close()
        await alerts.close()
        await intake.close()
        await broker.close()
        await client.close()
