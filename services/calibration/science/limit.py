"""Limiting magnitude of a catalogue from its own error-magnitude relation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAG_ERR_PER_INV_SNR", "LimitEstimate", "limiting_magnitude"]

MAG_ERR_PER_INV_SNR = 2.5 / np.log(10.0)  # 1.0857: sigma_mag = 1.0857 / (S/N)


@dataclass(frozen=True)
class LimitEstimate:
    """An instrumental (uncalibrated) limiting magnitude.

    Attributes
    ----------
    mag : float or None
        Instrumental magnitude at which the error reaches ``1.0857 / n_sigma`` (None if no stars).
    method : str
        ``"error-magnitude relation"`` or ``"faintest star (fallback: ...)"``.
    slope_dex_per_mag : float or None
        Slope of log10(error) against magnitude, when fitted.
    n_stars : int
        Stars used for the relation.
    mag_err : float or None
        1-sigma statistical uncertainty of ``mag`` from the fit of the relation (None for the
        fallback).
    sigma : float or None
        The S/N of the limit: ``n_sigma``, or the catalogue's own cut when that is higher (None for
        the fallback).
    """

    mag: float | None
    method: str
    slope_dex_per_mag: float | None = None
    n_stars: int = 0
    mag_err: float | None = None
    sigma: float | None = None


def _robust_line(x: NDArray[np.float64], y: NDArray[np.float64], n_iter: int = 5,
                 clip: float = 3.0) -> tuple[float, float, int, NDArray[np.float64] | None]:
    """Least-squares line with iterative MAD clipping; (intercept, slope, n_kept, covariance)."""
    keep = np.ones(x.size, dtype=bool)
    a = b = 0.0
    for _ in range(n_iter):
        xs, ys = x[keep], y[keep]
        if xs.size < 3 or np.ptp(xs) == 0.0:
            break
        xm, ym = float(xs.mean()), float(ys.mean())
        b = float(np.sum((xs - xm) * (ys - ym)) / np.sum((xs - xm) ** 2))
        a = ym - b * xm
        resid = y - (a + b * x)
        sigma = 1.4826 * float(np.median(np.abs(resid[keep] - np.median(resid[keep]))))
        if not sigma > 0.0:
            break
        new_keep = np.abs(resid) <= clip * sigma
        if np.array_equal(new_keep, keep) or new_keep.sum() < 3:
            break
        keep = new_keep
    xs, ys = x[keep], y[keep]
    cov = None
    if xs.size > 2 and np.ptp(xs) > 0.0:
        resid = ys - (a + b * xs)
        var = float(np.sum(resid * resid)) / (xs.size - 2)
        design = np.column_stack([np.ones(xs.size), xs])
        cov = var * np.linalg.inv(design.T @ design)
    return float(a), float(b), int(keep.sum()), cov


def limiting_magnitude(
    mag: NDArray[np.float64],
    mag_err: NDArray[np.float64],
    *,
    n_sigma: float = 5.0,
    min_stars: int = 10,
    min_slope_dex_per_mag: float = 0.02,
    max_extrapolation_mag: float = 3.0,
) -> LimitEstimate:
    """Magnitude at which the catalogue's photometric error reaches ``1.0857 / n_sigma``.

    Fits ``log10(err) = a + b * mag`` to the fainter half of the stars with ``err > 0`` (where
    the relation is set by noise rather than by a systematic floor), with iterative 3-sigma MAD
    clipping, and solves for ``err = 1.0857 / n_sigma`` (0.2171 mag for 5 sigma). This depends on the
    noise of the frame, not on how deep the catalogue was cut. The statistical uncertainty of the
    solution (``mag_err``) follows from the covariance of the line's intercept and slope.

    A catalogue cut above ``n_sigma`` (e.g. a pipeline that keeps only S/N > 10) cannot show
    that a fainter source was absent: when even the noisiest stars (the 95th percentile of the
    errors) have an S/N above ``n_sigma``, the limit is given at that S/N instead, and ``sigma``
    says so.

    Falls back to the faintest magnitude in the catalogue (the original server's rule) when there
    are fewer than ``min_stars`` usable stars, the relation is flat (slope below
    ``min_slope_dex_per_mag``), or the solution lies more than ``max_extrapolation_mag`` beyond the
    faintest star; ``method`` then says so.

    Parameters
    ----------
    mag, mag_err : array_like
        Instrumental magnitudes and their errors.
    n_sigma : float, optional
        Detection threshold in sigma (S/N).
    min_stars : int, optional
        Fewest stars with positive error for the fit.
    min_slope_dex_per_mag : float, optional
        Smallest acceptable slope of log10(err) per magnitude.
    max_extrapolation_mag : float, optional
        Largest accepted distance beyond the faintest star.

    Returns
    -------
    LimitEstimate
        Never raises; ``mag`` is None only when there is no finite magnitude at all.
    """
    m = np.atleast_1d(np.asarray(mag, dtype=float))
    e = np.atleast_1d(np.asarray(mag_err, dtype=float))
    finite = np.isfinite(m)
    if not finite.any():
        return LimitEstimate(mag=None, method="no stars in the catalogue")
    faintest = float(np.max(m[finite]))

    def fallback(why: str, slope: float | None = None, n: int = 0) -> LimitEstimate:
        return LimitEstimate(mag=faintest, method=f"faintest star (fallback: {why})", slope_dex_per_mag=slope,
                             n_stars=n)

    with np.errstate(invalid="ignore"):
        good = finite & np.isfinite(e) & (e > 0)
    if good.sum() < max(min_stars, 3):
        return fallback(f"only {int(good.sum())} stars with a positive error, need {max(min_stars, 3)}")
    x = m[good]
    y = np.log10(e[good])
    faint = x >= np.median(x)
    if faint.sum() >= max(min_stars, 3) and np.ptp(x[faint]) > 0:
        x, y = x[faint], y[faint]
    if np.ptp(x) == 0.0:
        return fallback("all stars have the same magnitude", n=int(x.size))
    a, b, n_kept, cov = _robust_line(x, y)
    if not (np.isfinite(a) and np.isfinite(b)) or b < min_slope_dex_per_mag:
        return fallback(f"error-magnitude relation is flat (slope {b:.3g} dex/mag)",
                        slope=float(b) if np.isfinite(b) else None, n=n_kept)
    cut_snr = MAG_ERR_PER_INV_SNR / float(np.quantile(e[good], 0.95))
    sigma = max(float(n_sigma), float(cut_snr))
    target = np.log10(MAG_ERR_PER_INV_SNR / sigma)
    m_lim = (target - a) / b
    if not np.isfinite(m_lim):
        return fallback("no finite solution", slope=b, n=n_kept)
    if m_lim > faintest + max_extrapolation_mag:
        return fallback(f"relation extrapolates {m_lim - faintest:.1f} mag beyond the faintest star", slope=b, n=n_kept)
    m_err = None
    if cov is not None:
        grad = np.array([-1.0, -m_lim]) / b  # d m_lim / d (a, b)
        var = float(grad @ cov @ grad)
        m_err = float(np.sqrt(var)) if np.isfinite(var) and var >= 0.0 else None
    method = f"error-magnitude relation (S/N={float(n_sigma):g})"
    if sigma > float(n_sigma):
        method = (f"error-magnitude relation at S/N={sigma:.1f}: the catalogue has no stars below that S/N, "
                  f"so it cannot support a {float(n_sigma):g}-sigma limit")
    return LimitEstimate(
        mag=float(m_lim),
        method=method,
        slope_dex_per_mag=b,
        n_stars=n_kept,
        mag_err=m_err,
        sigma=sigma,
    )
