"""Injection-recovery accuracy of the calibration science: ours against the original's algorithm.

Simulates ``--n`` seeded observations (``services/calibration/science/simulate.py``: 5 to 2,000
catalogue stars, 0-40 % outliers, colour terms, astrometric jitter and offsets, catalogue cuts at
S/N 3-10, a declared filter in the header, the upload or nowhere, a target from S/N 3 to 1,000 or
absent, sometimes a known star), calibrates each with ``calibrate`` and with the baseline of
``bench/_baseline.py`` (with and without its APASS colour term), and prints one table.

Definitions (also in ``bench/RESULTS.md``):

* ZP error: the fit of the *observed* band (APASS/<band>) at the field's median natural colour,
  minus the truth there; fits that passed the gates.
* target residual: calibrated magnitude minus the true magnitude in the band the method chose, for
  targets in the catalogue that the method measured; pull = residual / total error (the baseline
  reports ``mag_err`` only: its pull uses that; "baseline, quadrature" adds its ``calib_err``).
  Width = standard deviation; robust width = 1.4826 MAD.
* limits: the cases where the target is not in the catalogue (absent, or below the catalogue's
  cut) and the method answered. Correct when it answered with a limit, the limit is within
  0.3 mag of the true detection threshold (the magnitude of true S/N max(5, catalogue cut) in the
  chosen band, at the target's colour) and the target, if any, is not brighter than the limit
  minus 0.3 mag.
* wrong band: the chosen band is not compatible with the band observed (``band_hint`` of the true
  filter, whether or not the filter was declared to the method).
* NaN: a non-failed answer with a NaN magnitude, zero point or error.

Usage: ``.venv/bin/python bench/accuracy.py [--n 1200] [--workers 2] [--seed 2026]``
"""
from __future__ import annotations

import os

# one BLAS thread per worker: the fits are small, and idle BLAS threads spinning on two cores
# cost more than they save (this also matters in the calibration service's process pool)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _baseline import baseline_calibrate  # noqa: E402

from services.calibration.science.bands import band_hint  # noqa: E402
from services.calibration.science.calibrate import calibrate  # noqa: E402
from services.calibration.science.simulate import FieldSpec, band_offsets, simulate  # noqa: E402

SPELLINGS = {"r": ("r", "rp", "SDSS-r'", "r'", "R"), "g": ("g", "gp", "SDSS g", "g'"),
             "i": ("i", "ip", "Sloan i'", "I"), "V": ("V", "Bessell V", "v", "V"), "B": ("B", "Bessell-B", "b", "B")}
METHODS = ("ours", "baseline", "baseline_nocolour")
LIMIT_TOL_MAG = 0.3


def random_spec(base_seed: int, i: int) -> FieldSpec:
    """The i-th random observation."""
    rng = np.random.default_rng([base_seed, i])
    band = str(rng.choice(["r", "r", "V", "g", "i", "B"]))
    where = rng.random()
    declared = str(rng.choice(SPELLINGS[band])) if where < 0.85 else None
    target = None if rng.random() < 0.25 else float(10 ** rng.uniform(math.log10(3.0), 3.0))
    return FieldSpec(
        seed=int(rng.integers(2**31)), n_catalogue=int(round(10 ** rng.uniform(math.log10(5), math.log10(2000)))),
        band=band, declared_filter=declared, declared_in_header=where < 0.7,
        zeropoint_mag=float(rng.uniform(-27.0, -19.0)),
        colour_term=0.0 if rng.random() < 0.4 else float(rng.uniform(-0.15, 0.15)),
        intrinsic_scatter_mag=float(rng.uniform(0.0, 0.04)), outlier_fraction=float(rng.uniform(0.0, 0.4)),
        target_snr=target, target_known=bool(rng.random() < 0.15), depth_mag=float(rng.uniform(16.5, 21.0)),
        source_noise_mag=float(rng.uniform(2.0, 4.0)), cut_snr=float(rng.uniform(3.0, 10.0)),
        jitter_arcsec=float(10 ** rng.uniform(math.log10(0.05), math.log10(1.2))),
        offset_arcsec=(float(rng.normal(0.0, 0.3)), float(rng.normal(0.0, 0.3))),
        fwhm_arcsec=float(rng.uniform(1.0, 3.5)), with_gaia=bool(rng.random() < 0.85),
        apass_depth_mag=float(rng.uniform(16.0, 17.5)), apass_jitter_arcsec=float(rng.uniform(0.1, 0.3)),
        ra_deg=float(rng.uniform(0.0, 360.0)), dec_deg=float(rng.uniform(-70.0, 70.0)),
        field_radius_arcmin=float(rng.uniform(4.0, 12.0)),
        n_junk_rows=int(rng.integers(1, 4)) if rng.random() < 0.1 else 0)


