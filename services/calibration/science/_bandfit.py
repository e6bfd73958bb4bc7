"""Private: the zero-point fit of one survey/band, its colour term, and the zero point at the target."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.calibration.science._select import BandFit, fmt_arcsec
from services.calibration.science.bands import natural_colour
from services.calibration.science.colourterm import fit_with_colour_choice
from services.calibration.science.crossmatch import angular_separation_arcsec
from services.calibration.science.result import BandFitSummary, CalibrationParams, MatchedStars, opt_float
from services.calibration.science.zeropoint import MAD_TO_SIGMA, ZeropointFit, ZeropointOptions, fit_zeropoint
from shared.refcat.model import ReferenceStars

ASSUMED_COLOUR = "assumed field median"


def _rounded(values: NDArray[np.float64], digits: int) -> list[float | None]:
    """Finite values rounded for storage; None where not finite."""
    a = np.round(np.asarray(values, dtype=float), digits)
    out: list[float | None] = a.tolist()
    if not np.all(np.isfinite(a)):
        out = [v if v is not None and math.isfinite(v) else None for v in out]
    return out


class RefColumns:
    """One survey's bands as the fits use them, each computed once per calibration: magnitudes and
    errors with unusable values (no error, error too large) as NaN."""

    def __init__(self, ref: ReferenceStars, max_err: float) -> None:
        self.ref = ref
        self.max_err = float(max_err)
        self._bands: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}

    def __getitem__(self, band: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if band not in self._bands:
            ref = self.ref
            mags = np.asarray(ref.mags[band], dtype=float)
            errs_all = ref.mag_errs.get(band)
            errs = np.full(mags.shape, np.nan) if errs_all is None else np.asarray(errs_all, dtype=float)
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(mags) & np.isfinite(errs) & (errs >= 0) & (errs < self.max_err)
            self._bands[band] = (np.where(ok, mags, np.nan), np.where(ok, errs, np.nan))
        return self._bands[band]

    def colour(self, pair: tuple[str, str] | None, idx: NDArray[np.intp]
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Reference colour ``blue - red`` and its error for reference rows ``idx`` (NaN where missing)."""
        if pair is None:
            nan = np.full(idx.size, np.nan)
            return nan, nan
        (mb, eb), (mr, er) = self[pair[0]], self[pair[1]]
        return mb[idx] - mr[idx], np.hypot(eb[idx], er[idx])


def _fit_options(params: CalibrationParams) -> ZeropointOptions:
    return ZeropointOptions(
        scatter_floor_mag=params.scatter_floor_mag, outlier_scale_factor=params.outlier_scale_factor,
        outlier_scale_min_mag=params.outlier_scale_min_mag, scatter_prior_mag=params.scatter_prior_mag,
        scatter_prior_width=params.scatter_prior_width)


def _gate(name: str, n: int, fit: ZeropointFit, params: CalibrationParams) -> str | None:
    """Why a fit fails the quality gates (None: it passes)."""
    if n < params.min_npoints:
        return f"only {n} matched star{'s' if n != 1 else ''} in {name}, need {params.min_npoints}"
    if not fit.ok:
        return f"{name}: {fit.reason}"
    if not fit.outlier_fraction < params.max_outlier_fraction:
        return (f"outlier fraction {fit.outlier_fraction:.2f} in {name}, "
                f"must be below {params.max_outlier_fraction:g}")
    if not fit.scatter < params.max_scatter_mag:
        return f"scatter {fit.scatter:.2f} mag in {name}, must be below {params.max_scatter_mag:g} mag"
    return None


