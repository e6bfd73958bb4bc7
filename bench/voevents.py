"""VOEvent intake: bursts of distinct packets over AMQP and HTTP, and repeated deliveries of one packet.

Five service processes on the local RabbitMQ and an embedded nx-27017 started here, isolated names.
Prints how fast a burst of distinct packets is absorbed (from the first publish to the last
``voevent.processed.v1``), the HTTP answer times with concurrent clients, and checks that one packet
delivered many times over both intakes makes one event.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time

import aiohttp

from services import launcher
from services.ingest.store import IngestStore
from services.ingest.tokens import new_token
from shared.contracts import VoeventProcessedV1
from shared.db import make_client
from shared.messaging import Broker

STREAM = "ivo://cpcs.bench/alerts"


def packet(n: int) -> bytes:
    """A VOEvent 2.0 packet of transient ``Bench<n>`` with a position and a magnitude of its own."""
    ra, dec = (n * 0.137) % 360.0, -60.0 + (n * 0.0731) % 120.0
    return (f'<?xml version="1.0" encoding="UTF-8"?><voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" '
            f'version="2.0" role="observation" ivorn="{STREAM}#Bench{n:06d}-1"><Who><AuthorIVORN>{STREAM}'
            f'</AuthorIVORN><Date>2019-03-01T10:00:00</Date></Who><What><Param name="name" ucd="meta.id" '
            f'value="Bench{n:06d}"/><Param name="mag" ucd="phot.mag;em.opt.R" value="17.5"/></What><WhereWhen>'
            f'<ObsDataLocation><ObservatoryLocation id="GEOSURFACE"/><ObservationLocation><AstroCoordSystem '
            f'id="UTC-ICRS-TOPO"/><AstroCoords coord_system_id="UTC-ICRS-TOPO"><Time unit="s"><TimeInstant>'
            f'<ISOTime>2019-03-01T09:00:00</ISOTime></TimeInstant></Time><Position2D unit="deg"><Name1>RA</Name1>'
            f'<Name2>Dec</Name2><Value2><C1>{ra:.6f}</C1><C2>{dec:.6f}</C2></Value2><Error2Radius>0.0001'
            f'</Error2Radius></Position2D></AstroCoords></ObservationLocation></ObsDataLocation></WhereWhen>'
            f'</voe:VOEvent>').encode()


class Outcomes:
    """Counts voevent.processed.v1 and wakes whoever waits for a number of them."""

    def __init__(self):
        self.seen: list[VoeventProcessedV1] = []
        self.changed = asyncio.Condition()

    async def on_processed(self, message: VoeventProcessedV1) -> None:
        async with self.changed:
            self.seen.append(message)
            self.changed.notify_all()

    async def wait(self, n: int, timeout_s: float = 300) -> float:
        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(lambda: len(self.seen) >= n)
        return time.perf_counter()


async def run(settings: launcher.SystemSettings, n: int, clients: int, repeats: int) -> None:
    client = make_client(settings.mongo_url.get_secret_value())
    db = client[settings.mongo_db]
    admin = new_token("BenchFeed")
    await IngestStore(db).add_token(admin, observatory_id=None, user="bench", is_admin=True, allow_upload=False)
    broker = Broker(settings.amqp_url.get_secret_value(), settings.exchange)
    await broker.start()
    outcomes = Outcomes()
    await broker.subscribe(None, {"voevent.processed.v1": outcomes.on_processed})
    try:
        start = time.perf_counter()
        for chunk in range(0, n, 100):
            await asyncio.gather(*(broker.publish_bytes("voevent.received.v1", packet(i))
                                   for i in range(chunk, min(n, chunk + 100))))
        published = time.perf_counter()
        done = await outcomes.wait(n)
        amqp_created = sum(1 for m in outcomes.seen if m.outcome == "created")

        latencies: list[float] = []
        queue = list(range(n, 2 * n))
        headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/xml"}
        async with aiohttp.ClientSession() as http:
            async def worker():
                while queue:
                    i = queue.pop()
                    begun = time.perf_counter()
                    async with http.post(f"{settings.public_url}/api/v1/voevents", data=packet(i),
                                         headers=headers) as response:
                        if response.status != 201:
                            raise RuntimeError(f"packet {i}: HTTP {response.status} {await response.text()}")
                    latencies.append((time.perf_counter() - begun) * 1000)

            http_start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            http_elapsed = time.perf_counter() - http_start

            same = packet(2 * n)

            async def post_same() -> None:
                async with http.post(f"{settings.public_url}/api/v1/voevents", data=same, headers=headers) as r:
                    await r.read()

            await asyncio.gather(*(broker.publish_bytes("voevent.received.v1", same) for _ in range(repeats)),
                                 *(post_same() for _ in range(repeats)))
        await outcomes.wait(2 * n + 2 * repeats)
        events = await db.events.count_documents({"name": f"Bench{2 * n:06d}"})
        print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"{time.strftime('%Y-%m-%d')}")
        print(f"AMQP burst: {n} distinct packets published in {published - start:.2f} s, all absorbed in "
              f"{done - start:.2f} s = {n / (done - start):.0f} packets/s ({amqp_created} events created, "
              f"{n - amqp_created} lost or not created)")
        print(f"HTTP: {n} distinct packets by {clients} clients in {http_elapsed:.2f} s = {n / http_elapsed:.0f} "
              f"packets/s; answer median {statistics.median(latencies):.1f} ms, "
              f"p95 {launcher.percentile(latencies, 95):.1f} ms")
        print(f"one packet delivered {repeats} times over AMQP and {repeats} times over HTTP: {events} event")
    finally:
        await broker.close()
        await client.close()


async def main(n: int, clients: int, repeats: int) -> None:
    async with launcher.isolated_system("benchvo") as (settings, _):
        await run(settings, n, clients, repeats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.packets, args.clients, args.repeats))
