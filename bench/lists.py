"""The list pages and answers on 10,000 events: the lightcurve service's copies of 10,000 events (and
follow-up points on the first 300 of them) written in bulk into a database of its own (an isolated
system: nx-27017, the five services as processes, the local RabbitMQ), then the median wall time of N
requests of each list answer (the page people see, the CPCS JSON, the REST pages: first, last, a search,
observed only, sorted by points), with ``uptime`` before and after; the goal is tens of milliseconds at
most (``GOAL_MS``)."""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta

import aiohttp
from pymongo import AsyncMongoClient

from services import launcher
from services.ingest.store import IngestStore
from services.ingest.tokens import new_token
from services.lightcurve.store import LightcurveStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GOAL_MS = 50.0


def event_copy(i: int) -> dict:
    """Lightcurve's copy of an event, with ``services.lightcurve.events.projection``'s keys."""
    return {"_id": f"ivo://bench/ev{i:05d}", "alert_id": i, "name": f"Bench{i:05d}", "aliases": [],
            "ra_deg": i % 360, "dec_deg": 10.0, "error_radius_deg": None, "target_usable": True,
            "no_target_reason": None, "source": "bench", "url": "", "n_packets": 1,
            "published": T0 + timedelta(minutes=i), "revision": 1}


def point(n: int, event: int) -> dict:
    return {"_id": n, "observation_id": f"bench{n}", "event_ivorn": f"ivo://bench/ev{event:05d}", "observatory_id": 1,
            "observatory": "Bench 1 m", "mjd": 61000 + n / 100, "mag": 17.0, "mag_err": 0.02, "calib_err": 0.01,
            "zp_err": 0.003, "total_err": 0.03, "is_limit": False, "limit_sigma": None, "filter": "r",
            "survey": "PS1", "mode": "AUTO", "npoints": 100 + n % 50, "zp": 25.0, "algorithm_version": "bench",
            "params_hash": "bench", "calibrated_at": T0 + timedelta(seconds=n), "stored_at": T0}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


async def timed(http: aiohttp.ClientSession, url: str, n: int, headers: dict) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(n):
        start = time.perf_counter()
        async with http.get(url, headers=headers) as response:
            body = await response.read()
            assert response.status == 200, (url, response.status, body[:300])
        times.append(time.perf_counter() - start)
        size = len(body)
    return statistics.median(times), size


async def run(settings: launcher.SystemSettings, events: int, n: int) -> None:
    client = AsyncMongoClient(settings.mongo_url.get_secret_value())
    db = client[settings.mongo_db]
    token = new_token("Bench")
    await IngestStore(db).add_token(token, observatory_id=None, user="bench", is_admin=True)
    start = time.perf_counter()
    for first in range(1, events + 1, 2000):
        await db.lightcurve_events.insert_many([event_copy(i) for i in range(first, min(events, first + 1999) + 1)])
    docs, k = [], 0
    for e in range(1, 301):
        for _ in range(1 + e % 7):
            k += 1
            docs.append(point(k, e))
    await LightcurveStore(db).upsert_points(docs)
    print(f"stored {events} event copies and {len(docs)} points in {time.perf_counter() - start:.1f} s")
    ingest, lc = settings.public_url, settings.lightcurve_url
    last = -(-events // 20)
    urls = {
        "list page (HTML), page 1": f"{ingest}/list_of_alerts",
        f"list page (HTML), page {last}": f"{ingest}/list_of_alerts?page={last}",
        "list page, search": f"{ingest}/list_of_alerts?q=bench0987",
        "list page, observed only": f"{ingest}/list_of_alerts?observed_only=1",
        "list page, by points": f"{ingest}/list_of_alerts?sort=points",
        "CPCS JSON (ingest)": f"{ingest}/list_of_alerts?format=json",
        "CPCS JSON, offset 9900": f"{ingest}/list_of_alerts?format=json&offset=9900",
        "REST page 1 (lightcurve)": f"{lc}/api/v1/lists/alerts",
        f"REST page {last} (lightcurve)": f"{lc}/api/v1/lists/alerts?page={last}",
        "follow-up list page": f"{ingest}/list_of_followups",
    }
    headers = {"Authorization": f"Bearer {token}"}
    print(f"uptime before: {uptime()}")
    async with aiohttp.ClientSession() as http:
        for name, url in urls.items():
            await timed(http, url, 1, headers)  # warm
            median, size = await timed(http, url, n, headers)
            print(f"{name:32s} median of {n}: {median * 1000:7.1f} ms ({size / 1e3:6.1f} kB)  goal {GOAL_MS:.0f} ms")
    print(f"uptime after:  {uptime()}")
    await client.close()


async def main(events: int, n: int) -> None:
    async with launcher.isolated_system("benchlists") as (settings, _):
        await run(settings, events, n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.requests))
