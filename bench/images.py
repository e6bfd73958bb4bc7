"""Image upload to calibrated point, at the science level: read -> standardise -> solve -> measure -> calibrate.

For 1k x 1k, 2k x 2k and 4k x 4k simulated frames (0.4"/px, 1.2" seeing, 1 500 stars per 2k x 2k
frame plus a quarter as many fainter ones, a TAN-SIP distortion, cosmic rays, a transient of r = 17.5,
a header WCS 0.3 deg off so that the astrometry solves the field with astrometry.net), prints the
median time of each stage over several runs (each run a new seeded frame; simulation not timed) and
the accuracy reached (WCS error against the truth, transient magnitude minus the truth).

The reference cone is cut from an in-memory synthetic field, standing in for the store query the
services make (``RefcatStore.cone``), and is timed as "references". Run:
``.venv/bin/python bench/images.py [--runs 5] [--sizes 1024 2048 4096]``.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from astropy.wcs import WCS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.astrometry.science import reference_cone, solve  # noqa: E402
from services.astrometry.science.fit import sky_separation_arcsec  # noqa: E402
from services.calibration.science.calibrate import calibrate  # noqa: E402
from services.photometry.science import measure  # noqa: E402
from shared.fitsimage import read_image, standardise_header  # noqa: E402
from shared.simimage import make_reference_field, select_cone, simulate_image  # noqa: E402

RA0, DEC0, SCALE = 150.0, 20.0, 0.4
STARS_PER_2K = 1500
STAGES = ("read", "standardise", "references", "solve", "measure", "calibrate")


def wcs_error_arcsec(solved: WCS, truth_header: dict, shape) -> float:
    truth = WCS(truth_header)
    gy, gx = np.mgrid[0:shape[0] - 1:25j, 0:shape[1] - 1:25j]
    a = solved.all_pix2world(gx.ravel(), gy.ravel(), 0)
    b = truth.all_pix2world(gx.ravel(), gy.ravel(), 0)
    return float(np.sqrt(np.mean(sky_separation_arcsec(a[0], a[1], b[0], b[1]) ** 2)))


def one_run(reference, size: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    data, truth = simulate_image(reference=reference, size_px=size, centre_ra_deg=RA0 + rng.uniform(-0.02, 0.02),
                                 centre_dec_deg=DEC0 + rng.uniform(-0.02, 0.02), rotation_deg=rng.uniform(0, 360),
                                 pixel_scale_arcsec=SCALE, wcs_offset_deg=0.3, transient_mag=17.5, seed=seed,
                                 n_faint=size * size * STARS_PER_2K // (4 * 2048 * 2048), sip_strength_px=2.0)
    ev_ra, ev_dec = truth["event_ra_deg"], truth["event_dec_deg"]
    t = {}
    t0 = time.perf_counter()
    frame = read_image(data)
    t["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    record = standardise_header(frame.header)
    t["standardise"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cone = select_cone(reference, *reference_cone(frame.shape, pixel_scale_arcsec=record.pixel_scale_arcsec,
                                                  hint_ra_deg=ev_ra, hint_dec_deg=ev_dec))
    t["references"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    solved = solve(frame, references_ra_deg=cone.ra_deg, references_dec_deg=cone.dec_deg,
                   references_mag=cone.mags["r"], hint_ra_deg=ev_ra, hint_dec_deg=ev_dec, record=record)
    t["solve"] = time.perf_counter() - t0
    if solved.status != "solved":
        raise SystemExit(f"{size}px seed {seed}: astrometry failed: {solved.reason}")
    t0 = time.perf_counter()
    phot = measure(frame, solved.wcs, target_ra_deg=ev_ra, target_dec_deg=ev_dec, record=record)
    t["measure"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cal = calibrate(phot.stars, [cone], target_ra_deg=ev_ra, target_dec_deg=ev_dec)
    t["calibrate"] = time.perf_counter() - t0
    t["total"] = sum(t[s] for s in STAGES)
    return {"t": t, "solve_split": solved.timings_s, "measure_split": phot.timings_s,
            "wcs_error_arcsec": wcs_error_arcsec(solved.wcs, truth["wcs_header"], frame.shape),
            "dmag": None if cal.mag is None else cal.mag - 17.5, "n_stars": len(phot.stars),
            "n_wcs_stars": solved.n_stars}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runs-4k", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    args = parser.parse_args()
    radius = 2.2 * max(args.sizes) * SCALE / 3600 * math.sqrt(2) / 2 + 0.05
    density = STARS_PER_2K / (2048 * SCALE / 3600) ** 2
    reference = make_reference_field(ra_deg=RA0, dec_deg=DEC0, radius_deg=radius, seed=1,
                                     n_stars=int(density * math.pi * radius**2))
    print(f"# {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}; {len(reference)} reference stars")
    header = "| frame | runs | " + " | ".join(STAGES) + " | total | solve: detect / astrometry.net / refine | " \
             "measure: background / detect / PSF model / PSF fit / apertures | stars | WCS err | dmag |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for size in args.sizes:
        n = args.runs_4k if size >= 4096 else args.runs
        runs = [one_run(reference, size, seed) for seed in range(n)]

        def med(get):
            values = [get(r) for r in runs]
            values = [v for v in values if v is not None]
            return statistics.median(values) if values else float("nan")

        stages = " | ".join(f"{med(lambda r, s=s: r['t'][s]):.2f}" for s in STAGES)
        solve_split = " / ".join(f"{med(lambda r, k=k: r['solve_split'].get(k, 0.0)):.2f}"
                                 for k in ("detect", "astrometry.net", "refine"))
        measure_split = " / ".join(f"{med(lambda r, k=k: r['measure_split'].get(k, 0.0)):.2f}"
                                   for k in ("background", "detect", "psf_model", "psf_photometry", "aperture"))
        print(f"| {size} x {size} | {n} | {stages} | **{med(lambda r: r['t']['total']):.2f}** | {solve_split} | "
              f"{measure_split} | {med(lambda r: r['n_stars']):.0f} | {med(lambda r: r['wcs_error_arcsec']):.3f}\" | "
              f"{med(lambda r: r['dmag']):+.3f} |", flush=True)


if __name__ == "__main__":
    main()
