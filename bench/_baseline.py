"""A baseline that follows the original server's published algorithm (version 1, plus version 2's
automatic target radius), written from ``docs/ALGORITHM.md`` section 1 only (no code of the
original was seen). For ``bench/accuracy.py``.

Where the description leaves a choice open, the choice made here is stated:

* matching: every catalogue star within the radius of every reference star (many-to-many);
* per survey/band: ``d = m_inst - m_cat`` for pairs with reference error below 0.3 mag, combined
  error ``sqrt(e_cat^2 + e_inst^2)``; the mixture: good stars ``N(d | ZP, s^2 + e^2)``, outliers a
  Laplace in ``|d - ZP|`` whose normalisation does not match its exponent, as the description
  says: ``exp(-|d - ZP| / w) / 2`` with ``w`` = 3 starting widths (at least 0.1 mag) -- the
  normalisation of a unit-scale Laplace; Nelder-Mead on (ZP, s, f) from (median, 1.68 MAD,
  fraction beyond 3 MAD); ``s`` floored at 1e-4 and ``f`` kept in [0, 0.999];
* colour term (APASS, no forced filter): the least-squares slope ``b`` of ``(i_cat - m_inst)``
  against ``(V - i)`` over the matched APASS stars, applied to every APASS band as
  ``m_inst + b (V - i)`` for the stars that have V and i; the target has no catalogue colour, so it
  is not corrected (``colour_term=False`` gives the baseline without this step);
* gates (version 2 values): f < 0.5, npoints >= 5, s < 1.5, reference error < 0.3, instrumental
  magnitude < 50 and error < 1.0; npoints counts the matched pairs, outliers included;
* best filter: the passing survey/band with the smallest scatter, over all surveys and bands;
* target radius (version 2): a 5" many-to-many match to Gaia, the same mixture fitted to the RA and
  Dec offsets (in arcsec, ``dRA cos Dec``), radius = 2 sigma (mean of the two widths); the
  zero-point matching uses ``match_radius_arcsec`` (default 2"); without Gaia the target radius
  is that too;
* target: the nearest catalogue object within the target radius: ``mag = m_inst - ZP``,
  ``mag_err`` = instrumental error only, ``calib_err`` = scatter; otherwise an upper limit
  ``faintest instrumental mag - ZP`` with ``mag_err = -1``;
* zero stars matched: the zero point is the median of nothing, i.e. NaN, as users reported.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.spatial import cKDTree

_AS_RAD = math.pi / 180.0 / 3600.0


@dataclass
class BaselineFit:
    survey: str
    band: str
    zeropoint: float
    scatter: float
    outlier_fraction: float
    npoints: int
    passed: bool
    colour_slope: float | None  # the APASS (V - i) slope applied, if any


@dataclass
class BaselineResult:
    status: str  # "calibrated", "limit", "failed"
    survey: str | None
    band: str | None
    zeropoint: float
    scatter: float
    mag: float
    mag_err: float
    calib_err: float
    is_limit: bool
    fits: list[BaselineFit]
    target_radius_arcsec: float


def _unit(ra_deg, dec_deg) -> np.ndarray:
    ra, dec = np.deg2rad(np.asarray(ra_deg, float)), np.deg2rad(np.asarray(dec_deg, float))
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]).reshape(-1, 3)


def match_many(ra1, dec1, ra2, dec2, radius_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j) within the radius."""
    if len(ra1) == 0 or len(ra2) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    chord = 2.0 * math.sin(radius_arcsec * _AS_RAD / 2.0)
    tree = cKDTree(_unit(ra2, dec2))
    hits = tree.query_ball_point(_unit(ra1, dec1), chord)
    i1 = np.array([i for i, h in enumerate(hits) for _ in h], dtype=int)
    i2 = np.array([j for h in hits for j in h], dtype=int)
    return i1, i2


def mixture_fit(d: np.ndarray, e: np.ndarray) -> tuple[float, float, float]:
    """(ZP, s, f) of the original's mixture by Nelder-Mead; NaN for no data."""
    if d.size == 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(np.median(d)), float("nan"), float("nan")
    zp0 = float(np.median(d))
    mad = float(np.median(np.abs(d - zp0)))
    s0 = max(1.68 * mad, 1e-4)
    f0 = float(np.mean(np.abs(d - zp0) > 3.0 * mad)) if mad > 0 else 0.0
    w = max(3.0 * s0, 0.1)

    def nll(p):
        zp, s, f = p[0], max(abs(p[1]), 1e-4), min(max(p[2], 0.0), 0.999)
        v = s * s + e * e
        good = (1.0 - f) * np.exp(-0.5 * (d - zp) ** 2 / v) / np.sqrt(2.0 * np.pi * v)
        bad = f * np.exp(-np.abs(d - zp) / w) / 2.0
        return -float(np.sum(np.log(good + bad + 1e-300)))

    res = minimize(nll, [zp0, s0, min(max(f0, 0.01), 0.9)], method="Nelder-Mead",
                   options={"maxiter": 2000, "xatol": 1e-6, "fatol": 1e-8})
    zp, s, f = res.x
    return float(zp), max(abs(float(s)), 1e-4), min(max(float(f), 0.0), 0.999)