def _finite(*values) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _ours(sim) -> dict:
    t = sim.truth
    t0 = time.perf_counter()
    res = calibrate(sim.stars, sim.references, target_ra_deg=sim.target_ra_deg, target_dec_deg=sim.target_dec_deg,
                    declared_filter=sim.declared_filter_argument)
    dt = time.perf_counter() - t0
    try:
        json.dumps(res.to_dict(), allow_nan=False)
        nan = False
    except ValueError:
        nan = True
    zp_resid = None
    for f in res.fits:
        if (f.survey, f.band) == ("APASS", t.band) and f.passed:
            zp = f.zeropoint + (f.colour_slope or 0.0) * (t.median_colour_mag - (f.colour_pivot_mag or 0.0))
            zp_resid = zp - t.zeropoint_at_median_mag
    out = {"time_s": dt, "status": res.status, "band": res.band, "nan": nan, "zp_resid": zp_resid,
           "mag": res.mag, "err": res.total_err, "err_quad": res.total_err, "is_limit": res.is_limit,
           "radius": res.match_radius_arcsec, "colour_kept": res.colour_slope is not None,
           "scatter": res.scatter, "npoints": res.npoints, "outlier_fraction": res.outlier_fraction,
           "colour_slope": res.colour_slope, "colour_source": res.target_colour_source}
    return out


def _baseline(sim, colour_term: bool) -> dict:
    t = sim.truth
    t0 = time.perf_counter()
    res = baseline_calibrate(sim.stars, sim.references, target_ra_deg=sim.target_ra_deg,
                             target_dec_deg=sim.target_dec_deg, colour_term=colour_term)
    dt = time.perf_counter() - t0
    zp_resid = None
    for f in res.fits:
        if (f.survey, f.band) == ("APASS", t.band) and f.passed:
            off = band_offsets(t.median_gr_mag)
            vi = float(off["V"] - off["i"])
            zp = f.zeropoint - (f.colour_slope or 0.0) * vi
            zp_resid = zp - t.zeropoint_at_median_mag
    nan = res.status != "failed" and not _finite(res.mag, res.zeropoint)
    return {"time_s": dt, "status": res.status if not nan else "nan", "band": res.band, "nan": nan,
            "zp_resid": zp_resid, "mag": res.mag, "err": res.mag_err if not res.is_limit else None,
            "err_quad": math.hypot(res.mag_err, res.calib_err) if not res.is_limit and not nan else None,
            "is_limit": res.is_limit, "radius": res.target_radius_arcsec, "colour_kept": False}


def run_case(args: tuple[int, int]) -> dict:
    base_seed, i = args
    spec = random_spec(base_seed, i)
    t0 = time.perf_counter()
    sim = simulate(spec)
    t_sim = time.perf_counter() - t0
    t = sim.truth
    row = {"i": i, "n_catalogue": t.n_catalogue, "band": t.band, "declared": t.declared_filter is not None,
           "target_present": t.target_present, "detected": t.target_detected, "snr": t.target_snr, "t_sim": t_sim,
           "colour_term": t.colour_term}
    compatible = set(band_hint(t.band).bands)
    for name in METHODS:
        r = _ours(sim) if name == "ours" else _baseline(sim, colour_term=(name == "baseline"))
        r["wrong_band"] = r["band"] is not None and r["band"] not in compatible
        r["target_resid"] = r["limit_ok"] = None
        if r["status"] in ("calibrated", "limit") and not r["nan"] and r["band"] is not None:
            if t.target_detected and not r["is_limit"]:
                r["target_resid"] = r["mag"] - t.target_mags[r["band"]]
            elif not t.target_detected:
                ok = bool(r["is_limit"]) and abs(r["mag"] - t.depth_in(r["band"])) <= LIMIT_TOL_MAG
                if ok and t.target_present:
                    ok = t.target_mags[r["band"]] >= r["mag"] - LIMIT_TOL_MAG
                r["limit_ok"] = ok
                r["limit_resid"] = r["mag"] - t.depth_in(r["band"]) if r["is_limit"] else None
        row[name] = r
    return row


