"""Calibration compute alone, against a 3-sigma-clipped median on the same arrays in the same run.

For ``--fields`` seeded simulated observations of ``--stars`` catalogue stars (the random
observations of ``bench/accuracy.py``, with the catalogue size fixed), each catalogue is written once
as SExtractor ASCII_HEAD text, then timed, interleaved field by field so both see the same machine:

* ours: read the text (``read_catalogue``) + ``calibrate`` against every survey (match radii, one-to-one
  match, every band's fit, selection, the target or its limit): the calibration service's compute;
* baseline: read the same text + the same one-to-one match at 2" to every survey + a 3-sigma-clipped
  median (astropy ``sigma_clipped_stats``) of ``m_inst - m_ref`` for every band with values.

Prints medians and p95 of both, their ratio, the fit of ours alone, and the goal beside each figure;
``--profile`` adds the top lines of a cProfile of ours.

Usage: ``.venv/bin/python bench/calibrate.py [--fields 60] [--stars 1001] [--seed 2026] [--profile]``
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import dataclasses  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import random_spec  # noqa: E402
from astropy.stats import sigma_clipped_stats  # noqa: E402

from services.calibration.science.calibrate import calibrate  # noqa: E402
from services.calibration.science.crossmatch import match_one_to_one  # noqa: E402
from services.calibration.science.simulate import simulate  # noqa: E402
from shared.catalogue.model import StarTable  # noqa: E402
from shared.catalogue.reader import read_catalogue  # noqa: E402

GOAL_COMPUTE_MS = 5.0
GOAL_RATIO = 2.0
BASELINE_RADIUS_ARCSEC = 2.0


def ascii_head(stars: StarTable) -> bytes:
    """The catalogue as SExtractor ASCII_HEAD text, as an observer would upload it."""
    lines = ["#   1 NUMBER          Running object number",
             "#   2 ALPHA_J2000     Right ascension of barycenter (J2000)  [deg]",
             "#   3 DELTA_J2000     Declination of barycenter (J2000)      [deg]",
             "#   4 MAG_AUTO        Kron-like elliptical aperture magnitude [mag]",
             "#   5 MAGERR_AUTO     RMS error for AUTO magnitude            [mag]"]
    filt = stars.header.get("FILTER")
    if filt:
        lines.insert(0, f"# FILTER = '{filt}'")
    for i, (ra, dec, mag, err) in enumerate(zip(stars.ra_deg, stars.dec_deg, stars.mag, stars.mag_err, strict=True)):
        lines.append(f"{i + 1:10d} {ra:13.8f} {dec:13.8f} {mag:9.4f} {err:8.4f}")
    return ("\n".join(lines) + "\n").encode()


def ours(sim, text: bytes):
    stars = read_catalogue(text)
    return calibrate(stars, sim.references, target_ra_deg=sim.target_ra_deg, target_dec_deg=sim.target_dec_deg,
                     declared_filter=sim.declared_filter_argument)


def baseline(sim, text: bytes) -> dict[str, float]:
    stars = read_catalogue(text)
    zps = {}
    for ref in sim.references:
        i_cat, i_ref, _ = match_one_to_one(stars.ra_deg, stars.dec_deg, ref.ra_deg, ref.dec_deg,
                                           BASELINE_RADIUS_ARCSEC)
        for band, mags in ref.mags.items():
            d = stars.mag[i_cat] - mags[i_ref]
            d = d[np.isfinite(d)]
            if d.size >= 3:
                zps[f"{ref.survey}/{band}"] = float(sigma_clipped_stats(d, sigma=3.0)[1])
    return zps


def clipped_alone(sim, text: bytes) -> float:
    """Seconds of the clipped medians alone (the match done beforehand)."""
    stars = read_catalogue(text)
    diffs = []
    for ref in sim.references:
        i_cat, i_ref, _ = match_one_to_one(stars.ra_deg, stars.dec_deg, ref.ra_deg, ref.dec_deg,
                                           BASELINE_RADIUS_ARCSEC)
        for mags in ref.mags.values():
            d = stars.mag[i_cat] - mags[i_ref]
            diffs.append(d[np.isfinite(d)])
    t0 = time.perf_counter()
    for d in diffs:
        if d.size >= 3:
            sigma_clipped_stats(d, sigma=3.0)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=60)
    parser.add_argument("--stars", type=int, default=1001)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    cases = []
    for i in range(args.fields):
        sim = simulate(dataclasses.replace(random_spec(args.seed, i), n_catalogue=args.stars, n_junk_rows=0))
        cases.append((sim, ascii_head(sim.stars)))
    for sim, text in cases[:3]:  # warm imports and caches
        ours(sim, text)
        baseline(sim, text)

    t_ours, t_base, t_clip = [], [], []
    for sim, text in cases:
        t0 = time.perf_counter()
        ours(sim, text)
        t1 = time.perf_counter()
        baseline(sim, text)
        t2 = time.perf_counter()
        t_ours.append(t1 - t0)
        t_base.append(t2 - t1)
        t_clip.append(clipped_alone(sim, text))
    ms = lambda xs, q=50: 1000.0 * float(np.percentile(xs, q))  # noqa: E731
    ratios = np.array(t_ours) / np.array(t_base)
    n_stars = int(np.median([len(sim.stars) for sim, _ in cases]))
    n_refs = int(np.median([sum(len(r) for r in sim.references) for sim, _ in cases]))

    print(f"calibration compute: {args.fields} simulated fields of {n_stars} catalogue stars "
          f"({n_refs} reference stars over {len(cases[0][0].references)} surveys), seed {args.seed}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, load {os.getloadavg()[0]:.2f}")
    print(f"{'measure':<58}{'median':>10}{'p95':>10}   goal")
    print(f"{'ours: read + match + fit + target, all bands':<58}{ms(t_ours):>8.1f}ms{ms(t_ours, 95):>8.1f}ms"
          f"   <= {GOAL_COMPUTE_MS:g} ms")
    print(f"{'baseline: read + match + 3-sigma-clipped median, all bands':<58}{ms(t_base):>8.1f}ms"
          f"{ms(t_base, 95):>8.1f}ms")
    print(f"{'  of which the clipped medians alone':<58}{ms(t_clip):>8.2f}ms{ms(t_clip, 95):>8.2f}ms")
    print(f"{'ratio ours / baseline (per field, median)':<58}{float(np.median(ratios)):>9.1f}x"
          f"{float(np.percentile(ratios, 95)):>9.1f}x   <= {GOAL_RATIO:g}x")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for sim, text in cases:
            ours(sim, text)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
        print("\nprofile of ours, by own time:")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


if __name__ == "__main__":
    main()
