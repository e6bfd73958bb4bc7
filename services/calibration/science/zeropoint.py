"""Photometric zero point (optionally with a colour term) by maximum likelihood of a mixture.

The model (per matched star *i*, ``d_i = m_inst,i - m_ref,i``, ``e_i`` = combined quoted error,
``c_i`` the star's reference colour when a colour term is fitted)::

    p(d_i) = (1 - f) * N(d_i | ZP + k (c_i - c_pivot), s^2 + e_i^2) + f * B(d_i)

with ``s >= 0`` the intrinsic scatter beyond the quoted errors, ``f`` in [0, 1) the outlier fraction,
``k`` the colour slope (0 without a colour term) and ``B`` a fixed, normalised background density for
outliers (see :func:`fit_zeropoint`). ``colourterm.fit_with_colour_choice`` keeps the colour term
only when an information criterion prefers it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from services.calibration.science import _kernel
from services.calibration.science._mixture import LOGIT_BOUND, LinearMixture, optimise, profile_covariance

__all__ = ["MAD_TO_SIGMA", "ZeropointFit", "ZeropointOptions", "fit_zeropoint"]

MAD_TO_SIGMA = 1.4826  # 1 / Phi^-1(3/4): MAD -> Gaussian sigma (the original used 1.68 by mistake)


class ZeropointOptions(TypedDict, total=False):
    """Keyword options of :func:`fit_zeropoint` that callers pass through unchanged."""

    scatter_floor_mag: float
    outlier_scale_factor: float
    outlier_scale_min_mag: float
    min_points: int
    max_colour_slope: float
    colour_bound_sigma: float
    scatter_prior_mag: float | None
    scatter_prior_width: float


@dataclass(frozen=True, eq=False)
class ZeropointFit:
    """Outcome of :func:`fit_zeropoint`.

    Attributes
    ----------
    ok : bool
        True when the mixture was fitted; False for degenerate input (``reason`` says why). A failed
        result may still carry a simple estimate (weighted mean) in ``zeropoint``.
    reason : str or None
        Why the fit failed, as a sentence; None when ``ok``.
    zeropoint : float or None
        ZP in magnitudes (``m_inst - m_ref`` of the good stars; at ``colour_pivot_mag`` when a
        colour term is fitted).
    zeropoint_err : float or None
        1-sigma uncertainty of ``zeropoint`` in magnitudes.
    scatter : float
        Intrinsic scatter ``s`` in magnitudes, floored at ``scatter_floor_mag``.
    outlier_fraction : float
        Fitted mixture weight ``f`` of the outlier component.
    npoints : int
        Stars used (finite difference and error, and colour if fitted), outliers included.
    n_outliers : int
        Stars whose outlier membership probability exceeds 0.5.
    outlier : numpy.ndarray of bool
        Per input row: outlier membership probability > 0.5 (False for unused rows).
    outlier_prob : numpy.ndarray of float
        Per input row: outlier membership probability (0 for unused rows).
    used : numpy.ndarray of bool
        Per input row: whether the row entered the fit.
    converged : bool
        Whether the optimiser reported convergence.
    zeropoint_err_method : str
        ``"hessian"`` (profile curvature of -lnL), ``"fisher"`` (membership-weighted Gaussian
        information, fallback) or ``"errors"`` (degenerate input: from quoted errors), ``"none"``.
    outlier_scale_mag : float or None
        Scale ``b`` of the Laplace outlier density.
    neg_log_likelihood : float or None
        ``-lnL`` at the optimum (minus the log prior of ``s`` when one is used).
    colour_slope : float or None
        ``k`` in magnitudes per magnitude of colour (None without a colour term).
    colour_slope_err : float or None
        1-sigma uncertainty of ``k``.
    colour_pivot_mag : float or None
        The colour at which ``zeropoint`` applies (median colour of the stars used).
    at_colour_bound : bool
        The colour slope is at its bound (see ``max_colour_slope``); the fit then failed.
    zeropoint_slope_cov : float or None
        Covariance of ``zeropoint`` and ``k`` (small: the pivot is the median colour).
    n_params : int
        Free parameters: 3 (ZP, s, f) or 4 with a colour term.
    star_log_likelihood : numpy.ndarray of float
        Per input row: ``ln p(d_i)`` at the optimum (0 for unused rows).
    n_effective : float
        Kish effective number of stars behind the zero point, ``(sum w)^2 / sum w^2`` with weights
        ``w_i = r_i / (s^2 + e_i^2)`` (``r_i`` the good-membership probability): a zero point set by
        four precise stars among fifty noisy ones has ``n_effective`` near 4.
    """

    ok: bool
    reason: str | None
    zeropoint: float | None
    zeropoint_err: float | None
    scatter: float
    outlier_fraction: float
    npoints: int
    n_outliers: int
    outlier: NDArray[np.bool_] = field(repr=False)
    outlier_prob: NDArray[np.float64] = field(repr=False)
    used: NDArray[np.bool_] = field(repr=False)
    converged: bool = False
    zeropoint_err_method: str = "none"
    outlier_scale_mag: float | None = None
    neg_log_likelihood: float | None = None
    colour_slope: float | None = None
    colour_slope_err: float | None = None
    colour_pivot_mag: float | None = None
    zeropoint_slope_cov: float | None = None
    n_params: int = 3
    star_log_likelihood: NDArray[np.float64] | None = field(default=None, repr=False)
    n_effective: float = 0.0
    at_colour_bound: bool = False

    def small_sample_factor(self) -> float:
        """``sqrt(nu / (nu - 2))`` with ``nu = max(n_effective - linear parameters, 3)``: the standard
        deviation of a Student-t of ``nu`` degrees of freedom, by which the calibration errors (ZP
        error and scatter, both estimated from the same few stars) understate the spread of a new
        star's calibrated magnitude. 1 for many stars, at most sqrt(3)."""
        nu = max(self.n_effective - (self.n_params - 2), 3.0)
        return math.sqrt(nu / (nu - 2.0))

    def information_criterion(self, criterion: str = "bic") -> float | None:
        """``2 (-lnL) + p ln n`` (BIC) or ``2 (-lnL) + 2 p`` (AIC); None when not fitted."""
        if not self.ok or self.neg_log_likelihood is None or self.npoints < 1:
            return None
        penalty = self.n_params * (math.log(self.npoints) if criterion == "bic" else 2.0)
        return 2.0 * self.neg_log_likelihood + penalty