def _robust(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if x.size else float("nan")


def _pulls(rows: list[dict], name: str, key: str, keep) -> np.ndarray:
    return np.array([r[name]["target_resid"] / r[name][key] for r in rows
                     if keep(r) and r[name][key] is not None and r[name][key] > 0])


def summarise(rows: list[dict]) -> list[tuple[str, ...]]:
    """The table: one row per metric, one column per method."""
    def zp_of(name, keep=lambda r: True):
        return np.array([r[name]["zp_resid"] for r in rows if r[name]["zp_resid"] is not None and keep(r)])

    all_zp = lambda r: all(r[m]["zp_resid"] is not None for m in METHODS)  # noqa: E731
    all_t = lambda r: all(r[m]["target_resid"] is not None for m in METHODS)  # noqa: E731
    s = {}
    for name in METHODS:
        zp, zpc = zp_of(name), zp_of(name, all_zp)
        own = np.array([r[name]["target_resid"] for r in rows if r[name]["target_resid"] is not None])
        com = np.array([r[name]["target_resid"] for r in rows if all_t(r)])
        pulls = _pulls(rows, name, "err", lambda r, name=name: r[name]["target_resid"] is not None)
        pulls_c = _pulls(rows, name, "err", all_t)
        pulls_q = _pulls(rows, name, "err_quad", lambda r, name=name: r[name]["target_resid"] is not None)
        lim = [r[name]["limit_ok"] for r in rows if r[name]["limit_ok"] is not None]
        s[name] = dict(
            zpc_n=zpc.size, zpc_bias=zpc.mean(), zpc_rms=math.sqrt(np.mean(zpc**2)),
            zp_n=zp.size, zp_bias=zp.mean(), zp_rms=math.sqrt(np.mean(zp**2)), zp_cat=np.mean(np.abs(zp) > 0.05),
            t_n=own.size, t_bias=own.mean(), t_median=np.median(own), t_rms=math.sqrt(np.mean(own**2)),
            tc_n=com.size, tc_bias=com.mean(), tc_rms=math.sqrt(np.mean(com**2)),
            pull_sd=pulls.std(ddof=1), pull_rob=_robust(pulls), pull_out=np.mean(np.abs(pulls) > 5),
            pullc_sd=pulls_c.std(ddof=1), pullq_sd=pulls_q.std(ddof=1) if pulls_q.size > 1 else float("nan"),
            lim_ok=sum(lim), lim_n=len(lim),
            missed=sum(1 for r in rows if r["detected"] and r[name]["is_limit"] and r[name]["status"] == "limit"),
            wrong=sum(1 for r in rows if r[name]["wrong_band"]), nan=sum(1 for r in rows if r[name]["nan"]),
            failed=sum(1 for r in rows if r[name]["status"] == "failed"),
            t_ms=1e3 * np.median([r[name]["time_s"] for r in rows]))
    fmt = [
        ("ZP fits compared: observed band passed in all three", "zpc_n", "{:d}"),
        ("ZP bias on those (mean, mag)", "zpc_bias", "{:+.4f}"),
        ("ZP RMS against truth on those (mag)", "zpc_rms", "{:.4f}"),
        ("ZP fits passed by the method (observed band)", "zp_n", "{:d}"),
        ("ZP bias on its own passed fits (mean, mag)", "zp_bias", "{:+.4f}"),
        ("ZP RMS on its own passed fits (mag)", "zp_rms", "{:.4f}"),
        ("its ZP fits off by > 0.05 mag", "zp_cat", "{:.1%}"),
        ("targets measured by the method", "t_n", "{:d}"),
        ("target-magnitude bias (mean, mag)", "t_bias", "{:+.4f}"),
        ("target-magnitude bias (median, mag)", "t_median", "{:+.4f}"),
        ("target-magnitude RMS (mag)", "t_rms", "{:.4f}"),
        ("targets measured by all three", "tc_n", "{:d}"),
        ("target-magnitude bias on those (mean, mag)", "tc_bias", "{:+.4f}"),
        ("target-magnitude RMS on those (mag)", "tc_rms", "{:.4f}"),
        ("pull width: sd of (measured - true) / total error", "pull_sd", "{:.3f}"),
        ("pull width, robust (1.4826 MAD)", "pull_rob", "{:.3f}"),
        ("pull width on the targets all three measured (sd)", "pullc_sd", "{:.3f}"),
        ("pulls beyond 5", "pull_out", "{:.1%}"),
    ]
    lines = [("metric", *METHODS)]
    for label, key, f in fmt:
        lines.append((label, *(f.format(int(s[m][key]) if f == "{:d}" else s[m][key]) for m in METHODS)))
    lines.append(("baseline pull with calib_err in quadrature (sd)", "-", f"{s['baseline']['pullq_sd']:.3f}",
                  f"{s['baseline_nocolour']['pullq_sd']:.3f}"))
    lines.append(("limits correct (of non-detections answered)",
                  *(f"{s[m]['lim_ok']}/{s[m]['lim_n']} ({s[m]['lim_ok'] / max(s[m]['lim_n'], 1):.1%})"
                    for m in METHODS)))
    lines.append(("targets in the catalogue reported as limits", *(str(s[m]["missed"]) for m in METHODS)))
    lines.append(("wrong-band choices", *(str(s[m]["wrong"]) for m in METHODS)))
    lines.append(("NaN answers", *(str(s[m]["nan"]) for m in METHODS)))
    lines.append(("failed (no answer, with a reason)", *(str(s[m]["failed"]) for m in METHODS)))
    lines.append(("median time per catalogue (ms)", *(f"{s[m]['t_ms']:.1f}" for m in METHODS)))
    return lines


def markdown(lines: list[tuple[str, ...]]) -> str:
    head = "| " + " | ".join(lines[0]) + " |\n|" + "---|" * len(lines[0]) + "\n"
    return head + "".join("| " + " | ".join(row) + " |\n" for row in lines[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1200, help="number of simulated catalogues")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--dump", type=Path, help="write every case as JSON lines here")
    args = parser.parse_args()
    t0 = time.perf_counter()
    jobs = [(args.seed, i) for i in range(args.n)]
    if args.workers > 1:
        with mp.get_context("fork").Pool(args.workers) as pool:
            rows = pool.map(run_case, jobs, chunksize=8)
    else:
        rows = [run_case(j) for j in jobs]
    wall = time.perf_counter() - t0
    if args.dump:
        with args.dump.open("w") as fh:
            for r in rows:
                fh.write(json.dumps(r, default=float) + "\n")
    sizes = np.array([r["n_catalogue"] for r in rows])
    snr = np.array([r["snr"] for r in rows if r["snr"] is not None])
    print(f"{args.n} simulated catalogues (seed {args.seed}): {sizes.min()}-{sizes.max()} stars "
          f"(median {int(np.median(sizes))}), targets present {np.mean([r['target_present'] for r in rows]):.0%} "
          f"(S/N {snr.min():.1f}-{snr.max():.0f}), in the catalogue {np.mean([r['detected'] for r in rows]):.0%}, "
          f"filter declared {np.mean([r['declared'] for r in rows]):.0%}, colour term "
          f"{np.mean([r['colour_term'] != 0 for r in rows]):.0%}")
    print(f"wall time {wall:.1f} s on {args.workers} worker(s) ({platform.python_version()}, "
          f"{os.cpu_count()} cores); simulation median {1e3 * np.median([r['t_sim'] for r in rows]):.1f} ms")
    print()
    print(markdown(summarise(rows)))


if __name__ == "__main__":
    main()