def fit_band(columns: RefColumns, band: str, i_ref: NDArray[np.intp], rows: NDArray[np.intp],
             sep: NDArray[np.float64], cat: dict[str, NDArray[Any]], radius: float,
             params: CalibrationParams) -> BandFit:
    """Fit a constant zero point to one survey/band on the stars matched to it (catalogue ``rows``
    <-> reference ``i_ref``) and apply the gates; the colour term comes later, for the chosen band."""
    ref = columns.ref
    survey, name = ref.survey, f"{ref.survey}/{band}"
    n_matched = int(i_ref.size)
    mags, errs = columns[band]
    usable = np.isfinite(mags[i_ref])
    i_ref, rows, sep = i_ref[usable], rows[usable], sep[usable]
    rm, re_ = mags[i_ref], errs[i_ref]
    im, ie = cat["mag"][rows], cat["err"][rows]
    n = int(rm.size)
    pair = natural_colour(band, ref.mags.keys()) if params.use_colour_terms else None
    colours, _ = columns.colour(pair, i_ref)
    comb = np.sqrt(ie * ie + re_ * re_)
    matched = MatchedStars(  # lean; in full (in_full) for the displayed band only
        survey, band, _rounded(rm, 5), _rounded(im, 5), _rounded(comb, 5), [False] * n,
        cat_index=cat["row"][rows].tolist(), colour=_rounded(colours, 5) if pair else [])
    base: dict[str, Any] = dict(survey=survey, band=band, npoints=n, n_matched=n_matched,
                colour=None if pair is None else f"{pair[0]}-{pair[1]}", match_radius_arcsec=opt_float(radius))
    detail = dict(ref_index=i_ref, ref_err=re_, inst_err=ie, sep_arcsec=sep, ra_deg=cat["ra"][rows],
                  dec_deg=cat["dec"][rows])
    arrays: dict[str, Any] = dict(colour_pair=pair, colours=colours, diff=im - rm, err=comb, detail=detail)
    if n == 0:
        why = (f"no reference stars matched within {fmt_arcsec(radius)} arcsec" if n_matched == 0 else
               f"no usable {name} values among {n_matched} matched stars "
               f"(reference error below {params.max_ref_err_mag:g} mag)")
        summary = BandFitSummary(zeropoint=None, zeropoint_err=None, scatter=None, outlier_fraction=None,
                                 n_outliers=0, passed=False, reason=why, **base)
        return BandFit(summary, matched, rows, None, None, **arrays)
    fit = fit_zeropoint(im - rm, comb, **_fit_options(params))
    reason = _gate(name, n, fit, params)
    summary = BandFitSummary(
        zeropoint=opt_float(fit.zeropoint), zeropoint_err=opt_float(fit.zeropoint_err),
        scatter=opt_float(fit.scatter) if fit.ok else None,
        outlier_fraction=opt_float(fit.outlier_fraction) if fit.ok else None,
        n_outliers=int(fit.n_outliers), passed=reason is None, reason=reason,
        constant_zeropoint=opt_float(fit.zeropoint), constant_scatter=opt_float(fit.scatter) if fit.ok else None,
        **base)
    matched = replace(matched, outlier=fit.outlier.tolist())
    return BandFit(summary, matched, rows, fit.star_log_likelihood if fit.ok else None, fit, **arrays)


def in_full(bf: BandFit) -> MatchedStars:
    """The band's full record of matched stars: the lean one with reference rows, both errors,
    separations and positions."""
    x = bf.detail
    return replace(bf.matched, ref_index=x["ref_index"].tolist(), ref_err=_rounded(x["ref_err"], 5),
                   inst_err=_rounded(x["inst_err"], 5), sep_arcsec=_rounded(x["sep_arcsec"], 4),
                   ra_deg=_rounded(x["ra_deg"], 7), dec_deg=_rounded(x["dec_deg"], 7))


