"""Catalogue uploads end to end: HTTP -> broker -> calibration -> light curve, five service processes.

Prints the median and 95th percentile of 200 sequential uploads of a 1,000-star catalogue (time to
the /cgi/upload answer, and to the point being on the light curve), then uploads per second with 8
concurrent clients. Runs on isolated names (its own exchange and database) on the local broker and
an embedded nx-27017 it starts itself.
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
from services.demo import load_demo
from shared.contracts import LightcurveUpdatedV1
from shared.db import make_client
from shared.messaging import Broker
from shared.refcat.store import RefcatStore
from shared.refcat.surveys import DEMO_SURVEY
from shared.simfield import simulate_field

FIELD_RA_DEG, FIELD_DEC_DEG = 210.5, -12.3


def variant(text: str, n: int) -> bytes:
    lines = text.rstrip("\n").split("\n")
    cols = lines[-1].split()
    cols[1] = f"{float(cols[1]) + 0.0001 * n:.4f}"
    return ("\n".join(lines[:-1] + ["  ".join(cols)]) + "\n").encode()


class CurveWatcher:
    """Resolves a future when lightcurve.updated.v1 arrives for a follow-up id."""

    def __init__(self):
        self.waiting: dict[int, asyncio.Future] = {}
        self.done: dict[int, float] = {}

    def expect(self, followup_id: int) -> asyncio.Future:
        if followup_id in self.done:
            future = asyncio.get_running_loop().create_future()
            future.set_result(self.done[followup_id])
            return future
        return self.waiting.setdefault(followup_id, asyncio.get_running_loop().create_future())

    async def on_updated(self, message: LightcurveUpdatedV1) -> None:
        now = time.perf_counter()
        self.done[message.followup_id] = now
        future = self.waiting.get(message.followup_id)
        if future is not None and not future.done():
            future.set_result(now)


async def one_upload(http, url, token, event, data, n, watcher):
    form = aiohttp.FormData()
    for key, value in {"EventID": event, "hashtag": token, "MJD": str(60000 + n), "expTime": "60", "matchDist": "2",
                       "forceFilter": "no", "dryRun": "0", "noPlot": "1", "outputFormat": "json"}.items():
        form.add_field(key, value)
    form.add_field("sexCat", data, filename=f"bench{n}.cat")
    start = time.perf_counter()
    async with http.post(f"{url}/cgi/upload", data=form) as response:
        answer = await response.json()
        if response.status != 200:
            raise RuntimeError(f"upload {n} answered {response.status}: {answer}")
    answered = time.perf_counter()
    stored = await asyncio.wait_for(watcher.expect(answer["followup_id"]), 60)
    return answered - start, stored - start


async def main(n_sequential: int, n_concurrent_total: int, clients: int) -> None:
    async with launcher.isolated_system("bench") as (settings, run):
        await measure(settings, run, n_sequential, n_concurrent_total, clients)


async def measure(settings, run, n_sequential: int, n_concurrent_total: int, clients: int) -> None:
    name = settings.mongo_db
    broker = Broker(settings.amqp_url.get_secret_value(), name)
    try:
        demo = await load_demo(out_dir=run / "demo", settings=settings)
        field = simulate_field(ra_deg=FIELD_RA_DEG, dec_deg=FIELD_DEC_DEG, radius_arcmin=10, n_stars=800,
                               n_faint=200, seed=7, target_mag=17.0)
        client = make_client(settings.mongo_url.get_secret_value())
        await RefcatStore(client[name]).import_table(field.reference, "apass9", survey=DEMO_SURVEY,
                                                     version="synthetic-demo-1", synthetic=True, source_name="bench")
        await client.close()
        event = "ivo://BenchField1"
        await broker.start()
        watcher = CurveWatcher()
        await broker.subscribe(None, {"lightcurve.updated.v1": watcher.on_updated})
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{settings.public_url}/cgi/newevent", data={
                    "EventID": event, "ra": str(FIELD_RA_DEG), "dec": str(FIELD_DEC_DEG), "hashtag": demo["token"]}):
                pass
            n_rows = sum(1 for line in field.catalogue_text.splitlines() if line and not line.startswith("#"))
            for n in range(5):  # warm-up, not counted
                await one_upload(http, settings.public_url, demo["token"], event, variant(field.catalogue_text, n),
                                 n, watcher)
            answers, curves = [], []
            for n in range(5, 5 + n_sequential):
                answered, stored = await one_upload(http, settings.public_url, demo["token"], event,
                                                    variant(field.catalogue_text, n), n, watcher)
                answers.append(answered * 1000)
                curves.append(stored * 1000)
            base = 5 + n_sequential
            queue = list(range(base, base + n_concurrent_total))

            async def worker():
                while queue:
                    n = queue.pop()
                    await one_upload(http, settings.public_url, demo["token"], event,
                                     variant(field.catalogue_text, n), n, watcher)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            elapsed = time.perf_counter() - start
        print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"{time.strftime('%Y-%m-%d')}")
        print(f"catalogue: {n_rows} stars, reference field {len(field.reference)} stars (synthetic)")
        print(f"sequential uploads: {n_sequential}")
        print(f"  answer of /cgi/upload   median {statistics.median(answers):7.1f} ms   "
              f"p95 {launcher.percentile(answers, 95):7.1f} ms")
        print(f"  point on light curve    median {statistics.median(curves):7.1f} ms   "
              f"p95 {launcher.percentile(curves, 95):7.1f} ms")
        print(f"  goal: median <= 150 ms; ratio median/goal = {statistics.median(answers) / 150:.2f}")
        print(f"concurrent: {n_concurrent_total} uploads by {clients} clients in {elapsed:.2f} s = "
              f"{n_concurrent_total / elapsed:.1f} uploads/s")
    finally:
        await broker.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.sequential, args.concurrent, args.clients))
