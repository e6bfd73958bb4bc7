"""The event page and the JSON light curve of a big event: Gaia16aye's size, 25,000 points from 50
observatories, stored through the lightcurve service's own store on an embedded nx-27017.

Five service processes on the local RabbitMQ, isolated names. Prints the median server time (the
request's wall time on the loopback) of N requests each of the event page (ingest, which reads the
curve from lightcurve's HTTP API), of the JSON light curve (forwarded by ingest, and straight from the
lightcurve service), and of the table fragment the live page swaps in, with ``uptime`` before and
after; the goal is under 1 s each (the JSON under ~150 ms).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
from datetime import UTC, datetime

import aiohttp
from pymongo import AsyncMongoClient

from services import launcher
from services.ingest.store import IngestStore
from services.ingest.tokens import new_token
from services.lightcurve.store import LightcurveStore
from shared.contracts import LightcurveUpdatedV1, ObservationDeletedV1
from shared.messaging import Broker

BANDS = ("g", "r", "i", "V", "B", "G")
GOAL_S = {"event page": 1.0, "JSON (ingest)": 0.150, "JSON (lightcurve)": 0.150, "table fragment": 1.0}


def point(n: int, ivorn: str, observatories: int) -> dict:
    """One follow-up point as the lightcurve service stores it (``store.point_doc``'s keys)."""
    limit = n % 17 == 0
    obs = n % observatories
    return {"_id": 1_000_000 + n, "observation_id": f"bench{n:08d}", "event_ivorn": ivorn, "observatory_id": obs + 1,
            "observatory": f"Bench observatory {obs + 1:02d}", "mjd": 57400.0 + n * 0.02, "mag": 15.0 + (n % 300) / 100,
            "mag_err": None if limit else 0.02, "calib_err": 0.03, "zp_err": 0.01, "total_err": 0.04,
            "is_limit": limit, "limit_sigma": 5.0 if limit else None, "filter": BANDS[n % len(BANDS)],
            "survey": "APASS", "mode": "AUTO", "npoints": 120, "algorithm_version": "bench", "params_hash": "bench",
            "calibrated_at": datetime.now(UTC), "stored_at": datetime.now(UTC)}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


async def timed(http: aiohttp.ClientSession, url: str, n: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(n):
        start = time.perf_counter()
        async with http.get(url) as response:
            body = await response.read()
            assert response.status == 200, (url, response.status, body[:300])
        times.append(time.perf_counter() - start)
        size = len(body)
    return statistics.median(times), size


async def delete_one(settings: launcher.SystemSettings, ivorn: str, http: aiohttp.ClientSession, url: str) -> float:
    """A point leaves the curve by message, as a delete does; the time of the first read after it."""
    broker = Broker.from_settings(settings)
    await broker.start()
    updated = asyncio.Event()

    async def on_updated(message: LightcurveUpdatedV1) -> list:
        updated.set()
        return []

    try:
        await broker.subscribe(None, {LightcurveUpdatedV1.routing_key: on_updated})
        await broker.publish(ObservationDeletedV1(observation_id="bench00000007", followup_id=1_000_007,
                                                  event_ivorn=ivorn, deleted_by="bench"))
        await asyncio.wait_for(updated.wait(), 60)
        median, _ = await timed(http, url, 1)
        return median
    finally:
        await broker.close()


async def run(settings: launcher.SystemSettings, points: int, observatories: int, n: int) -> None:
    client = AsyncMongoClient(settings.mongo_url.get_secret_value())
    db = client[settings.mongo_db]
    token = new_token("Bench")
    await IngestStore(db).add_token(token, observatory_id=None, user="bench", is_admin=True)
    ivorn = "ivo://BenchBig16aye"
    # every request with the bench's token: reads need a signed-in user or a token (the read policy)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{settings.public_url}/api/v1/events",
                             json={"ivorn": ivorn, "ra": 295.0048, "dec": 30.1315}) as response:
            assert response.status == 201, await response.text()
            alert_id = (await response.json())["id"]
        curve_url = f"{settings.public_url}/api/v1/events/{alert_id}/lightcurve"
        deadline = time.monotonic() + 60
        while True:  # the lightcurve service's copy of the event arrives by message (before the points)
            async with http.get(curve_url) as response:
                if response.status == 200:
                    break
            assert time.monotonic() < deadline, f"the lightcurve service never stored the event ({response.status})"
            await asyncio.sleep(0.2)
        store = LightcurveStore(db)  # the lightcurve service's own store, on its database
        start = time.perf_counter()
        docs = [point(i, ivorn, observatories) for i in range(points)]
        for first in range(0, points, 2000):
            await store.upsert_points(docs[first:first + 2000])
        print(f"stored {points} points from {observatories} observatories in {time.perf_counter() - start:.1f} s")
        print(f"uptime before: {uptime()}")
        cold, _ = await timed(http, f"{settings.lightcurve_url}/api/v1/events/{alert_id}/lightcurve", 1)
        print(f"JSON (lightcurve), first read from the database: {cold * 1000:.0f} ms")
        direct = f"{settings.lightcurve_url}/api/v1/events/{alert_id}/lightcurve"
        after = await delete_one(settings, ivorn, http, direct)
        print(f"JSON (lightcurve), first read after a point left (live page's redraw): {after * 1000:.0f} ms")
        urls = {"event page": f"{settings.public_url}/event/{alert_id}",
                "JSON (ingest)": curve_url,
                "JSON (lightcurve)": f"{settings.lightcurve_url}/api/v1/events/{alert_id}/lightcurve",
                "table fragment": f"{settings.public_url}/event/{alert_id}/points?page=3"}
        for name, url in urls.items():
            await timed(http, url, 1)  # warm
            median, size = await timed(http, url, n)
            print(f"{name:18s} median of {n}: {median * 1000:7.1f} ms  ({size / 1e6:.1f} MB)  "
                  f"= {median / GOAL_S[name]:.2f} x the goal of {GOAL_S[name] * 1000:.0f} ms")
        print(f"uptime after:  {uptime()}")
    await client.close()


async def main(points: int, observatories: int, n: int) -> None:
    async with launcher.isolated_system("benchev") as (settings, _):
        await run(settings, points, observatories, n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=25_000)
    parser.add_argument("--observatories", type=int, default=50)
    parser.add_argument("--requests", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(main(args.points, args.observatories, args.requests))
