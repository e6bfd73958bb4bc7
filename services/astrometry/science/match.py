"""Matching detected sources to reference stars under a trial WCS, checking it, and refining it.

* :func:`check_wcs` decides whether a WCS (the header's, or a solver's) fits the frame: the
  reference stars it puts on the frame must coincide with detected sources far more often than
  chance allows (``n_matched >= max(min_stars, 3 * expected + 5)``). A small offset (up to
  ``max_shift_px``) is found by voting on source-reference pixel offsets first, so a header WCS that
  is off by some arcseconds is corrected, while one that is off by a field is declared stale; a
  shifted match must also beat the best that chance gives over all the shifts tried (Poisson,
  probability 1e-3).
* :func:`refine_wcs` iterates mutual nearest-neighbour matching and a TAN / TAN-SIP fit
  (:mod:`.fit`), shrinking the matching radius to three times the residual RMS and clipping 3-sigma
  outliers; the SIP degree is the one with the smallest BIC among those the stars can constrain
  (at least five stars per coefficient).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import cast

import numpy as np
from astropy.wcs import WCS
from numpy.typing import NDArray
from scipy.spatial import cKDTree
from scipy.stats import poisson

from services.astrometry.science.fit import WcsFit, fit_wcs

__all__ = ["Check", "check_wcs", "project", "refine_wcs"]


def project(wcs: WCS, ra_deg: np.ndarray, dec_deg: np.ndarray, shape: tuple[int, int],
            margin_px: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index, x, y) of the reference stars that ``wcs`` puts on the frame (0-based pixels)."""
    ny, nx = shape
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            x, y = wcs.all_world2pix(ra_deg, dec_deg, 0, quiet=True)
        except Exception:  # NoConvergence for wild SIP far outside the frame: use the linear part
            x, y = wcs.wcs_world2pix(ra_deg, dec_deg, 0)
    x, y = np.asarray(x, float), np.asarray(y, float)
    inside = (np.isfinite(x) & np.isfinite(y) & (x > -margin_px) & (x < nx - 1 + margin_px) & (y > -margin_px)
              & (y < ny - 1 + margin_px))
    idx = np.flatnonzero(inside)
    return idx, x[idx], y[idx]