def with_colour_term(bf: BandFit, params: CalibrationParams) -> BandFit:
    """The chosen band with a colour term where its survey gives the natural colour and the
    information criterion prefers it (otherwise unchanged but for the note)."""
    if bf.colour_pair is None or bf.fit is None:
        return bf
    options: ZeropointOptions = {**_fit_options(params), "max_colour_slope": params.max_colour_slope,
                                 "colour_bound_sigma": params.colour_slope_bound_sigma}
    choice = fit_with_colour_choice(
        bf.diff, bf.err, bf.colours, constant=bf.fit, criterion=params.colour_criterion,
        min_colour_stars=params.colour_min_stars, **options)
    s = replace(bf.summary, colour_delta_ic=opt_float(choice.delta_ic), colour_note=choice.note)
    if not choice.uses_colour:
        return replace(bf, summary=s)
    fit = choice.fit
    s = replace(s, zeropoint=opt_float(fit.zeropoint), zeropoint_err=opt_float(fit.zeropoint_err),
                scatter=opt_float(fit.scatter), outlier_fraction=opt_float(fit.outlier_fraction),
                n_outliers=int(fit.n_outliers), colour_slope=opt_float(fit.colour_slope),
                colour_slope_err=opt_float(fit.colour_slope_err), colour_pivot_mag=opt_float(fit.colour_pivot_mag),
                zeropoint_slope_cov=opt_float(fit.zeropoint_slope_cov))
    matched = replace(bf.matched, outlier=fit.outlier.tolist())
    return replace(bf, summary=s, matched=matched, fit=fit)


def fit_of(bf: BandFit) -> ZeropointFit:
    """The zero-point fit of a band that has one (every band that passed the gates)."""
    if bf.fit is None:
        raise ValueError(f"{bf.summary.filter} has no zero-point fit")
    return bf.fit


def fitted_value(x: float | None) -> float:
    """A value the chosen fit always has (its zero point; its colour slope when one is used)."""
    if x is None:
        raise TypeError("a fitted value is missing")
    return float(x)


def _target_colour(chosen: BandFit, columns: RefColumns, pos: tuple[float, float], radius: float
                   ) -> tuple[float, float, str]:
    """The target's colour, its error and where it came from: the nearest reference star within
    the radius (a known star), else the field's median colour with the field's spread as error."""
    fit = fit_of(chosen)
    ref = columns.ref
    sep = angular_separation_arcsec(ref.ra_deg, ref.dec_deg, pos[0], pos[1])
    near = np.flatnonzero(sep <= radius)
    if near.size:
        j = near[np.lexsort((near, sep[near]))][:1]
        colour, colour_err = columns.colour(chosen.colour_pair, j)
        if np.isfinite(colour[0]) and np.isfinite(colour_err[0]):
            return float(colour[0]), float(colour_err[0]), "reference"
    good = fit.used & ~fit.outlier & np.isfinite(chosen.colours)
    c = chosen.colours[good] if good.any() else chosen.colours[np.isfinite(chosen.colours)]
    spread = MAD_TO_SIGMA * float(np.median(np.abs(c - np.median(c)))) if c.size else 0.0
    return fitted_value(fit.colour_pivot_mag), spread, ASSUMED_COLOUR


def zeropoint_at_target(chosen: BandFit, columns: RefColumns, pos: tuple[float, float], radius: float
                        ) -> tuple[float, float, float, dict[str, Any]]:
    """Zero point, its error and the colour error at the target's colour; the colour fields."""
    s = chosen.summary
    zp, zp_var = fitted_value(s.zeropoint), fitted_value(s.zeropoint_err) ** 2
    if s.colour_slope is None:
        return zp, math.sqrt(zp_var), 0.0, {}
    fit = fit_of(chosen)
    c_t, c_err, source = _target_colour(chosen, columns, pos, radius)
    k, dc = fitted_value(fit.colour_slope), c_t - fitted_value(fit.colour_pivot_mag)
    zp += k * dc
    zp_var += dc * dc * fitted_value(fit.colour_slope_err) ** 2 + 2.0 * dc * fitted_value(fit.zeropoint_slope_cov)
    colour_err = abs(k) * c_err
    fields = dict(colour=s.colour, colour_slope=k, colour_slope_err=s.colour_slope_err,
                  colour_pivot_mag=s.colour_pivot_mag, target_colour=opt_float(c_t), target_colour_err=opt_float(c_err),
                  target_colour_source=source, colour_err=opt_float(colour_err))
    return zp, math.sqrt(max(zp_var, 0.0)), colour_err, fields
