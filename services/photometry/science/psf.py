"""PSF model and PSF photometry of all stars at once.

* **Model.** A circular Moffat (``photutils.psf.MoffatPSF``) whose ``alpha`` and ``beta`` are fitted
  by photutils' ``PSFPhotometry`` (positions, fluxes and shape free) on up to 25 bright, isolated,
  unsaturated stars; the medians of the good fits are the frame's PSF.
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
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from photutils.psf import MoffatPSF, PSFPhotometry
from scipy import sparse
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
        return _MOFFAT.evaluate(dx, dy, 1.0, 0.0, 0.0, np.asarray(self.alpha_px), np.asarray(self.beta))

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


def fit_psf_model(sub: np.ndarray, x: np.ndarray, y: np.ndarray, flux: np.ndarray, *, fwhm_guess_px: float,
                  max_stars: int = 40) -> tuple[PsfModel, str | None]:
    """Fit the Moffat PSF on the given (bright, isolated, unsaturated) stars with photutils.

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
    model = MoffatPSF(alpha=alpha0, beta=beta0)
    model.alpha.fixed = False
    model.beta.fixed = False
    model.alpha.bounds = (0.2, 30.0)
    model.beta.bounds = (1.05, 15.0)
    init = QTable({"x": x[:n], "y": y[:n], "flux": flux[:n]})
    data = np.where(np.isfinite(sub), sub, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)  # "fit may not have converged": judged by flags below
        phot = PSFPhotometry(model, (2 * half + 1, 2 * half + 1), aperture_radius=max(2.0, 1.5 * fwhm_guess_px))
        table = phot(data, init_params=init)
    flags = np.asarray(table["flags"])
    alpha = np.asarray(table["alpha_fit"], float)
    beta = np.asarray(table["beta_fit"], float)
    good = (flags == 0) & np.isfinite(alpha) & np.isfinite(beta) & (beta < 14.9) & (alpha > 0.21)
    if good.sum() < 3:
        return fallback, f"the PSF fit converged on only {int(good.sum())} stars: a Moffat of the measured FWHM is assumed"
    return PsfModel(alpha_px=float(np.median(alpha[good])), beta=float(np.median(beta[good])),
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
    pix = np.unique(flat[valid])
    bx, by = stamp_grid(x, y, 2 * half)
    big_inside = (bx >= 0) & (bx < nx) & (by >= 0) & (by < ny)
    big_flat = np.where(big_inside, by * nx + bx, -1)
    pos = np.minimum(np.searchsorted(pix, big_flat), pix.size - 1)
    found = big_inside & (pix[pos] == big_flat)
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
    own = np.minimum(np.searchsorted(pix, flat), pix.size - 1)
    use = valid & (pix[own] == flat) & ~bad[own]
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