def _mutual_nearest(sx: NDArray[np.float64], sy: NDArray[np.float64], rx: NDArray[np.float64],
                    ry: NDArray[np.float64], radius_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (source, reference) that are each other's nearest within the radius."""
    if sx.size == 0 or rx.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    st = cKDTree(np.c_[sx, sy])
    rt = cKDTree(np.c_[rx, ry])
    d_sr, i_sr_any = rt.query(np.c_[sx, sy], distance_upper_bound=radius_px)
    _, i_rs_any = st.query(np.c_[rx, ry], distance_upper_bound=radius_px)
    # 2-D queries: index arrays (the stub also allows the scalar of a 1-D query)
    i_sr, i_rs = cast(NDArray[np.intp], i_sr_any), cast(NDArray[np.intp], i_rs_any)
    s_idx = np.flatnonzero(np.isfinite(d_sr))
    r_idx = i_sr[s_idx]
    keep = i_rs[r_idx] == s_idx
    return s_idx[keep], r_idx[keep]


@dataclass(frozen=True)
class Check:
    """How well a trial WCS fits: matches, what chance would give, and the pixel shift found."""

    ok: bool
    n_matched: int
    n_expected: float
    n_on_frame: int
    shift_px: tuple[float, float]
    reason: str | None


def _vote_shift(sx: NDArray[np.float64], sy: NDArray[np.float64], rx: NDArray[np.float64],
                ry: NDArray[np.float64], max_shift_px: float, bin_px: float) -> tuple[float, float, int]:
    """The (dx, dy) from references to sources most pairs agree on, and how many agree."""
    tree = cKDTree(np.c_[sx, sy])
    pairs = tree.query_ball_point(np.c_[rx, ry], r=max_shift_px)
    dx = np.concatenate([sx[p] - rx[i] for i, p in enumerate(pairs) if p] or [np.zeros(0)])
    dy = np.concatenate([sy[p] - ry[i] for i, p in enumerate(pairs) if p] or [np.zeros(0)])
    if dx.size == 0:
        return 0.0, 0.0, 0
    nb = max(1, int(math.ceil(2 * max_shift_px / bin_px)))
    hist, xe, ye = np.histogram2d(dx, dy, bins=nb, range=[[-max_shift_px, max_shift_px]] * 2)
    ix, iy = np.unravel_index(int(np.argmax(hist)), hist.shape)
    sel = (dx >= xe[max(ix - 1, 0)]) & (dx <= xe[min(ix + 2, nb)]) & (dy >= ye[max(iy - 1, 0)]) & (
        dy <= ye[min(iy + 2, nb)])
    return float(np.median(dx[sel])), float(np.median(dy[sel])), int(hist[ix, iy])


def check_wcs(wcs: WCS, sx: np.ndarray, sy: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray,
              shape: tuple[int, int], *, match_radius_px: float = 3.0, max_shift_px: float = 0.0,
              min_stars: int = 6, n_bright_refs: int | None = None) -> Check:
    """Does ``wcs`` put reference stars on detected sources (more than chance would)?

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Trial WCS.
    sx, sy : numpy.ndarray
        Detected sources (0-based pixels), brightest first.
    ref_ra, ref_dec : numpy.ndarray
        Reference stars, brightest first.
    shape : (int, int)
        ``(ny, nx)``.
    match_radius_px : float, optional
        Radius of a match.
    max_shift_px : float, optional
        Largest translation searched for by voting before matching (0: none).
    min_stars : int, optional
        Fewest matches accepted.
    n_bright_refs : int, optional
        Use only this many of the brightest reference stars on the frame (default: about twice the
        sources, so that the depth of the two lists is similar).

    Returns
    -------
    Check
    """
    ny, nx = shape
    idx, rx, ry = project(wcs, ref_ra, ref_dec, shape)
    n_bright = n_bright_refs or max(2 * sx.size, 50)
    rx, ry = rx[:n_bright], ry[:n_bright]
    if rx.size < min_stars:
        return Check(False, 0, 0.0, int(rx.size), (0.0, 0.0),
                     f"the WCS puts only {rx.size} reference stars on the frame")
    shift = (0.0, 0.0)
    if max_shift_px > 0:
        dx, dy, votes = _vote_shift(sx, sy, rx, ry, max_shift_px, bin_px=max(2.0, match_radius_px))
        if votes >= min_stars:
            shift = (dx, dy)
    s, r = _mutual_nearest(sx, sy, rx + shift[0], ry + shift[1], match_radius_px)
    area = float(nx * ny)
    expected = sx.size * rx.size * math.pi * match_radius_px**2 / area
    needed = max(min_stars, 3.0 * expected + 5.0)
    if shift != (0.0, 0.0):
        # the shift was the best of many tried: chance had about (max_shift / radius)^2 independent
        # tries, so its best is far above ``expected`` (a header WCS 0.3 deg off was once accepted
        # with 10 chance matches against 1.2 expected); demand a count chance reaches with
        # probability 1e-3 at most over all the tries
        tries = max(1.0, (max_shift_px / match_radius_px) ** 2)
        needed = max(needed, float(poisson.isf(1e-3 / tries, expected)) + 1.0)
    ok = s.size >= needed
    reason = None if ok else (f"only {s.size} of {min(sx.size, rx.size)} stars coincide with reference stars "
                              f"(chance alone gives {expected:.1f}"
                              + (f", and up to {needed - 1:.0f} at the best of the shifts tried)" if shift != (0.0, 0.0)
                                 else ")"))
    return Check(ok, int(s.size), float(expected), int(rx.size), shift, reason)


def _shifted(wcs: WCS, shift: tuple[float, float]) -> WCS:
    out = wcs.deepcopy()
    out.wcs.crpix = [out.wcs.crpix[0] + shift[0], out.wcs.crpix[1] + shift[1]]
    if out.sip is not None:
        from astropy.wcs import Sip

        out.sip = Sip(out.sip.a, out.sip.b, out.sip.ap, out.sip.bp, out.wcs.crpix)
    out.wcs.set()
    return out


def refine_wcs(wcs: WCS, sx: np.ndarray, sy: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray,
               shape: tuple[int, int], *, shift_px: tuple[float, float] = (0.0, 0.0), start_radius_px: float = 5.0,
               max_sip_degree: int = 3, min_stars: int = 6, n_iter: int = 5,
               stars_per_coefficient: int = 5) -> tuple[WcsFit | None, str | None]:
    """Refine a roughly right WCS on all matched stars.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Starting WCS (checked by :func:`check_wcs`).
    sx, sy : numpy.ndarray
        Detected sources (0-based pixels).
    ref_ra, ref_dec : numpy.ndarray
        Reference stars.
    shape : (int, int)
        ``(ny, nx)``.
    shift_px : (float, float), optional
        Translation found by :func:`check_wcs`, applied first.
    start_radius_px : float, optional
        First matching radius.
    max_sip_degree : int, optional
        Highest SIP degree tried (1 = TAN only).
    min_stars : int, optional
        Fewest matched stars for a fit.
    n_iter : int, optional
        Match-and-fit iterations.
    stars_per_coefficient : int, optional
        A SIP degree is tried only with at least this many stars per coefficient and axis.

    Returns
    -------
    (WcsFit or None, reason or None)
    """
    ny, nx = shape
    current = _shifted(wcs, shift_px) if shift_px != (0.0, 0.0) else wcs
    crpix = ((nx + 1) / 2.0, (ny + 1) / 2.0)
    radius = float(start_radius_px)
    best: WcsFit | None = None
    for it in range(n_iter):
        idx, rx, ry = project(current, ref_ra, ref_dec, shape, margin_px=radius)
        s, r = _mutual_nearest(sx, sy, rx, ry, radius)
        if s.size < min_stars:
            return best, f"only {s.size} stars matched reference stars within {radius:.1f} pixels"
        x, y = sx[s], sy[s]
        ra, dec = ref_ra[idx[r]], ref_dec[idx[r]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c_ra, c_dec = current.all_pix2world([[crpix[0] - 1.0, crpix[1] - 1.0]], 0)[0]
        fits_by_degree = []
        for degree in range(1, max_sip_degree + 1):
            n_coef = (degree + 1) * (degree + 2) // 2
            if degree > 1 and s.size < stars_per_coefficient * n_coef:
                break
            try:
                fits_by_degree.append(fit_wcs(x, y, ra, dec, degree=degree, crpix=crpix, crval=(c_ra, c_dec),
                                              shape=shape))
            except (ValueError, np.linalg.LinAlgError):
                break
        if not fits_by_degree:
            return best, f"{s.size} matched stars are too few to fit a WCS"
        fit = min(fits_by_degree, key=lambda f: f.bic)
        # clip 3-sigma outliers (mismatches, blends) and refit once at the chosen degree
        keep = fit.residuals_arcsec < max(3.0 * fit.rms_arcsec, 1e-3)
        if keep.sum() >= min_stars and keep.sum() < keep.size:
            try:
                fit = fit_wcs(x[keep], y[keep], ra[keep], dec[keep], degree=fit.sip_degree, crpix=crpix,
                              crval=(c_ra, c_dec), shape=shape)
            except (ValueError, np.linalg.LinAlgError):
                pass
        best = fit
        current = fit.wcs
        scale_arcsec = float(np.sqrt(abs(np.linalg.det(fit.wcs.pixel_scale_matrix)))) * 3600.0
        new_radius = max(1.0, 3.0 * fit.rms_arcsec / scale_arcsec)
        if abs(new_radius - radius) < 0.05:
            break
        radius = min(radius, new_radius) if it > 0 else new_radius
    return best, None
