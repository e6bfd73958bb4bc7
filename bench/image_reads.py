"""What one read of an uploaded frame costs, and so what reading it once per image stage saves.

For 2k x 2k and 4k x 4k simulated frames stored as 16-bit integers (BZERO 32768, as CCD cameras write
them), plain and gzip-compressed, prints the median over several runs of: decoding the frame
(``read_image``), standardising its header (``standardise_header``), pickling the file's bytes into a
pool worker, and pickling the decoded frame (what the astrometry's wide fallback now receives instead
of reading the file again). Per image, astrometry and photometry now decode the frame twice in all
(once each) and standardise nothing; before they decoded it three times (four with the wide
fallback) and standardised it as often. Run: ``.venv/bin/python bench/image_reads.py [--runs 5]``.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from shared.fitsimage import read_image, standardise_header  # noqa: E402
from shared.simimage import as_int16, make_reference_field, simulate_image  # noqa: E402


def median_ms(step, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reference = make_reference_field(ra_deg=150.0, dec_deg=20.0, radius_deg=0.5, n_stars=3000, seed=1)
    print(f"# {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}; median of {args.runs} runs, ms")
    print("| frame | file | MB | read_image | standardise_header | pickle bytes | pickle frame |")
    print("|---|---|---|---|---|---|---|")
    for size in (2048, 4096):
        data, _ = simulate_image(reference=reference, size_px=size, centre_ra_deg=150.0, centre_dec_deg=20.0,
                                 pixel_scale_arcsec=0.4 * 2048 / size, transient_mag=None, filter_name="r", seed=1)
        plain = as_int16(data)
        for name, raw in (("int16", plain), ("int16 .gz", gzip.compress(plain, compresslevel=6))):
            frame = read_image(raw)
            row = [median_ms(lambda raw=raw: read_image(raw), args.runs),
                   median_ms(lambda frame=frame: standardise_header(frame.header), args.runs),
                   median_ms(lambda raw=raw: pickle.loads(pickle.dumps(raw)), args.runs),
                   median_ms(lambda frame=frame: pickle.loads(pickle.dumps(frame)), args.runs)]
            print(f"| {size} | {name} | {len(raw) / 1e6:.1f} | " + " | ".join(f"{v:.0f}" for v in row) + " |")


if __name__ == "__main__":
    main()
