"""The reference-catalogue store: bulk import rate, peak memory of an import, cone query times.

Generates a synthetic catalogue (ATLAS-RefCat2 VizieR layout: positions, proper motions, g r i z with
errors) over a 20 x 20 degree patch at a realistic density (about 6,000 stars per square degree to
r = 19.5, so a 15' cone holds ~1,200 stars and a 1-degree cone ~19,000), in random row order (the worst
case for the store's pixel blocks), writes it as CSV and Parquet, imports it into an nx-27017 that the
bench starts on a free port in a temporary folder (each import in a child process, so that its peak
resident memory is its own), then times cones of 15' and 1 degree at random positions from the warm
store. Two catalogue sizes show whether peak memory depends on the file size.

    .venv/bin/python bench/refcat.py              # 2.4 M stars (and 0.6 M for the memory comparison)
    .venv/bin/python bench/refcat.py --stars 300000 --small 100000 --queries 50   # a quick run
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RA_RANGE = (150.0, 170.0)
DEC_RANGE = (-5.0, 15.0)
COLUMNS = ["RA_ICRS", "DE_ICRS", "pmRA", "pmDE", "gmag", "e_gmag", "rmag", "e_rmag", "imag", "e_imag", "zmag", "e_zmag"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_nx(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).with_name("nx-27017")
    proc = subprocess.Popen([str(exe) if exe.exists() else "nx-27017", "--data-dir", str(folder / "data"), "-p",
                             str(port), "--log-file", str(folder / "nx.log"), "--pid-file", str(folder / "nx.pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"mongodb://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("nx-27017 did not start")


def synthetic_rows(n: int, seed: int, zone: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """n stars uniform on the sphere inside the patch (or inside the fraction ``zone`` of its sine of
    declination range, sorted by RA); r from rising number counts (dN/dm ~ 10^0.3m, 12..19.5),
    main-sequence-like colours, APASS/PS1-like errors, proper motions of a few mas/yr."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(*RA_RANGE, n)
    sin_lo, sin_hi = np.sin(np.radians(DEC_RANGE))
    if zone is not None:
        sin_lo, sin_hi = sin_lo + zone[0] * (sin_hi - sin_lo), sin_lo + zone[1] * (sin_hi - sin_lo)
        ra = np.sort(ra)
    dec = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, n)))
    u = rng.uniform(size=n)
    lo, hi, k = 12.0, 19.5, 0.3 * np.log(10)
    r = np.log(np.exp(k * lo) + u * (np.exp(k * hi) - np.exp(k * lo))) / k
    gr = np.clip(rng.normal(0.55, 0.28, n), -0.3, 1.6)
    ri = 0.42 * gr - 0.03 + rng.normal(0, 0.02, n)
    iz = 0.3 * gr + rng.normal(0, 0.02, n)
    mags = {"g": r + gr, "r": r, "i": r - ri, "z": r - ri - iz}
    out = {"RA_ICRS": ra, "DE_ICRS": dec, "pmRA": rng.normal(-3, 6, n), "pmDE": rng.normal(-2, 6, n)}
    for band, m in mags.items():
        err = 0.005 + 0.02 * 10 ** (0.4 * (m - 18.0))
        out[f"{band}mag"] = np.round(m + rng.normal(0, 1, n) * err, 4)
        out[f"e_{band}mag"] = np.round(err, 4)
    return out


