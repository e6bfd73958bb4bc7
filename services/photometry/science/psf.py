"""PSF model and PSF photometry of all stars at once.

* **Model.** A circular Moffat (``photutils.psf.MoffatPSF``) whose ``alpha`` and ``beta`` are fitted
  (positions, fluxes and shape free, each star on its own stamp, as photutils' ``PSFPhotometry``
  would, but with MINPACK and the analytic Jacobian: a tenth of the time) on up to 25 bright,
  isolated, unsaturated stars; the medians of the good fits are the frame's PSF.
* **Photometry.** With the positions fixed (windowed centroids, and the event position from the
  WCS), the fluxes are linear parameters: all stars are fitted **simultaneously** by weighted
  linear least squares on the union of their stamps (a sparse normal matrix, so overlapping stars
  share their pixels as in DAOPHOT's ALLSTAR). This is what ``PSFPhotometry`` with fixed positions and grouped
  stars computes, but in one sparse solve: 0.02 s instead of 1.8 s for 1 300 stars on a 2k frame
  (photutils fits each group with an iterative fitter). Weights are the background variance (so
  the estimate is unbiased); errors add the Poisson variance of the fitted model
  (``sum P^2 (rms^2 + model / gain) / (sum P^2)^2`` per star). On request, the reduced chi-square
  of each star's own stamp (residuals over the background and Poisson variance) says how well one
  PSF describes it: an unresolved pair of stars fits badly.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from photutils.psf import MoffatPSF
from scipy import sparse
from scipy.optimize import least_squares
from scipy.sparse.linalg import spsolve

__all__ = ["PsfModel", "fit_fluxes", "fit_psf_model", "stamp_grid"]

_MOFFAT = MoffatPSF()  # its evaluate() is the model's formula


@dataclass(frozen=True)
class PsfModel:
    """A circular Moffat PSF (unit flux), fitted or assumed."""

    alpha_px: float
    beta: float
    n_stars: int  # stars whose fits made the model (0: assumed from the moments)

    @property
    def fwhm_px(self) -> float:
        """Full width at half maximum."""
        return 2.0 * self.alpha_px * math.sqrt(2.0 ** (1.0 / self.beta) - 1.0)

    def evaluate(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """PSF value (unit total flux) at offsets from the centre, via photutils' ``MoffatPSF``."""
        value: np.ndarray = _MOFFAT.evaluate(dx, dy, 1.0, 0.0, 0.0, np.asarray(self.alpha_px), np.asarray(self.beta))
        return value

    def sum_p2(self, half: int) -> float:
        """``sum P^2`` over a centred stamp: ``1 / sum P^2`` is the noise-equivalent area in pixels."""
        off = np.arange(-half, half + 1, dtype=float)
        p = self.evaluate(off[None, :], off[:, None])
        return float(np.sum(p * p))