def _simple_estimate(d: NDArray[np.float64], e: NDArray[np.float64]) -> tuple[float, float | None]:
    """Weighted mean and its error for degenerate input (never NaN)."""
    if np.all(e > 0):
        w = 1.0 / (e * e)
        return float(np.sum(w * d) / np.sum(w)), float(1.0 / np.sqrt(np.sum(w)))
    zp = float(np.mean(d))
    if d.size > 1:
        sd = float(np.std(d, ddof=1))
        if sd > 0:
            return zp, sd / np.sqrt(d.size)
    return zp, None


def _failed(reason: str, d: NDArray[np.float64], e: NDArray[np.float64], used: NDArray[np.bool_], floor: float,
            n_params: int) -> ZeropointFit:
    n_in = used.size
    zp, zp_err = (None, None) if d.size == 0 else _simple_estimate(d, e)
    return ZeropointFit(
        ok=False, reason=reason, zeropoint=zp, zeropoint_err=zp_err, scatter=float(floor),
        outlier_fraction=0.0, npoints=int(d.size), n_outliers=0, outlier=np.zeros(n_in, dtype=bool),
        outlier_prob=np.zeros(n_in), used=used, converged=False,
        zeropoint_err_method="errors" if zp_err is not None else "none", n_params=n_params,
        star_log_likelihood=np.zeros(n_in),
    )


