"""The services running in this test process on the real broker and database, isolated by unique names."""
from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from pydantic import SecretStr

from services.launcher import SystemSettings
from shared.contracts import REGISTRY
from shared.errors import PermanentError
from shared.messaging import Broker, decode
from tests.support.servers import free_port


class Probe:
    """Listens to every routing key on the test's exchange; tests await the message they expect."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.seen: list = []
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        async def on_delivery(delivery) -> None:
            try:
                message = decode(delivery.routing_key, delivery.body)
            except PermanentError:
                return  # a poison message some test sent on purpose: the probe only watches
            async with self._changed:
                self.seen.append(message)
                self._changed.notify_all()

        await self.broker.subscribe_raw(None, list(REGISTRY), on_delivery)

    async def wait_for(self, routing_key: str, predicate=lambda m: True, *, timeout_s: float = 30.0):
        def found():
            return next((m for m in self.seen if m.routing_key == routing_key and predicate(m)), None)

        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
            return found()

    async def wait_count(self, routing_key: str, predicate, n: int, *, timeout_s: float = 30.0) -> list:
        """Wait until ``n`` matching messages have been seen; return them."""
        def matching():
            return [m for m in self.seen if m.routing_key == routing_key and predicate(m)]

        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(matching()) >= n)
            return matching()

    def count(self, routing_key: str, predicate=lambda m: True) -> int:
        return sum(1 for m in self.seen if m.routing_key == routing_key and predicate(m))


@dataclass
class System:
    settings: SystemSettings
    http: aiohttp.ClientSession
    probe: Probe
    broker: Broker
    stack: AsyncExitStack
    started: dict = field(default_factory=dict)  # what each service's running() gave, by name

    @property
    def url(self) -> str:
        return self.settings.public_url


def settings_for(mongo_url: str, amqp_url: str, name: str, **overrides) -> SystemSettings:
    """Every service's settings on the test's database and exchange (the environment gives the rest, read
    now: set ``CPCS_*`` variables before calling it)."""
    ingest_port, lightcurve_port = free_port(), free_port()
    return SystemSettings.build(amqp_url=SecretStr(amqp_url), mongo_url=SecretStr(mongo_url), mongo_db=name,
                                exchange=name, ingest_port=ingest_port, lightcurve_port=lightcurve_port,
                                public_url=f"http://127.0.0.1:{ingest_port}",
                                lightcurve_url=f"http://127.0.0.1:{lightcurve_port}", retry_delay_s=0.05,
                                upload_wait_s=60, **overrides)


async def delete_topology(broker: Broker, exchange: str) -> None:
    from services.local import service_queues

    channel = broker._channel
    for queue in [*service_queues(exchange), f"{exchange}.ingest.intake", broker.dead_letter_queue]:
        await channel.queue_delete(queue)
    await channel.exchange_delete(exchange)
    await channel.exchange_delete(f"{exchange}.dlx")


@asynccontextmanager
async def running_system(settings: SystemSettings, services=("ingest", "calibration", "lightcurve")):
    import importlib

    async with AsyncExitStack() as stack:
        broker = Broker(settings.amqp_url.get_secret_value(), settings.exchange)
        await broker.start()
        stack.push_async_callback(broker.close)
        stack.push_async_callback(delete_topology, broker, settings.exchange)
        probe = Probe(broker)
        await probe.start()
        started: dict = {}
        for name in services:
            started[name] = await stack.enter_async_context(
                importlib.import_module(f"services.{name}.app").running(settings[name]))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield System(settings=settings, http=http, probe=probe, broker=broker, stack=stack, started=started)