def _offsets_arcsec(ra1, dec1, ra2, dec2):
    dx = (np.asarray(ra1) - np.asarray(ra2) + 180.0) % 360.0 - 180.0
    return dx * np.cos(np.deg2rad(np.asarray(dec2))) * 3600.0, (np.asarray(dec1) - np.asarray(dec2)) * 3600.0


def target_radius(ra, dec, references, default: float) -> float:
    gaia = [r for r in references if r.survey.lower().startswith("gaia")]
    if not gaia:
        return default
    g = gaia[0]
    i1, i2 = match_many(ra, dec, g.ra_deg, g.dec_deg, 5.0)
    if i1.size < 3:
        return default
    dx, dy = _offsets_arcsec(ra[i1], dec[i1], g.ra_deg[i2], g.dec_deg[i2])
    zero = np.zeros(i1.size)
    _, sx, _ = mixture_fit(dx, zero)
    _, sy, _ = mixture_fit(dy, zero)
    return 2.0 * 0.5 * (sx + sy)


def baseline_calibrate(stars, references, *, target_ra_deg: float, target_dec_deg: float,
                       match_radius_arcsec: float = 2.0, colour_term: bool = True) -> BaselineResult:
    """Calibrate as the original server did (see the module text)."""
    ra, dec = np.asarray(stars.ra_deg, float), np.asarray(stars.dec_deg, float)
    mag, err = np.asarray(stars.mag, float), np.asarray(stars.mag_err, float)
    ok = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mag) & np.isfinite(err) & (mag < 50) & (err < 1.0)
    ra, dec, mag, err = ra[ok], dec[ok], mag[ok], err[ok]
    fits: list[BaselineFit] = []
    for ref in references:
        i_cat, i_ref = match_many(ra, dec, ref.ra_deg, ref.dec_deg, match_radius_arcsec)
        inst = mag[i_cat].copy()
        slope = None
        if colour_term and ref.survey == "APASS" and {"V", "i"} <= set(ref.mags):
            vi = np.asarray(ref.mags["V"])[i_ref] - np.asarray(ref.mags["i"])[i_ref]
            y = np.asarray(ref.mags["i"])[i_ref] - inst
            has = np.isfinite(vi) & np.isfinite(y)
            if has.sum() >= 3 and np.ptp(vi[has]) > 0:
                slope = float(np.polyfit(vi[has], y[has], 1)[0])
                inst = np.where(has, inst + slope * np.where(has, vi, 0.0), inst)
        for band in ref.mags:
            m_ref = np.asarray(ref.mags[band], float)[i_ref]
            e_ref = np.asarray(ref.mag_errs[band], float)[i_ref]
            use = np.isfinite(m_ref) & np.isfinite(e_ref) & (e_ref < 0.3)
            d = inst[use] - m_ref[use]
            e = np.hypot(err[i_cat][use], e_ref[use])
            zp, s, f = mixture_fit(d, e)
            n = int(use.sum())
            passed = bool(n >= 5 and f < 0.5 and s < 1.5)
            fits.append(BaselineFit(ref.survey, band, zp, s, f, n, passed, slope))
    passing = [f for f in fits if f.passed]
    r_t = target_radius(ra, dec, references, match_radius_arcsec)
    nan = float("nan")
    if not passing:
        if all(f.npoints == 0 for f in fits):  # the original's NaN
            return BaselineResult("calibrated", None, None, nan, nan, nan, nan, nan, False, fits, r_t)
        return BaselineResult("failed", None, None, nan, nan, nan, nan, nan, False, fits, r_t)
    best = min(passing, key=lambda f: f.scatter)
    sep = np.hypot(*_offsets_arcsec(ra, dec, target_ra_deg, target_dec_deg)) if ra.size else np.zeros(0)
    if sep.size and sep.min() <= r_t:
        t = int(np.argmin(sep))
        return BaselineResult("calibrated", best.survey, best.band, best.zeropoint, best.scatter,
                              float(mag[t] - best.zeropoint), float(err[t]), best.scatter, False, fits, r_t)
    faintest = float(np.max(mag)) if mag.size else nan
    return BaselineResult("limit", best.survey, best.band, best.zeropoint, best.scatter,
                          faintest - best.zeropoint, -1.0, best.scatter, True, fits, r_t)