def _kish(w: NDArray[np.float64]) -> float:
    """Kish effective sample size of weights."""
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def fit_zeropoint(
    diff_mag: NDArray[np.float64],
    err_mag: NDArray[np.float64],
    *,
    colour_mag: NDArray[np.float64] | None = None,
    scatter_floor_mag: float = 1e-4,
    outlier_scale_factor: float = 5.0,
    outlier_scale_min_mag: float = 0.05,
    min_points: int = 3,
    max_colour_slope: float = 1.0,
    colour_bound_sigma: float = 3.0,
    initial: tuple[float, float, float] | None = None,
    scatter_prior_mag: float | None = None,
    scatter_prior_width: float = 1.0,
) -> ZeropointFit:
    """Fit a photometric zero point robustly: Gaussian good stars plus a broad outlier component.

    Maximises the likelihood of the mixture

    ``p(d) = (1 - f) N(d | ZP + k (c - c_pivot), s^2 + e^2) + f B(d)``

    over ZP, the intrinsic scatter ``s >= 0``, the outlier fraction ``f`` in [0, 1) and, when
    ``colour_mag`` is given, the colour slope ``k`` (``|k| <= max_colour_slope``), with
    ``d = m_inst - m_ref`` and ``e = sqrt(e_inst^2 + e_ref^2)`` per star. Without a colour, ``k = 0``.

    Outlier density ``B``: a Laplace density ``exp(-|d - c0| / b) / (2 b)`` (integrates to 1) with a
    *fixed* centre ``c0 = median(d)`` and a fixed scale ``b``, the largest of
    ``outlier_scale_factor * max(sigma_MAD, median(e))``, the median distance from ``c0`` of the
    points beyond 3 sigma_MAD (the typical outlier displacement) and ``outlier_scale_min_mag``;
    ``sigma_MAD = 1.4826 * MAD``. Why this choice:

    * a fixed background (independent of ZP) means the ZP is set by the good stars only; a
      component centred on ZP would be dragged towards one-sided outliers (blends, saturation),
      which are the common case; and the background is the same with and without a colour term,
      so the two models' likelihoods can be compared;
    * heavier tails than a Gaussian, so stars several magnitudes off are still explained by it and
      a single absurd row cannot inflate ``s``; unlike a uniform density over the data range, its
      height does not collapse when one row is 60 000 mag away;
    * several times wider than the core and as wide as the typical outlier, so its height under
      the core is small and good stars are not counted as outliers.

    Start values: ZP = median (with a colour: a least-squares line through the stars within
    3 sigma_MAD), ``s`` from the robust spread minus the typical quoted error, ``f`` = fraction of
    points beyond 3 sigma_MAD (clipped to [0.02, 0.45]). -lnL is minimised by projected Newton
    steps with the analytic gradient and Hessian (and L-BFGS-B too for fewer than 40 stars) from
    several starting points (the best is kept), Nelder-Mead as a fallback.

    Uncertainties: the profile curvature of -lnL at the optimum (inverse Hessian, nuisance
    parameters ``log s`` and ``logit f`` profiled out unless at a bound or flat); fallback: the
    membership-weighted Gaussian Fisher information. Validated by injection: pulls have unit width
    (``tests/unit/test_zeropoint.py``, ``tests/unit/test_science_colour.py``).

    Parameters
    ----------
    diff_mag : array_like
        ``m_inst - m_ref`` per star, in magnitudes.
    err_mag : array_like
        Combined 1-sigma error per star, in magnitudes (``>= 0``).
    colour_mag : array_like, optional
        Reference colour per star in magnitudes (e.g. g - r); rows without a finite colour are not
        used. None fits a constant zero point.
    scatter_floor_mag : float, optional
        Lower bound of the reported (and fitted) scatter, in magnitudes (original: 1e-4).
    outlier_scale_factor : float, optional
        Width of the outlier Laplace density in units of the robust spread.
    outlier_scale_min_mag : float, optional
        Minimum scale of the outlier density, in magnitudes.
    min_points : int, optional
        Fewest usable stars for a mixture fit (at least the number of parameters).
    max_colour_slope : float, optional
        Bound of ``|k|`` in magnitudes per magnitude; a fit whose slope is at the bound fails (a
        slope that large is not a colour term but a wrong band or a degenerate sample). At the
        bound means: the optimum is on it, or the bound is within ``colour_bound_sigma`` standard
        errors of the fitted slope. The second half matters: where the truth is at the bound (a
        catalogue calibrated in the wrong band has ``|k|`` near 1), the fitted slope lands on
        either side of it by chance, and a test on the optimum alone would keep the colour term
        for one of two nearly identical catalogues and drop it for the other.
    colour_bound_sigma : float, optional
        See ``max_colour_slope``.
    scatter_prior_mag : float, optional
        A soft floor for ``s``: below this value ``-ln L`` gains ``0.5 (ln(s / scatter_prior_mag) /
        scatter_prior_width)^2`` (a one-sided log-normal prior; None: plain maximum likelihood).
        With few stars the likelihood of a mixture can prefer ``s -> 0`` with many stars called
        outliers (a core "collapsed" onto the few stars that agree within their errors), which
        understates both ``s`` and the ZP error; the soft floor removes that mode, does not touch
        larger scatters, and is negligible against the likelihood of many stars.
    scatter_prior_width : float, optional
        Width of the soft floor in ``ln s``.
    initial : tuple of float, optional
        ``(ZP, s, f)`` of a nearby solution (e.g. the fit of a superset of the stars) to start
        from, instead of the robust starting points (with a colour: in addition to the line fit).

    Returns
    -------
    ZeropointFit
        Never raises for bad data and never contains NaN: rows with non-finite values or negative
        errors are ignored; too few points, identical differences or a colour without spread give
        ``ok=False`` with a ``reason`` (and, when possible, a weighted-mean estimate).
    """
    d_all = np.atleast_1d(np.asarray(diff_mag, dtype=float))
    e_all = np.atleast_1d(np.asarray(err_mag, dtype=float))
    if d_all.shape != e_all.shape:
        raise ValueError("diff_mag and err_mag must have the same length")
    with_colour = colour_mag is not None
    n_lin = 2 if with_colour else 1
    with np.errstate(invalid="ignore"):
        used = np.isfinite(d_all) & np.isfinite(e_all) & (e_all >= 0)
        if with_colour:
            c_all = np.atleast_1d(np.asarray(colour_mag, dtype=float))
            if c_all.shape != d_all.shape:
                raise ValueError("colour_mag must have the same length as diff_mag")
            used &= np.isfinite(c_all)
    d, e = d_all[used], e_all[used]
    n = int(d.size)
    floor = float(scatter_floor_mag)
    min_points = max(int(min_points), n_lin + 2)

    if n == 0:
        return _failed("no stars to fit", d, e, used, floor, n_lin + 2)
    if n < min_points:
        return _failed(f"only {n} star{'s' if n != 1 else ''}, the mixture fit needs {min_points}",
                       d, e, used, floor, n_lin + 2)
    if np.ptp(d) == 0.0:
        return _failed(f"all {n} magnitude differences are identical; the fit is degenerate",
                       d, e, used, floor, n_lin + 2)

    # the fixed background and the scale of the problem, from d alone (same with or without colour)
    c0, sigma0, med_e, dev, far_median, n_far = _kernel.robust_scales(d, e, MAD_TO_SIGMA, floor)
    b = max(outlier_scale_factor * max(sigma0, med_e), far_median, outlier_scale_min_mag)
    log_bg = -np.log(2.0 * b) - dev / b
    scale = sigma0
    f_start = min(max(n_far / n, 0.02), 0.45)

    def s_start_from(spread: float) -> float:
        s0 = float(np.sqrt(max(spread**2 - med_e**2, 0.0)))
        return max(s0, 0.1 * spread, 10.0 * floor)

    pivot: float | None = None
    cscale = 1.0  # the colour's scale: set and used with a colour term only
    if with_colour:
        c = c_all[used]
        if np.ptp(c) < 1e-6:
            return _failed("the reference colour has no spread; no colour term can be fitted",
                           d, e, used, floor, n_lin + 2)
        pivot = float(np.median(c))
        cscale = max(MAD_TO_SIGMA * float(np.median(np.abs(c - pivot))), 0.5 * float(np.std(c)), 1e-3)
        u = (c - pivot) / cscale
        design = np.column_stack([np.ones(n), u])
        core = np.abs(d - c0) <= 3.0 * sigma0
        if core.sum() < 3 or np.ptp(u[core]) == 0.0:
            core = np.ones(n, dtype=bool)
        slope_u, icpt = np.polyfit(u[core], d[core], 1)
        resid0 = d - (icpt + slope_u * u)
        spread1 = MAD_TO_SIGMA * float(np.median(np.abs(resid0 - np.median(resid0))))
        spread1 = spread1 if spread1 > 0 else sigma0
        w_bound = max_colour_slope * cscale / scale
        w_ls = float(np.clip(slope_u / scale, -w_bound, w_bound))
        beta_ls = np.array([(icpt - c0) / scale, w_ls])
        starts = [np.concatenate([beta_ls, [np.log(s_start_from(spread1)), _logit(f_start)]])]
        if initial is None:
            starts.append(np.concatenate([beta_ls, [np.log(max(spread1, 10.0 * floor)), _logit(0.01)]]))
    else:
        design = np.ones((n, 1))
        w_bound = w_ls = 0.0
        starts = [] if initial is not None else [
            np.array([0.0, np.log(s_start_from(sigma0)), _logit(f_start)]),
            np.array([0.0, np.log(max(sigma0, 10.0 * floor)), _logit(0.01)])]
    if initial is not None:
        zp_i, s_i, f_i = (float(v) for v in initial)
        lin = [(zp_i - c0) / scale] + ([w_ls] if with_colour else [])
        starts.insert(0, np.array(lin + [np.log(max(s_i, floor)), _logit(float(np.clip(f_i, 1e-5, 1 - 1e-5)))]))

    prior = None if scatter_prior_mag is None else (float(scatter_prior_mag), float(scatter_prior_width))
    model = LinearMixture(d, e, design, c0, scale, log_bg, prior)
    span = float(np.ptp(d))
    lo_lin = [(d.min() - c0) / scale] + ([-w_bound] if with_colour else [])
    hi_lin = [(d.max() - c0) / scale] + ([w_bound] if with_colour else [])
    lower = np.array(lo_lin + [np.log(floor), -LOGIT_BOUND])
    upper = np.array(hi_lin + [np.log(max(span, 10.0 * sigma0, 1.0)), LOGIT_BOUND])

    best = optimise(model, starts, lower, upper)
    if best is None:
        return _failed("the likelihood could not be evaluated", d, e, used, floor, n_lin + 2)
    theta = np.asarray(best.x, dtype=float)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        ll, r_good, _, s2, f = model.parts(theta)
        to_phys = np.array([scale] + ([scale / cscale] if with_colour else []))
        cov_fit = profile_covariance(model, theta, lower, upper)
        method = "hessian"
        if cov_fit is None:
            xs = design * to_phys  # physical design: [1, c - pivot]
            info = xs.T @ (xs * (r_good / (s2 + e * e))[:, None])
            method = "fisher"
            try:
                cov = np.linalg.inv(info)
            except np.linalg.LinAlgError:
                cov = None
            if cov is None or not np.all(np.isfinite(cov)) or not np.all(np.diag(cov) > 0):
                cov, method = None, "none"
        else:
            cov = cov_fit * np.outer(to_phys, to_phys)
    zp = float(c0 + scale * theta[0])
    zp_err = float(np.sqrt(cov[0, 0])) if cov is not None else None
    r_out = np.clip(1.0 - r_good, 0.0, 1.0)
    outlier_prob = np.zeros(d_all.size)
    outlier_prob[used] = r_out
    star_ll = np.zeros(d_all.size)
    star_ll[used] = ll
    outlier = outlier_prob > 0.5
    ok = zp_err is not None and np.isfinite(zp) and zp_err > 0
    reason = None if ok else "the zero-point uncertainty could not be determined"
    at_bound = False
    if with_colour:
        k = float(scale * theta[1] / cscale)
        k_err = float(np.sqrt(cov[1, 1])) if cov is not None else None
        on_bound = abs(theta[1]) >= w_bound * (1.0 - 1e-6)
        near_bound = k_err is not None and abs(k) + float(colour_bound_sigma) * k_err >= max_colour_slope
        at_bound = bool(on_bound or near_bound)
        if ok and at_bound:
            err_text = "" if k_err is None else f" +/- {k_err:.3f}"
            where = "ran into" if on_bound else f"is within {colour_bound_sigma:g} sigma of"
            ok, reason = False, (f"the colour slope ({k:+.3f}{err_text} mag/mag) {where} its bound of "
                                 f"{max_colour_slope:g} mag/mag")
    return ZeropointFit(
        ok=bool(ok),
        reason=reason,
        zeropoint=zp,
        zeropoint_err=zp_err,
        scatter=max(float(np.sqrt(s2)), floor),
        outlier_fraction=float(np.clip(f, 0.0, 1.0)),
        npoints=n,
        n_outliers=int(np.count_nonzero(outlier)),
        outlier=outlier,
        outlier_prob=outlier_prob,
        used=used,
        converged=bool(best.success),
        zeropoint_err_method=method,
        outlier_scale_mag=float(b),
        neg_log_likelihood=float(best.fun),
        colour_slope=float(scale * theta[1] / cscale) if with_colour else None,
        colour_slope_err=float(np.sqrt(cov[1, 1])) if with_colour and cov is not None else None,
        colour_pivot_mag=pivot,
        zeropoint_slope_cov=float(cov[0, 1]) if with_colour and cov is not None else None,
        n_params=n_lin + 2,
        star_log_likelihood=star_ll,
        n_effective=_kish(r_good / (s2 + e * e)),
        at_colour_bound=at_bound,
    )
