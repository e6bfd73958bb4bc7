"""Every service's operator endpoints: ``/healthz`` (the process is alive), ``/readyz`` (it can work now:
database, broker, its consumers attached) and ``/metrics`` (Prometheus text).

Ingest and lightcurve add these routes to their own HTTP apps; the services without HTTP serve them on
``CPCS_METRICS_PORT`` when it is set (``cpcs up`` gives each its own port).
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from shared import observability as obs

OPS = web.AppKey("ops", object)
READY_TIMEOUT_S = 2.0


class Ops:
    """What readiness asks: the service's database and broker (and, for ingest, the queues to sample)."""

    def __init__(self, service: str, db: Any, broker: Any, *, sample_queues: list[str] | None = None) -> None:
        self.service, self.db, self.broker, self.sample_queues = service, db, broker, sample_queues or []

    async def checks(self) -> dict[str, str]:
        """Each check's verdict: ``ok`` or why not, in a few words."""
        found: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.db.command("ping"), READY_TIMEOUT_S)
            found["database"] = "ok"
        except Exception as exc:  # the check reports, it does not fail the request
            found["database"] = f"not answering: {type(exc).__name__}: {exc}"[:200]
        if not self.broker.connected:
            found["broker"] = "not connected"
            found["consumers"] = "unknown while the broker is not connected"
            return found
        found["broker"] = "ok"
        try:
            counts = await asyncio.wait_for(self.broker.consumers_attached(), READY_TIMEOUT_S)
        except Exception as exc:
            found["consumers"] = f"cannot be asked: {type(exc).__name__}"
            return found
        missing = sorted(name for name, n in counts.items() if n < 1)
        found["consumers"] = "ok" if not missing else f"none on {', '.join(missing)}"
        return found

    async def sample(self) -> None:
        """Queue depths and consumers into the gauges (at scrape time)."""
        if not self.sample_queues or not self.broker.connected:
            return
        for name in self.sample_queues:
            try:
                messages, consumers = await asyncio.wait_for(self.broker.queue_state(name), READY_TIMEOUT_S)
            except Exception:
                continue  # a queue not declared yet: nothing to show
            obs.QUEUE_MESSAGES.labels(name).set(messages)
            obs.QUEUE_CONSUMERS.labels(name).set(consumers)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": request.app[OPS].service})


async def readyz(request: web.Request) -> web.Response:
    ops = request.app[OPS]
    checks = await ops.checks()
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "service": ops.service, **checks},
                             status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    await request.app[OPS].sample()
    body, content_type = obs.metrics_body()
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_routes(app: web.Application, ops: Ops, *, with_healthz: bool = False) -> None:
    app[OPS] = ops
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if with_healthz:
        app.router.add_get("/healthz", healthz)


@asynccontextmanager
async def serving(ops: Ops, host: str, port: int | None):
    """The operator endpoints on their own port (for the services without HTTP); nothing when None."""
    if port is None:
        yield None
        return
    app = web.Application()
    add_routes(app, ops, with_healthz=True)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        yield runner
    finally:
        await runner.cleanup()
