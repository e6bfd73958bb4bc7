"""Fitting a TAN or TAN-SIP WCS to matched (pixel, sky) pairs by linear least squares.

The reference stars are projected on the tangent plane at the current reference point (gnomonic
projection, the TAN of FITS); the intermediate coordinates (xi, eta) are then polynomials of the
pixel offsets (u, v) from CRPIX. The linear part is the CD matrix, the higher orders divided by CD are
the SIP A/B coefficients, the constant terms move the reference point (two passes converge). The
inverse polynomials AP/BP are fitted on a grid so that other software can use the header too.

Why not ``astropy.wcs.utils.fit_wcs_from_points``: on 400 stars it takes 0.19 s (TAN-SIP 2),
0.45 s (SIP 3) and 1.3 s (SIP 4) per fit with numerical derivatives, and the solver fits three
orders several times per frame; this linear solution takes under a millisecond and agrees with it
to a few milliarcseconds (checked in ``tests/unit/test_astrometry_fit.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS, Sip
from numpy.typing import ArrayLike, NDArray

__all__ = ["WcsFit", "fit_wcs", "gnomonic", "pixel_residuals_arcsec", "sky_separation_arcsec"]


def gnomonic(ra_deg: ArrayLike, dec_deg: ArrayLike, ra0_deg: float, dec0_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (TAN) projection about (ra0, dec0): (xi, eta) in degrees, xi towards east."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    a0, d0 = math.radians(ra0_deg), math.radians(dec0_deg)
    cos_c = np.sin(d0) * np.sin(dec) + np.cos(d0) * np.cos(dec) * np.cos(ra - a0)
    xi = np.cos(dec) * np.sin(ra - a0) / cos_c
    eta = (np.cos(d0) * np.sin(dec) - np.sin(d0) * np.cos(dec) * np.cos(ra - a0)) / cos_c
    return np.degrees(xi), np.degrees(eta)


def _deproject(xi_deg: float, eta_deg: float, ra0_deg: float, dec0_deg: float) -> tuple[float, float]:
    xi, eta = math.radians(xi_deg), math.radians(eta_deg)
    a0, d0 = math.radians(ra0_deg), math.radians(dec0_deg)
    rho = math.hypot(xi, eta)
    c = math.atan(rho)
    if rho == 0:
        return ra0_deg, dec0_deg
    dec = math.asin(math.cos(c) * math.sin(d0) + eta * math.sin(c) * math.cos(d0) / rho)
    ra = a0 + math.atan2(xi * math.sin(c), rho * math.cos(d0) * math.cos(c) - eta * math.sin(d0) * math.sin(c))
    return math.degrees(ra) % 360.0, math.degrees(dec)


def sky_separation_arcsec(ra1: ArrayLike, dec1: ArrayLike, ra2: ArrayLike, dec2: ArrayLike) -> NDArray[np.float64]:
    """Angular separation (Vincenty formula) in arcsec."""
    l1, b1, l2, b2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    dl = l2 - l1
    num = np.hypot(np.cos(b2) * np.sin(dl), np.cos(b1) * np.sin(b2) - np.sin(b1) * np.cos(b2) * np.cos(dl))
    den = np.sin(b1) * np.sin(b2) + np.cos(b1) * np.cos(b2) * np.cos(dl)
    out: NDArray[np.float64] = np.degrees(np.arctan2(num, den)) * 3600.0
    return out


def _terms(degree: int, first: int = 0) -> list[tuple[int, int]]:
    return [(p, t - p) for t in range(first, degree + 1) for p in range(t, -1, -1)]


def _design(u: np.ndarray, v: np.ndarray, terms: list[tuple[int, int]]) -> np.ndarray:
    return np.column_stack([u**p * v**q for p, q in terms])


@dataclass(frozen=True)
class WcsFit:
    """A fitted WCS and how well it fits."""

    wcs: WCS
    sip_degree: int  # 1 = plain TAN
    rms_arcsec: float
    residuals_arcsec: np.ndarray
    n_stars: int
    bic: float


def pixel_residuals_arcsec(wcs: WCS, x: ArrayLike, y: ArrayLike, ra_deg: ArrayLike,
                           dec_deg: ArrayLike) -> NDArray[np.float64]:
    """Separation between the sky positions of pixels (0-based) under ``wcs`` and the given ones."""
    r, d = wcs.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
    return sky_separation_arcsec(r, d, ra_deg, dec_deg)


def fit_wcs(x: ArrayLike, y: ArrayLike, ra_deg: ArrayLike, dec_deg: ArrayLike, *, degree: int,
            crpix: tuple[float, float], crval: tuple[float, float],
            shape: tuple[int, int] | None = None, n_pass: int = 3) -> WcsFit:
    """Fit a TAN (``degree`` 1) or TAN-SIP (``degree`` >= 2) WCS to matched stars.

    Parameters
    ----------
    x, y : array_like
        0-based pixel positions of the stars.
    ra_deg, dec_deg : array_like
        Their reference positions.
    degree : int
        Polynomial degree: 1 for TAN, 2 to 5 for TAN-SIP.
    crpix : (float, float)
        Reference pixel, FITS convention (1-based), usually the frame centre.
    crval : (float, float)
        Starting reference point (e.g. the sky position of ``crpix`` under a rough WCS).
    shape : (int, int), optional
        ``(ny, nx)`` of the frame, for the inverse SIP grid (default: the stars' extent).
    n_pass : int, optional
        Passes that move the reference point to the fitted position of ``crpix``.

    Returns
    -------
    WcsFit

    Raises
    ------
    ValueError
        With fewer stars than twice the number of coefficients per axis.
    """
    x, y, ra, dec = (np.asarray(a, dtype=float) for a in (x, y, ra_deg, dec_deg))
    terms = _terms(degree)
    if x.size < max(3, 2 * len(terms) // 2 + 2) or x.size < len(terms) + 2:
        raise ValueError(f"{x.size} stars cannot constrain a degree-{degree} fit ({len(terms)} coefficients)")
    u = x + 1.0 - crpix[0]
    v = y + 1.0 - crpix[1]
    norm = max(1.0, float(np.max(np.abs(np.concatenate([u, v])))))
    un, vn = u / norm, v / norm
    design = _design(un, vn, terms)
    ra0, dec0 = float(crval[0]), float(crval[1])
    for _ in range(max(1, n_pass)):
        xi, eta = gnomonic(ra, dec, ra0, dec0)
        cx, *_ = np.linalg.lstsq(design, xi, rcond=None)
        cy, *_ = np.linalg.lstsq(design, eta, rcond=None)
        ra0, dec0 = _deproject(cx[0], cy[0], ra0, dec0)
    xi, eta = gnomonic(ra, dec, ra0, dec0)
    cx, *_ = np.linalg.lstsq(design, xi, rcond=None)
    cy, *_ = np.linalg.lstsq(design, eta, rcond=None)
    scale_of = {t: norm ** -(t[0] + t[1]) for t in terms}
    coef_x = {t: c * scale_of[t] for t, c in zip(terms, cx, strict=True)}
    coef_y = {t: c * scale_of[t] for t, c in zip(terms, cy, strict=True)}
    cd = np.array([[coef_x[(1, 0)], coef_x[(0, 1)]], [coef_y[(1, 0)], coef_y[(0, 1)]]])
    wcs = WCS(naxis=2)
    wcs.wcs.crpix = [float(crpix[0]), float(crpix[1])]
    wcs.wcs.cd = cd
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    # the constant terms are ~0 after the passes; fold the remainder into CRVAL
    wcs.wcs.crval = list(_deproject(coef_x[(0, 0)], coef_y[(0, 0)], ra0, dec0))
    if degree >= 2:
        cd_inv = np.linalg.inv(cd)
        a = np.zeros((degree + 1, degree + 1))
        b = np.zeros((degree + 1, degree + 1))
        for (p, q) in _terms(degree, first=2):
            da, db = cd_inv @ np.array([coef_x[(p, q)], coef_y[(p, q)]])
            a[p, q], b[p, q] = da, db
        ap, bp = _inverse_sip(a, b, degree, shape or (int(np.ptp(y)) + 1, int(np.ptp(x)) + 1), crpix)
        wcs.sip = Sip(a, b, ap, bp, wcs.wcs.crpix)
        wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    if shape is not None:
        wcs.pixel_shape = (int(shape[1]), int(shape[0]))
    wcs.wcs.set()
    res = pixel_residuals_arcsec(wcs, x, y, ra, dec)
    n = x.size
    rss = float(np.sum(res**2))
    k = 2 * len(terms)
    bic = 2 * n * math.log(max(rss / (2 * n), 1e-12)) + k * math.log(2 * n)
    return WcsFit(wcs=wcs, sip_degree=degree, rms_arcsec=float(math.sqrt(rss / n)), residuals_arcsec=res,
                  n_stars=int(n), bic=bic)


def _inverse_sip(a: np.ndarray, b: np.ndarray, degree: int, shape: tuple[int, int],
                 crpix: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """AP/BP of degree ``degree + 1`` fitted on a 25 x 25 grid over the frame."""
    ny, nx = shape
    gu, gv = np.meshgrid(np.linspace(1, max(nx, 2), 25) - crpix[0], np.linspace(1, max(ny, 2), 25) - crpix[1])
    u, v = gu.ravel(), gv.ravel()
    fa = sum(a[p, q] * u**p * v**q for p, q in _terms(degree, first=2))
    fb = sum(b[p, q] * u**p * v**q for p, q in _terms(degree, first=2))
    U, V = u + fa, v + fb
    inv_deg = degree + 1
    terms = _terms(inv_deg, first=1)
    norm = max(1.0, float(np.max(np.abs(np.concatenate([U, V])))))
    design = _design(U / norm, V / norm, terms)
    cu, *_ = np.linalg.lstsq(design, u - U, rcond=None)
    cv, *_ = np.linalg.lstsq(design, v - V, rcond=None)
    ap = np.zeros((inv_deg + 1, inv_deg + 1))
    bp = np.zeros((inv_deg + 1, inv_deg + 1))
    for (p, q), c1, c2 in zip(terms, cu, cv, strict=True):
        ap[p, q] = c1 * norm ** -(p + q)
        bp[p, q] = c2 * norm ** -(p + q)
    return ap, bp
