"""The colour term of a zero point: fitted where a colour is known, kept only when an information
criterion prefers it to a constant zero point (both fitted by :func:`zeropoint.fit_zeropoint`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Unpack

import numpy as np
from numpy.typing import NDArray

from services.calibration.science.zeropoint import ZeropointFit, ZeropointOptions, fit_zeropoint

__all__ = ["ColourChoice", "fit_with_colour_choice"]


@dataclass(frozen=True, eq=False)
class ColourChoice:
    """The zero-point model kept for one band: constant, or with a colour term.

    Attributes
    ----------
    fit : ZeropointFit
        The model kept: ``colour_fit`` when the criterion prefers it, else ``constant``.
    constant : ZeropointFit
        Constant zero point on every usable star (also used to identify the observed band).
    colour_fit : ZeropointFit or None
        Zero point with a colour term on the stars with a colour (None when not tried).
    delta_ic : float or None
        ``IC(colour) - IC(constant)`` on the same stars (negative: the colour term is preferred).
    criterion : str
        ``"bic"`` or ``"aic"``.
    note : str
        Why the colour term was kept, rejected or not tried.
    """

    fit: ZeropointFit
    constant: ZeropointFit
    colour_fit: ZeropointFit | None
    delta_ic: float | None
    criterion: str
    note: str

    @property
    def uses_colour(self) -> bool:
        """Whether the kept model has a colour term."""
        return self.fit is self.colour_fit and self.colour_fit is not None


def fit_with_colour_choice(
    diff_mag: NDArray[np.float64],
    err_mag: NDArray[np.float64],
    colour_mag: NDArray[np.float64] | None,
    *,
    criterion: str = "aic",
    min_colour_stars: int = 10,
    constant: ZeropointFit | None = None,
    **fit_options: Unpack[ZeropointOptions],
) -> ColourChoice:
    """Fit a constant zero point and, where a colour is given, one with a colour term; keep the better.

    Both models are fitted to the stars that have a colour, with the same fixed outlier background,
    and compared by ``criterion``: AIC ``= 2 (-lnL) + 2 p`` (default: the best prediction of a new
    star, which is what the target needs) or BIC ``= 2 (-lnL) + p ln n`` (``p`` = 3 without, 4 with
    the colour term). The colour term is kept only when its criterion is lower; otherwise the
    constant zero point on *all* usable stars is returned. A slope at its bound
    (``max_colour_slope`` of :func:`fit_zeropoint`) is a failed colour term, never a fit: the
    constant zero point is returned with a note that says so, whatever the criterion.

    Parameters
    ----------
    diff_mag, err_mag : array_like
        As for :func:`fit_zeropoint`.
    colour_mag : array_like or None
        Reference colour per star (NaN where missing); None: constant zero point only.
    criterion : {"aic", "bic"}, optional
        The information criterion.
    min_colour_stars : int, optional
        Fewest stars with a colour for the colour term to be tried.
    constant : ZeropointFit, optional
        The constant fit of the same data with the same options, if already done.
    **fit_options
        Passed to :func:`fit_zeropoint`.

    Returns
    -------
    ColourChoice
        Never raises for bad data.
    """
    if criterion not in ("bic", "aic"):
        raise ValueError("criterion must be 'bic' or 'aic'")
    d = np.atleast_1d(np.asarray(diff_mag, dtype=float))
    e = np.atleast_1d(np.asarray(err_mag, dtype=float))
    if constant is None:
        constant = fit_zeropoint(d, e, **fit_options)
    if colour_mag is None:
        return ColourChoice(constant, constant, None, None, criterion, "no colour available")
    c = np.atleast_1d(np.asarray(colour_mag, dtype=float))
    has = constant.used & np.isfinite(c)
    n_c = int(has.sum())
    if not constant.ok or constant.zeropoint is None:
        return ColourChoice(constant, constant, None, None, criterion, "the constant fit failed")
    if n_c < max(int(min_colour_stars), 5):
        return ColourChoice(constant, constant, None, None, criterion,
                            f"only {n_c} stars with a colour, need {max(int(min_colour_stars), 5)}")
    same_stars = bool(np.array_equal(has, constant.used))
    near = (constant.zeropoint, constant.scatter, constant.outlier_fraction)
    base = constant if same_stars else fit_zeropoint(np.where(has, d, np.nan), e, initial=near, **fit_options)
    near = (base.zeropoint, base.scatter, base.outlier_fraction) if base.ok and base.zeropoint is not None else near
    colour_fit = fit_zeropoint(d, e, colour_mag=np.where(has, c, np.nan), initial=near, **fit_options)
    ic_base, ic_col = base.information_criterion(criterion), colour_fit.information_criterion(criterion)
    if colour_fit.at_colour_bound:
        # not a colour term but a wrong band or a degenerate sample: the constant fit, and say so
        return ColourChoice(constant, constant, None, None, criterion,
                            f"colour term dropped, calibrated without a colour term: {colour_fit.reason}")
    if ic_base is None or ic_col is None:
        why = colour_fit.reason or base.reason or "a fit failed"
        return ColourChoice(constant, constant, colour_fit if colour_fit.ok else None, None, criterion,
                            f"colour term not fitted: {why}")
    delta = float(ic_col - ic_base)
    if delta < 0.0:
        return ColourChoice(colour_fit, constant, colour_fit, delta, criterion,
                            f"colour term kept ({criterion.upper()} lower by {-delta:.1f})")
    return ColourChoice(constant, constant, colour_fit, delta, criterion,
                        f"colour term rejected ({criterion.upper()} higher by {delta:.1f})")
