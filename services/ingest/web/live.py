"""Live light curves: server-sent events telling an open event page that a point joined or left.

Ingest listens to ``lightcurve.updated.v1`` (and ``alert.photometry.stored.v1``, the alert's own points)
on its own exclusive queue, one per process, and fans each message out to the pages open on that
event. A page's ``/event/{alert_id}/live`` stream (``text/event-stream``) sends one ``update`` per
message; the page then reads the light curve again and redraws. A comment every ``KEEPALIVE_S`` keeps
proxies from closing a quiet stream.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiohttp import web

from services.ingest.deps import DEPS
from shared.contracts import AlertPhotometryStoredV1, LightcurveUpdatedV1

log = logging.getLogger(__name__)
KEEPALIVE_S = 15.0
#: Updates kept for a page that reads slower than they come (then it just reads the curve once more).
QUEUE_SIZE = 256


class LiveHub:
    """The pages listening, by event IVORN; each has a queue of updates (None: the server is stopping)."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[asyncio.Queue]] = {}
        self.closed = False

    def listen(self, ivorn: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self._listeners.setdefault(ivorn, set()).add(queue)
        return queue

    def leave(self, ivorn: str, queue: asyncio.Queue) -> None:
        listeners = self._listeners.get(ivorn, set())
        listeners.discard(queue)
        if not listeners:
            self._listeners.pop(ivorn, None)

    def listening(self, ivorn: str) -> int:
        return len(self._listeners.get(ivorn, ()))

    def tell(self, ivorn: str, update: dict) -> None:
        for queue in list(self._listeners.get(ivorn, ())):
            with contextlib.suppress(asyncio.QueueFull):  # a page that lags reads the whole curve anyway
                queue.put_nowait(update)

    async def on_lightcurve_updated(self, message: LightcurveUpdatedV1) -> list:
        self.tell(message.event_ivorn, {"action": message.action, "followup_id": message.followup_id})
        return []

    async def on_alert_points_stored(self, message: AlertPhotometryStoredV1) -> list:
        self.tell(message.event_ivorn, {"action": "stored", "alert_points": len(message.point_ids)})
        return []

    def close(self) -> None:
        self.closed = True
        for listeners in self._listeners.values():
            for queue in listeners:
                if queue.full():  # make room for the end
                    queue.get_nowait()
                queue.put_nowait(None)


HUB = web.AppKey("live_hub", LiveHub)


def setup(app: web.Application) -> None:
    app[HUB] = LiveHub()
    app.on_startup.append(_subscribe)
    app.on_shutdown.append(_close)


async def _subscribe(app: web.Application) -> None:
    broker = app[DEPS].broker
    if broker is None:  # an application built without a broker (route tables, tests of the pages alone)
        return
    hub = app[HUB]
    await broker.subscribe(None, {LightcurveUpdatedV1.routing_key: hub.on_lightcurve_updated,
                                  AlertPhotometryStoredV1.routing_key: hub.on_alert_points_stored})


async def _close(app: web.Application) -> None:
    app[HUB].close()


async def stream(request: web.Request, ivorn: str) -> web.StreamResponse:
    """The event stream of one event's page: ``ready`` once listening, then ``update`` per change."""
    hub = request.app[HUB]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = hub.listen(ivorn)
    try:
        await response.write(b"retry: 3000\n\nevent: ready\ndata: {}\n\n")
        while not hub.closed:
            try:
                update = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            if update is None:
                break
            await response.write(f"event: update\ndata: {json.dumps(update)}\n\n".encode())
    except ConnectionResetError:
        pass  # the page went away
    finally:
        hub.leave(ivorn, queue)
    return response