def stamp_grid(x: np.ndarray, y: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer pixel grids (n, s, s) of stamps of side ``2 half + 1`` around each position."""
    off = np.arange(-half, half + 1)
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    gx = np.broadcast_to((ix[:, None] + off[None, :])[:, None, :], (x.size, off.size, off.size))
    gy = np.broadcast_to((iy[:, None] + off[None, :])[:, :, None], (x.size, off.size, off.size))
    return gx, gy


def _fit_one_moffat(d: np.ndarray, gx: np.ndarray, gy: np.ndarray, start: list[float]) -> tuple[np.ndarray, bool]:
    """Least-squares Moffat fit (position, flux, alpha, beta) of one stamp; ``(x0, y0, flux, alpha, beta), converged``.

    MINPACK's Levenberg-Marquardt (``scipy.optimize.least_squares(method="lm")``) with the analytic
    Jacobian, on ``log alpha`` and ``log(beta - 1)`` so that no bound is needed (``alpha > 0``,
    ``beta > 1``).
    """

    def parts(p: NDArray[np.float64]) -> tuple[float, float, float, NDArray[np.float64], NDArray[np.float64],
                                               NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        x0, y0, f, s, t = p
        a, b = math.exp(s), 1.0 + math.exp(t)
        dx, dy = gx - x0, gy - y0
        r2 = dx * dx + dy * dy
        u = 1.0 + r2 / (a * a)
        return f, a, b, dx, dy, r2, u, (b - 1.0) / (math.pi * a * a) * u ** (-b)

    def residuals(p: NDArray[np.float64]) -> NDArray[np.float64]:
        f, a, b, dx, dy, r2, u, prof = parts(p)
        out: NDArray[np.float64] = f * prof - d
        return out

    def jacobian(p: NDArray[np.float64]) -> NDArray[np.float64]:
        f, a, b, dx, dy, r2, u, prof = parts(p)
        m = f * prof
        return np.column_stack([m * 2.0 * b * dx / (a * a * u), m * 2.0 * b * dy / (a * a * u), prof,
                                m * (2.0 * b * r2 / (a * a * u) - 2.0), m * (1.0 - (b - 1.0) * np.log(u))])

    try:
        with np.errstate(all="ignore"):
            res = least_squares(residuals, start, jac=jacobian, method="lm")
    except (ValueError, OverflowError, np.linalg.LinAlgError):
        return np.full(5, np.nan), False
    x0, y0, f, s, t = res.x
    with np.errstate(over="ignore"):
        return np.array([x0, y0, f, math.exp(min(s, 700.0)), 1.0 + math.exp(min(t, 700.0))]), bool(res.status > 0)


def fit_psf_model(sub: np.ndarray, x: np.ndarray, y: np.ndarray, flux: np.ndarray, *, fwhm_guess_px: float,
                  max_stars: int = 40) -> tuple[PsfModel, str | None]:
    """Fit the Moffat PSF on the given (bright, isolated, unsaturated) stars.

    Each star is fitted on its own stamp of side ``2 ceil(2 FWHM) + 1`` (position, flux, ``alpha``
    and ``beta`` free, unweighted, as photutils' ``PSFPhotometry`` with a free-shape ``MoffatPSF``
    did) by :func:`_fit_one_moffat`; a fit counts when it converged with a positive flux, its
    position on its stamp and its shape off the old bounds (``0.21 < alpha < 29.9``, ``beta < 14.9``).
    The same medians as ``PSFPhotometry`` on the simulated 2k frames (to 0.001 in ``alpha`` and
    ``beta``) in a tenth of the time: 0.02-0.03 s for 25 stars instead of 0.16-0.3 s (photutils
    builds an astropy model and fitter per star).

    Parameters
    ----------
    sub : numpy.ndarray
        Background-subtracted frame.
    x, y, flux : numpy.ndarray
        Candidate stars, best first.
    fwhm_guess_px : float
        Starting FWHM.
    max_stars : int, optional
        Stars fitted.

    Returns
    -------
    (PsfModel, note or None)
        The median shape of the converged fits; a Moffat with ``beta = 3`` and the guessed FWHM
        (and a note) when fewer than three stars fit.
    """
    beta0 = 3.0
    alpha0 = max(0.5, fwhm_guess_px) / (2.0 * math.sqrt(2.0 ** (1.0 / beta0) - 1.0))
    fallback = PsfModel(alpha_px=alpha0, beta=beta0, n_stars=0)
    n = min(max_stars, x.size)
    if n < 3:
        return fallback, f"only {x.size} stars suitable for the PSF model: a Moffat of the measured FWHM is assumed"
    half = int(np.clip(math.ceil(2.0 * fwhm_guess_px), 3, 12))
    ny, nx = sub.shape
    off = np.arange(-half, half + 1, dtype=float)
    fits = np.full((n, 5), np.nan)
    good = np.zeros(n, bool)
    for i in range(n):
        ix, iy = int(round(float(x[i]))), int(round(float(y[i])))
        if ix - half < 0 or iy - half < 0 or ix + half >= nx or iy + half >= ny:
            continue  # the stamp must be whole
        stamp = np.asarray(sub[iy - half:iy + half + 1, ix - half:ix + half + 1], dtype=float)
        d = np.where(np.isfinite(stamp), stamp, 0.0).ravel()
        gx = np.tile(ix + off, off.size)
        gy = np.repeat(iy + off, off.size)
        fits[i], converged = _fit_one_moffat(d, gx, gy, [float(x[i]), float(y[i]), max(float(flux[i]), 1.0),
                                                         math.log(alpha0), math.log(beta0 - 1.0)])
        x0, y0, f, alpha, beta = fits[i]
        good[i] = bool(converged and np.all(np.isfinite(fits[i])) and f > 0 and abs(x0 - ix) <= half
                       and abs(y0 - iy) <= half and 0.21 < alpha < 29.9 and beta < 14.9)
    if good.sum() < 3:
        return fallback, (f"the PSF fit converged on only {int(good.sum())} stars: "
                          "a Moffat of the measured FWHM is assumed")
    return PsfModel(alpha_px=float(np.median(fits[good, 3])), beta=float(np.median(fits[good, 4])),
                    n_stars=int(good.sum())), None


def _solve(a: sparse.csr_matrix, w: np.ndarray, data: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    ata = (a.T @ a.multiply(w[:, None])).tocsc()
    atd = a.T @ (w * data)
    has = ata.diagonal() > 0
    flux = np.full(n, np.nan)
    if has.any():
        keep = np.flatnonzero(has)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sparse.SparseEfficiencyWarning)
            flux[keep] = spsolve(ata[keep][:, keep], atd[keep])
    return flux, has


def fit_fluxes(sub: np.ndarray, rms: np.ndarray, x: np.ndarray, y: np.ndarray, psf: PsfModel, *, gain: float | None,
               half: int, reject_sigma: float = 8.0, return_chi2: bool = False) -> tuple[np.ndarray, ...]:
    """Fluxes of all stars at fixed positions, fitted simultaneously.

    The fitted pixels are the union of the stamps (side ``2 half + 1``) of all stars; each star's
    model covers every fitted pixel within ``2 half`` of it, so a neighbour's wings are modelled
    where they overlap. Pixels far above the fitted model (more than ``reject_sigma`` and more than
    half the model there: cosmic rays, hot pixels) are rejected and the fit repeated once.

    Parameters
    ----------
    sub : numpy.ndarray
        Background-subtracted frame (NaN = no value).
    rms : numpy.ndarray
        Background RMS map (ADU).
    x, y : numpy.ndarray
        Positions (0-based pixels).
    psf : PsfModel
    gain : float or None
        e-/ADU for the Poisson part of the errors (None: background noise only).
    half : int
        Stamp half-size in pixels.
    reject_sigma : float, optional
        Threshold of the outlier-pixel rejection.
    return_chi2 : bool, optional
        Also return each star's reduced chi-square on its own stamp (NaN without valid pixels).

    Returns
    -------
    (flux, flux_err, flux_err_background, rejected[, chi2])
        ADU; ``flux_err_background`` is the error from the background noise alone (for limits);
        NaN for a star with no valid pixel. ``rejected`` holds the flat indices of rejected pixels.
    """
    ny, nx = sub.shape
    n = x.size
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    flat_sub, flat_rms = sub.ravel(), rms.ravel()
    gx, gy = stamp_grid(x, y, half)
    inside = (gx >= 0) & (gx < nx) & (gy >= 0) & (gy < ny)
    flat = np.where(inside, gy * nx + gx, 0)
    valid = inside & np.isfinite(flat_sub[flat]) & (flat_rms[flat] > 0)
    # the fitted pixels (sorted, unique) and, through a frame-sized lookup table, the row of each:
    # 4 ms where np.unique and np.searchsorted took 50 ms on a 2k frame
    row_of = np.full(ny * nx, -1, dtype=np.int32)
    row_of[flat[valid]] = 0
    pix = np.flatnonzero(row_of == 0)
    row_of[pix] = np.arange(pix.size, dtype=np.int32)
    bx, by = stamp_grid(x, y, 2 * half)
    big_inside = (bx >= 0) & (bx < nx) & (by >= 0) & (by < ny)
    pos = row_of[np.where(big_inside, by * nx + bx, 0)]
    found = big_inside & (pos >= 0)
    p_big = psf.evaluate(bx - x[:, None, None], by - y[:, None, None])
    star = np.broadcast_to(np.arange(n)[:, None, None], p_big.shape)
    a = sparse.csr_matrix((p_big[found], (pos[found], star[found])), shape=(pix.size, n))
    w = 1.0 / flat_rms[pix].astype(float) ** 2
    data = flat_sub[pix].astype(float)
    flux, has = _solve(a, w, data, n)
    model = a @ np.nan_to_num(flux)
    var = flat_rms[pix].astype(float) ** 2 + (np.maximum(model, 0.0) / gain if gain else 0.0)
    resid = data - model
    bad = (resid > reject_sigma * np.sqrt(var)) & (resid > 0.5 * np.maximum(model, 0.0))
    if bad.any():
        w = np.where(bad, 0.0, w)
        flux, has = _solve(a, w, data, n)
        model = a @ np.nan_to_num(flux)
    rejected = pix[bad]
    # errors from each star's own stamp: sum P^2 (rms^2 + model / gain) / (sum P^2)^2
    p = psf.evaluate(gx - x[:, None, None], gy - y[:, None, None])
    own = np.where(valid, row_of[flat], 0)
    use = valid & ~bad[own]
    pv = np.where(use, p, 0.0)
    var_b = np.where(use, flat_rms[flat].astype(float) ** 2, 0.0)
    sum_p2 = np.sum(pv * pv, axis=(1, 2))
    var_b_star = np.sum(pv * pv * var_b, axis=(1, 2))
    poisson = np.sum(pv * pv * np.maximum(model[own], 0.0) / gain, axis=(1, 2)) if gain else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.sqrt(var_b_star + poisson) / sum_p2
        err_b = np.sqrt(var_b_star) / sum_p2
    err[~has] = np.nan
    err_b[~has] = np.nan
    if not return_chi2:
        return flux, err, err_b, rejected
    n_use = np.sum(use, axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = np.sum(np.where(use, resid[own] ** 2 / var[own], 0.0), axis=(1, 2)) / n_use
    chi2[~has | (n_use == 0)] = np.nan
    return flux, err, err_b, rejected, chi2
