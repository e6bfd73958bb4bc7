"""Image upload to calibrated point through the five service processes, per stage, and its accuracy.

For each frame size, several seeded simulated frames (0.4"/px, a header WCS 0.3 deg off, a transient
of r = 16.5 at S/N > 50, TAN-SIP distortion, cosmic rays) of a synthetic reference field imported into
the store are uploaded (non-dry) with `/cgi/upload`. Printed: median time from the request to the
answer, and the split by stage from the messages' timestamps (ingest -> image.received.v1 ->
image.solved.v1 -> catalogue.measured.v1 -> observation.calibrated.v1 -> answer); the WCS rms the
astrometry reports; the calibrated magnitude minus the truth (mean and its error over the set).
Run: ``.venv/bin/python bench/images_services.py [--runs 3] [--sizes 1024 2048 4096]``.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import math
import os
import platform
import statistics
import time

import aiohttp

from services import launcher
from services.demo import load_demo
from shared.contracts import AstrometrySummary
from shared.db import make_client
from shared.messaging import Broker
from shared.refcat.store import RefcatStore
from shared.refcat.surveys import DEMO_SURVEY
from shared.simfield import simulate_field
from shared.simimage import as_int16, simulate_image

RA0, DEC0, SCALE = 210.5, -12.3, 0.4
STAGES = ("ingest", "astrometry", "photometry", "calibration", "answer")


class Stamps:
    """Arrival time of each pipeline message, by observation id."""

    def __init__(self):
        self.at: dict[tuple[str, str], float] = {}
        self.solved: dict[str, AstrometrySummary] = {}
        self.changed = asyncio.Condition()

    def handler(self, key: str):
        async def on(message) -> None:
            async with self.changed:
                self.at[(key, message.observation_id)] = time.perf_counter()
                if key == "image.solved.v1":
                    self.solved[message.observation_id] = message.astrometry
                self.changed.notify_all()
        return on

    async def when(self, key: str, observation_id: str) -> float:
        async with asyncio.timeout(30), self.changed:
            await self.changed.wait_for(lambda: (key, observation_id) in self.at)
            return self.at[(key, observation_id)]


async def upload(http, url: str, token: str, event: str, data: bytes, n: int) -> tuple[float, float, dict]:
    form = aiohttp.FormData()
    for key, value in {"EventID": event, "hashtag": token, "MJD": str(61000 + n), "matchDist": "",
                       "forceFilter": "no", "dryRun": "0", "noPlot": "1", "outputFormat": "json"}.items():
        form.add_field(key, value)
    form.add_field("sexCat", io.BytesIO(data), filename=f"frame{n}.fits")
    start = time.perf_counter()
    async with http.post(f"{url}/cgi/upload", data=form) as response:
        answer = await response.json(content_type=None)
        if response.status != 200:
            raise RuntimeError(f"frame {n}: HTTP {response.status}: {answer}")
    return start, time.perf_counter(), answer


async def measure(settings, run_dir, sizes: list[int], runs: int) -> None:
    demo = await load_demo(out_dir=run_dir / "demo", settings=settings)
    radius = 1.2 * max(sizes) * SCALE / 3600 * math.sqrt(2) / 2
    density_per_deg2 = 1500 / (2048 * SCALE / 3600) ** 2
    field = simulate_field(ra_deg=RA0, dec_deg=DEC0, radius_arcmin=radius * 60, seed=11, target_mag=None,
                           outlier_fraction=0.0, n_faint=0, n_stars=int(density_per_deg2 * math.pi * radius**2))
    client = make_client(settings.mongo_url.get_secret_value())
    store = RefcatStore(client[settings.mongo_db])
    await store.import_table(field.reference, "apass9", survey=DEMO_SURVEY, version="synthetic-demo-1",
                             synthetic=True, source_name="bench")
    (reference,) = await store.cone(RA0, DEC0, radius)
    await client.close()
    broker = Broker(settings.amqp_url.get_secret_value(), settings.exchange)
    await broker.start()
    stamps = Stamps()
    for key in ("image.received.v1", "image.solved.v1", "catalogue.measured.v1", "observation.calibrated.v1"):
        await broker.subscribe(None, {key: stamps.handler(key)})
    print(f"# {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}; {len(reference)} synthetic reference stars")
    print("| frame | runs | " + " | ".join(STAGES) + " | **total** | WCS rms | mag - truth (mean ± err) |")
    print("|---|---|" + "---|" * (len(STAGES) + 3))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
            n = 0
            for size in sizes:
                rows = []
                for seed in range(runs + 1):  # the first frame of each size warms up, not counted
                    data, truth = simulate_image(reference=reference, size_px=size, centre_ra_deg=RA0,
                                                 centre_dec_deg=DEC0, pixel_scale_arcsec=SCALE, wcs_offset_deg=0.3,
                                                 transient_mag=16.5, filter_name="r", seed=100 * size + seed,
                                                 n_faint=size * size * 375 // (2048 * 2048), sip_strength_px=2.0)
                    data = as_int16(data)
                    event = f"ivo://BenchFrame{size}_{seed}"
                    async with http.post(f"{settings.public_url}/cgi/newevent", data={
                            "EventID": event, "ra": f"{truth['event_ra_deg']:.7f}",
                            "dec": f"{truth['event_dec_deg']:.7f}", "hashtag": demo["token"]}):
                        pass
                    n += 1
                    start, end, answer = await upload(http, settings.public_url, demo["token"], event, data, n)
                    if seed == 0:
                        continue
                    oid = answer["observation_id"]
                    keys = ("image.received.v1", "image.solved.v1", "catalogue.measured.v1",
                            "observation.calibrated.v1")
                    marks = [start] + [await stamps.when(k, oid) for k in keys] + [end]
                    rows.append({"stages": [b - a for a, b in itertools.pairwise(marks)], "total": end - start,
                                 "rms": stamps.solved[oid].rms_arcsec,
                                 "dmag": answer["mag"] - truth["transient_mag"]})
                med = [statistics.median(r["stages"][i] for r in rows) for i in range(len(STAGES))]
                dm = [r["dmag"] for r in rows]
                err = statistics.stdev(dm) / math.sqrt(len(dm)) if len(dm) > 1 else float("nan")
                print(f"| {size} x {size} | {len(rows)} | " + " | ".join(f"{m:.2f}" for m in med)
                      + f" | **{statistics.median(r['total'] for r in rows):.2f}** | "
                      f"{statistics.median(r['rms'] for r in rows):.3f}\" | {statistics.mean(dm):+.3f} ± {err:.3f} |",
                      flush=True)
    finally:
        await broker.close()


async def main(sizes: list[int], runs: int) -> None:
    async with launcher.isolated_system("benchimg") as (settings, run_dir):
        await measure(settings, run_dir, sizes, runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.runs))
