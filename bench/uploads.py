"""Catalogue uploads end to end: HTTP -> broker -> calibration -> light curve, five service processes.

Prints the median and 95th percentile of 200 sequential uploads of a 1,000-star catalogue (time to
the /cgi/upload answer, and to the point being on the light curve), then uploads per second with 8
concurrent clients, and how many of those were lost (never on the light curve) or calibrated twice.
With ``--real FILE`` (default: the 2,314-star LCO photpipe LDAC catalogue of ``../shared/data``, when
there), sequential dry-run answers for that real catalogue (references made from its own stars, an
APASS-like survey at their positions), once on the fresh stack and again after the synthetic uploads
have accumulated: the two medians say whether the answer stays flat as data accumulates.
``--replicas calibration=2`` runs two calibration processes competing for their queue;
``--scaleout calibration`` measures the concurrent phase with one and then two processes of that service
and prints the ratio. Runs on isolated names (its own exchange and database) on the local broker and an
embedded nx-27017 it starts itself.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from pathlib import Path

import aiohttp
import numpy as np
from _cpu import cpu_by_group, per_unit_ms
from _cpu import line as cpu_line
from astropy.table import Table

from services import launcher
from services.demo import load_demo
from shared.catalogue import read_catalogue
from shared.contracts import LightcurveUpdatedV1, ObservationCalibratedV1
from shared.db import make_client
from shared.messaging import Broker
from shared.refcat.store import RefcatStore
from shared.refcat.surveys import DEMO_SURVEY
from shared.simfield import APASS_COLUMNS, simulate_field

FIELD_RA_DEG, FIELD_DEC_DEG = 210.5, -12.3
REAL_DEFAULT = (Path(__file__).resolve().parents[2] / "shared/data/catalogues"
                / "lco_1m0-05_fa15_w_photpipe_LDAC_MAG_AUTO.fits")
REAL_SURVEY = "BENCH-REAL"


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
        self.calibrated: dict[str, int] = {}  # observation id -> observation.calibrated.v1 seen

    async def on_calibrated(self, message: ObservationCalibratedV1) -> None:
        self.calibrated[message.observation_id] = self.calibrated.get(message.observation_id, 0) + 1

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


def references_of(data: bytes, filename: str, seed: int = 1) -> tuple[Table, float, float]:
    """An APASS-layout reference table made from a real catalogue's own stars (positions jittered by 0.1",
    magnitudes = instrumental + 25 + a colour offset per band + 0.02 mag noise), and its median position."""
    stars = read_catalogue(data, filename=filename)
    ok = np.isfinite(stars.ra_deg) & np.isfinite(stars.dec_deg) & np.isfinite(stars.mag) & (stars.mag < 50)
    ra, dec, mag = stars.ra_deg[ok], stars.dec_deg[ok], stars.mag[ok]
    rng = np.random.default_rng(seed)
    jitter = 0.1 / 3600.0
    table = Table()
    table["RAJ2000"] = ra + rng.normal(0, jitter, ra.size) / np.cos(np.radians(dec))
    table["DEJ2000"] = dec + rng.normal(0, jitter, ra.size)
    for offset, col in zip((0.8, 0.4, 0.5, 0.0, -0.2), APASS_COLUMNS.values(), strict=True):
        table[col] = np.round(mag + 25.0 + offset + rng.normal(0, 0.02, ra.size), 3)
        table[f"e_{col}"] = np.full(ra.size, 0.02)
    return table, float(np.median(ra)), float(np.median(dec))


async def real_answers(http, url: str, token: str, event: str, data: bytes, filename: str, n: int) -> list[float]:
    """Milliseconds of ``n`` sequential dry-run answers for one real catalogue (after one not counted)."""
    times = []
    for i in range(n + 1):
        form = aiohttp.FormData()
        for key, value in {"EventID": event, "hashtag": token, "forceFilter": f"{REAL_SURVEY}/r", "dryRun": "1",
                           "noPlot": "1", "outputFormat": "json"}.items():
            form.add_field(key, value)
        form.add_field("sexCat", data, filename=filename)
        start = time.perf_counter()
        async with http.post(f"{url}/cgi/upload", data=form) as response:
            answer = await response.json()
            if response.status != 200:
                raise RuntimeError(f"the real catalogue was answered {response.status}: {answer}")
        if i:
            times.append((time.perf_counter() - start) * 1000)
    return times


async def main(n_sequential: int, n_concurrent_total: int, clients: int,
               replicas: dict[str, int] | None = None, real: tuple[str, bytes] | None = None,
               n_real: int = 30) -> dict:
    """``real``: (file name, bytes) of a real catalogue to answer before and after the synthetic uploads."""
    async with launcher.isolated_system("bench", replicas) as (settings, run):
        return await measure(settings, run, n_sequential, n_concurrent_total, clients, real, n_real)


async def measure(settings, run, n_sequential: int, n_concurrent_total: int, clients: int,
                  real: tuple[str, bytes] | None = None, n_real: int = 30) -> dict:
    name = settings.mongo_db
    broker = Broker(settings.amqp_url.get_secret_value(), name)
    try:
        demo = await load_demo(out_dir=run / "demo", settings=settings)
        field = simulate_field(ra_deg=FIELD_RA_DEG, dec_deg=FIELD_DEC_DEG, radius_arcmin=10, n_stars=800,
                               n_faint=200, seed=7, target_mag=17.0)
        client = make_client(settings.mongo_url.get_secret_value())
        await RefcatStore(client[name]).import_table(field.reference, "apass9", survey=DEMO_SURVEY,
                                                     version="synthetic-demo-1", synthetic=True, source_name="bench")
        if real is not None:
            real_name, real_data = real
            ref_table, real_ra, real_dec = references_of(real_data, real_name)
            await RefcatStore(client[name]).import_table(ref_table, "apass9", survey=REAL_SURVEY,
                                                         version="from-the-catalogue-1", synthetic=True,
                                                         source_name="bench")
        await client.close()
        event = "ivo://BenchField1"
        await broker.start()
        watcher = CurveWatcher()
        await broker.subscribe(None, {"lightcurve.updated.v1": watcher.on_updated,
                                      "observation.calibrated.v1": watcher.on_calibrated})
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{settings.public_url}/cgi/newevent", data={
                    "EventID": event, "ra": str(FIELD_RA_DEG), "dec": str(FIELD_DEC_DEG), "hashtag": demo["token"]}):
                pass
            real_before = real_after = None
            if real is not None:
                async with http.post(f"{settings.public_url}/cgi/newevent", data={
                        "EventID": "ivo://BenchReal1", "ra": str(real_ra), "dec": str(real_dec),
                        "hashtag": demo["token"]}):
                    pass
                real_before = await real_answers(http, settings.public_url, demo["token"], "ivo://BenchReal1",
                                                 real_data, real_name, n_real)
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
            lost = 0

            async def worker():
                nonlocal lost
                while queue:
                    n = queue.pop()
                    try:
                        await one_upload(http, settings.public_url, demo["token"], event,
                                         variant(field.catalogue_text, n), n, watcher)
                    except (TimeoutError, RuntimeError) as exc:
                        lost += 1
                        print(f"  upload {n} lost: {exc}")

            start, cpu_before = time.perf_counter(), cpu_by_group()
            await asyncio.gather(*(worker() for _ in range(clients)))
            elapsed = time.perf_counter() - start
            cpu_spent = per_unit_ms(cpu_before, cpu_by_group(), n_concurrent_total)
            if real is not None:
                real_after = await real_answers(http, settings.public_url, demo["token"], "ivo://BenchReal1",
                                                real_data, real_name, n_real)
        twice = sum(1 for count in watcher.calibrated.values() if count > 1)
        print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"{time.strftime('%Y-%m-%d')}")
        print(f"catalogue: {n_rows} stars, reference field {len(field.reference)} stars (synthetic)")
        if answers:
            print(f"sequential uploads: {n_sequential}")
            print(f"  answer of /cgi/upload   median {statistics.median(answers):7.1f} ms   "
                  f"p95 {launcher.percentile(answers, 95):7.1f} ms")
            print(f"  point on light curve    median {statistics.median(curves):7.1f} ms   "
                  f"p95 {launcher.percentile(curves, 95):7.1f} ms")
            print(f"  goal: median <= 30 ms, p95 <= 50 ms; ratio median/goal = "
                  f"{statistics.median(answers) / 30:.2f}")
        if real_before and real_after:
            stored = 5 + n_sequential + n_concurrent_total
            print(f"real catalogue {real_name} ({len(read_catalogue(real_data, filename=real_name))} stars), "
                  f"{n_real} sequential dry runs:")
            for when, times in (("on the fresh stack", real_before), (f"after {stored} uploads stored", real_after)):
                print(f"  {when:<28} median {statistics.median(times):7.1f} ms   "
                      f"p95 {launcher.percentile(times, 95):7.1f} ms   (goal: median <= 50 ms, flat)")
            print(f"  ratio after / before = {statistics.median(real_after) / statistics.median(real_before):.2f}")
        rate = n_concurrent_total / elapsed
        print(f"concurrent: {n_concurrent_total} uploads by {clients} clients in {elapsed:.2f} s = "
              f"{rate:.1f} uploads/s (goal >= 40: ratio {rate / 40:.2f}); lost {lost}, calibrated twice {twice}")
        print(f"  CPU per upload meanwhile: {cpu_line(cpu_spent)}")
        return {"answer_median_ms": statistics.median(answers) if answers else None, "uploads_per_s": rate,
                "lost": lost, "twice": twice, "cpu_ms": cpu_spent}
    finally:
        await broker.close()


async def scaleout(service: str, n_concurrent_total: int, clients: int) -> None:
    """The concurrent phase with one and then two processes of ``service``, on fresh systems."""
    one = await main(0, n_concurrent_total, clients)
    two = await main(0, n_concurrent_total, clients, {service: 2})
    print(f"\nscale-out of {service}: 1 process {one['uploads_per_s']:.1f} uploads/s, 2 processes "
          f"{two['uploads_per_s']:.1f} uploads/s: ratio {two['uploads_per_s'] / one['uploads_per_s']:.2f} "
          f"(goal >= 1.7); lost {one['lost']} + {two['lost']}, calibrated twice {one['twice']} + {two['twice']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--replicas", default="", help="e.g. calibration=2")
    parser.add_argument("--scaleout", metavar="SERVICE", help="compare 1 and 2 processes of SERVICE")
    parser.add_argument("--real", type=Path, default=REAL_DEFAULT if REAL_DEFAULT.exists() else None,
                        help="a real catalogue answered before and after the synthetic uploads ('' for none)")
    parser.add_argument("--real-uploads", type=int, default=30)
    args = parser.parse_args()
    real = (args.real.name, args.real.read_bytes()) if args.real and str(args.real) not in ("", ".") else None
    if args.scaleout:
        asyncio.run(scaleout(args.scaleout, args.concurrent, args.clients))
    else:
        asyncio.run(main(args.sequential, args.concurrent, args.clients, launcher.parse_replicas(args.replicas),
                         real, args.real_uploads))