def write_catalogue(folder: Path, n: int, seed: int, *, sky_order: bool = False) -> tuple[Path, Path]:
    """CSV and Parquet files of n stars, written in pieces of 200k rows (the bench's own memory stays
    small). Rows are in random sky order, or with ``sky_order`` in 1-degree declination zones (as
    survey files usually are: ATLAS-RefCat2 by 1-degree zone, Gaia by source_id = HEALPix)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tag = "zoned" if sky_order else "random"
    csv_path, pq_path = folder / f"refcat2_{n}_{tag}.csv", folder / f"refcat2_{n}_{tag}.parquet"
    writer = None
    pieces = range(0, n, 200_000)
    with open(csv_path, "w") as fh:
        fh.write(",".join(COLUMNS) + "\n")
        for i, start in enumerate(pieces):
            rows = synthetic_rows(min(200_000, n - start), seed + i,
                                  zone=(i / len(pieces), (i + 1) / len(pieces)) if sky_order else None)
            block = np.column_stack([rows[c] for c in COLUMNS])
            np.savetxt(fh, block, delimiter=",", fmt=["%.7f", "%.7f", "%.3f", "%.3f"] + ["%.4f"] * 8)
            table = pa.table({c: rows[c] for c in COLUMNS})
            if writer is None:
                writer = pq.ParquetWriter(pq_path, table.schema)
            writer.write_table(table)
    writer.close()
    return csv_path, pq_path


def child_import(args) -> None:
    """Runs in a child process: one import, then prints rows, seconds and peak RSS as JSON."""
    from pymongo import AsyncMongoClient

    from shared.refcat.importer import import_file
    from shared.refcat.store import RefcatStore

    async def run():
        client = AsyncMongoClient(args.mongo_url)
        try:
            store = RefcatStore(client[args.db])
            t0 = time.perf_counter()
            rows = await import_file(store, args.child_import, survey=args.survey, preset="atlas-refcat2",
                                     version="synthetic-bench", replace=True)
            return rows, time.perf_counter() - t0
        finally:
            await client.close()

    if args.trace_memory:
        import tracemalloc

        tracemalloc.start()
    rows, seconds = asyncio.run(run())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if args.trace_memory else None
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mib": peak_mib, "traced_peak_mib": traced}))


def run_import(path: Path, mongo_url: str, db: str, survey: str, *, trace: bool = False) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child-import", str(path), "--mongo-url", mongo_url,
                          "--db", db, "--survey", survey] + (["--trace-memory"] if trace else []),
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_rss_mib() -> float:
    """Peak RSS of a child that only imports the modules an import needs (the fixed cost)."""
    code = ("import resource, shared.refcat.importer, shared.refcat.store, pymongo, pyarrow.parquet;"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip())


async def time_cones(mongo_url: str, db: str, survey: str, radius_deg: float, n: int, seed: int) -> dict:
    from pymongo import AsyncMongoClient

    from shared.refcat.store import RefcatStore

    rng = np.random.default_rng(seed)
    margin = radius_deg + 0.5
    ras = rng.uniform(RA_RANGE[0] + margin, RA_RANGE[1] - margin, n)
    decs = rng.uniform(DEC_RANGE[0] + margin, DEC_RANGE[1] - margin, n)
    client = AsyncMongoClient(mongo_url)
    try:
        store = RefcatStore(client[db])
        for ra, dec in zip(ras[:50], decs[:50], strict=True):  # warm: connection pool, caches
            await store.cone(ra, dec, radius_deg, surveys=[survey])
        times, counts, next_frame = [], [], []
        for ra, dec in zip(ras, decs, strict=True):
            t0 = time.perf_counter()
            [stars] = await store.cone(ra, dec, radius_deg, surveys=[survey])
            times.append(time.perf_counter() - t0)
            counts.append(len(stars))
            # the next frame of the same transient, right after (moved by up to 0.5'): its blocks are in memory
            t0 = time.perf_counter()
            await store.cone(ra + rng.uniform(-1, 1) / 120, dec + rng.uniform(-1, 1) / 120, radius_deg,
                             surveys=[survey])
            next_frame.append(time.perf_counter() - t0)
        again = []  # each field asked for again after all the others, moved by up to 0.5' (after all the others)
        for ra, dec in zip(ras + rng.uniform(-1, 1, n) / 120, decs + rng.uniform(-1, 1, n) / 120, strict=True):
            t0 = time.perf_counter()
            await store.cone(ra, dec, radius_deg, surveys=[survey])
            again.append(time.perf_counter() - t0)
    finally:
        await client.close()
    times.sort()
    again.sort()
    next_frame.sort()
    return {"radius_deg": radius_deg, "queries": n, "median_ms": 1e3 * statistics.median(times),
            "p95_ms": 1e3 * times[int(0.95 * (n - 1))], "median_stars": int(statistics.median(counts)),
            "again_median_ms": 1e3 * statistics.median(again), "again_p95_ms": 1e3 * again[int(0.95 * (n - 1))],
            "next_median_ms": 1e3 * statistics.median(next_frame),
            "next_p95_ms": 1e3 * next_frame[int(0.95 * (n - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stars", type=int, default=2_400_000)
    parser.add_argument("--small", type=int, default=600_000, help="stars of the second file (memory comparison)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child-import")
    parser.add_argument("--mongo-url")
    parser.add_argument("--db", default="bench")
    parser.add_argument("--survey", default="ATLAS")
    parser.add_argument("--trace-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        child_import(args)
        return

    folder = Path(tempfile.mkdtemp(prefix="cpcs-bench-refcat-"))
    proc, url = start_nx(folder)
    try:
        t0 = time.perf_counter()
        big_csv, big_pq = write_catalogue(folder, args.stars, seed=1)
        zoned_csv, zoned_pq = write_catalogue(folder, args.stars, seed=1, sky_order=True)
        small_csv, small_pq = write_catalogue(folder, args.small, seed=100)
        _, small_zoned_pq = write_catalogue(folder, args.small, seed=100, sky_order=True)
        os.sync()  # the generated files must not be written back while the imports are timed
        print(f"generated 2 x {args.stars:,} + 2 x {args.small:,} stars in {time.perf_counter() - t0:.1f} s "
              f"(CSV {big_csv.stat().st_size / 2**20:.0f} MiB, Parquet {big_pq.stat().st_size / 2**20:.0f} MiB)")
        base = baseline_rss_mib()
        print(f"baseline peak RSS of a child with the import modules loaded: {base:.0f} MiB")
        results = {}
        for label, path, db in [("small csv", small_csv, "small_csv"), ("small parquet", small_pq, "small_pq"),
                                ("zoned csv", zoned_csv, "zoned_csv"), ("zoned parquet", zoned_pq, "zoned_pq"),
                                ("random parquet", big_pq, "big_pq"), ("random csv", big_csv, "bench")]:
            r = run_import(path, url, db, args.survey)
            results[label] = r
            print(f"import {label:14s} {r['rows']:>9,} stars in {r['seconds']:6.1f} s = "
                  f"{r['rows'] / r['seconds']:>8,.0f} stars/s, peak RSS {r['peak_rss_mib']:.0f} MiB")
        for label, path in [("small zoned parquet", small_zoned_pq), ("zoned parquet", zoned_pq)]:
            r = run_import(path, url, "traced", args.survey, trace=True)
            print(f"traced import {label:19s} {r['rows']:>9,} stars: peak of Python-allocated memory "
                  f"{r['traced_peak_mib']:.0f} MiB (tracemalloc), peak RSS {r['peak_rss_mib']:.0f} MiB")
        for db, label in (("bench", "random-order import"), ("zoned_csv", "zoned import")):
            for radius in (0.25, 1.0):
                q = asyncio.run(time_cones(url, db, args.survey, radius, args.queries, seed=7))
                goal = 2.0 if radius < 0.5 else 20.0
                print(f"{label:19s} cone {radius * 60:4.0f}': median {q['median_ms']:.2f} ms, p95 "
                      f"{q['p95_ms']:.2f} ms ({q['queries']} random positions, median {q['median_stars']} stars); "
                      f"the same fields again: median {q['again_median_ms']:.2f} ms, p95 {q['again_p95_ms']:.2f} ms "
                      f"(goal <= {goal:.0f} ms: ratios {q['median_ms'] / goal:.2f} first, "
                      f"{q['again_median_ms'] / goal:.2f} again); the next frame of a field right after: "
                      f"median {q['next_median_ms']:.2f} ms, p95 {q['next_p95_ms']:.2f} ms (ratio "
                      f"{q['next_median_ms'] / goal:.2f})")
        print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, store data "
              f"{sum(f.stat().st_size for f in (folder / 'data').rglob('*') if f.is_file()) / 2**20:.0f} MiB")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
