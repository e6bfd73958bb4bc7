"""Calibrate an observer's catalogue against reference surveys and measure the target.

Pure, synchronous and deterministic. The steps (see ``docs/ALGORITHM.md``):

1. clean the catalogue once (instrumental magnitude and error limits);
2. the matching radii: the user's, or each survey's own, from the astrometric offsets of the
   catalogue against that survey after a generous first match (``match_radius.py``); a survey whose
   offsets cannot be fitted takes the astrometric standard's (the first Gaia release present,
   ``CalibrationParams.astrometric_surveys``), else the default;
3. the target: the nearest catalogue star to the event position within the target radius, which is
   the user's, else the astrometric standard's, else that of the survey that calibrates the
   catalogue (so a survey that does not calibrate it, e.g. another survey of the same sky that was
   imported later, moves neither the radius nor the result);
4. match the catalogue to every survey once, one-to-one (the target is never a calibrator);
5. fit a zero point for every survey/band with usable reference values; gates;
6. order the passing fits independently of the request, then select: a forced filter only picks
   among those results; automatic selection stays within the bands compatible with the declared
   filter (upload, FITS FILTER, or the observatory's filter list) or, when none is declared, with
   the band the data identify decisively (else it fails and asks for the filter); the chosen band
   gets a colour term where its survey gives the band's natural colour and an information
   criterion prefers it;
7. the target's magnitude at its colour (reference colour if it is a known star, else the field's
   median colour, stated), or an n-sigma upper limit from the catalogue's error-magnitude relation.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.calibration.science._bandfit import (
    RefColumns,
    fit_band,
    fit_of,
    fitted_value,
    in_full,
    with_colour_term,
    zeropoint_at_target,
)
from services.calibration.science._select import (
    BandFit,
    fmt_arcsec,
    identify_filter,
    parse_force_filter,
    rank_fits,
    select,
)
from services.calibration.science.bands import BandHint, band_hint, band_hint_for_filters
from services.calibration.science.crossmatch import MutualNeighbours, SkyTree, angular_separation_arcsec
from services.calibration.science.limit import limiting_magnitude
from services.calibration.science.match_radius import MatchRadius, estimate_match_radius
from services.calibration.science.result import (
    ALGORITHM_VERSION,
    BandFitSummary,
    CalibrationParams,
    CalibrationResult,
    MatchedStars,
    opt_float,
)
from shared.catalogue.model import StarTable
from shared.refcat.model import ReferenceStars

__all__ = [
    "ALGORITHM_VERSION",
    "BandFitSummary",
    "CalibrationParams",
    "CalibrationResult",
    "MatchedStars",
    "calibrate",
    "parse_force_filter",
]

#: What a calibration given no parameters uses (frozen, so one shared instance is safe as a default).
DEFAULT_PARAMS = CalibrationParams()


def _astrometric_standard(refs: list[ReferenceStars], params: CalibrationParams) -> ReferenceStars | None:
    """The first of ``params.astrometric_surveys`` (the Gaia releases) that has stars here, else None.

    Chosen by name only, never by size: a survey that merely has more stars (say a synthetic
    survey of the same sky imported for another purpose) cannot become the astrometric reference.
    """
    for name in params.astrometric_surveys:
        for ref in refs:
            if ref.survey.lower() == name.lower() and len(ref):
                return ref
    return None


@dataclass(frozen=True)
class _Radii:
    """The matching radii of one calibration.

    ``per_survey`` is the radius each survey's stars are matched with (its own estimate from its
    own offsets; when those cannot be fitted, the astrometric standard's, else the default).
    ``standard`` is the estimate against the astrometric standard (None without one, or a user radius).
    """

    user: MatchRadius | None
    standard: MatchRadius | None
    per_survey: dict[str, MatchRadius]

    def for_target(self, survey: str | None, params: CalibrationParams, *, why: str | None = None) -> MatchRadius:
        """The radius that identifies the target when ``survey`` calibrates the catalogue.

        The user's radius; else the astrometric standard's (Gaia: the catalogue's own astrometric
        error, without a reference survey's); else the calibrating survey's own estimate. So the
        radius depends on the catalogue and on the references that calibrate it (and Gaia), never on
        other surveys that happen to cover the same sky.
        """
        if self.user is not None:
            return self.user
        if self.standard is not None:
            return self.standard
        if survey is not None and survey in self.per_survey:
            return self.per_survey[survey]
        return MatchRadius(params.default_match_radius_arcsec, "default",
                           reason=why or "no reference survey calibrates the catalogue")


def _radii(ra: NDArray[np.float64], dec: NDArray[np.float64], refs: list[ReferenceStars], user: float | None,
           params: CalibrationParams, neighbours: dict[str, MutualNeighbours]) -> _Radii:
    """The user's radius, or every survey's own automatic radius and the astrometric standard's.

    Each survey's estimate uses only the catalogue and that survey, so adding or removing another
    survey changes neither that survey's matches nor its zero point.
    """
    if user is not None:
        given = MatchRadius(user, "user")
        return _Radii(given, None, {r.survey: given for r in refs})
    def estimate(r: ReferenceStars) -> MatchRadius:
        return estimate_match_radius(
            ra, dec, r.ra_deg, r.dec_deg, reference=r.survey, first_radius_arcsec=params.first_match_radius_arcsec,
            k_sigma=params.match_radius_k_sigma, min_radius_arcsec=params.min_match_radius_arcsec,
            max_radius_arcsec=params.max_match_radius_arcsec, default_radius_arcsec=params.default_match_radius_arcsec,
            min_pairs=params.match_radius_min_pairs, neighbours=neighbours[r.survey])

    astro = _astrometric_standard(refs, params)
    own = {r.survey: estimate(r) for r in refs if len(r)}
    standard = None if astro is None else own[astro.survey]
    per_survey = {}
    for ref in refs:
        est = own.get(ref.survey)
        if est is None:
            est = MatchRadius(params.default_match_radius_arcsec, "default", ref.survey,
                              reason=f"{ref.survey}: no reference stars")
        if est.method != "auto" and standard is not None:
            est = standard
        per_survey[ref.survey] = est
    return _Radii(None, standard, per_survey)


def _find_target(ra: NDArray[np.float64], dec: NDArray[np.float64], mag: NDArray[np.float64], target_ra_deg: float,
                 target_dec_deg: float, radius_arcsec: float) -> tuple[int | None, float | None]:
    """Index of the nearest star within the radius (ties: brighter, then lower index)."""
    if ra.size == 0:
        return None, None
    sep = angular_separation_arcsec(ra, dec, target_ra_deg, target_dec_deg)
    within = np.flatnonzero(sep <= radius_arcsec)
    if within.size == 0:
        return None, None
    # round so that positions symmetric about the target count as ties despite rounding noise
    order = np.lexsort((within, mag[within], np.round(sep[within], 6)))
    best = int(within[order[0]])
    return best, float(sep[best])


def _declared(stars: StarTable, declared_filter: str | None, observatory_filters: Sequence[str] | str | None,
              params: CalibrationParams) -> tuple[BandHint | None, str | None, str | None]:
    """The compatible bands, the declared filter and where it came from (upload, header, observatory)."""
    decl = declared_filter if declared_filter is not None else stars.header.get("FILTER")
    decl_str = None if decl is None or str(decl).strip() == "" else str(decl).strip()
    source = None if decl_str is None else ("upload" if declared_filter is not None else "header FILTER")
    if not params.use_declared_filter:
        return None, decl_str, source
    hint = band_hint(decl_str)
    if decl_str is None and declared_filter is None and observatory_filters:
        hint = band_hint_for_filters(observatory_filters)
        if hint is not None:
            decl_str, source = hint.declared, "observatory filters"
    return hint, decl_str, source


def calibrate(
    stars: StarTable,
    references: Sequence[ReferenceStars],
    *,
    target_ra_deg: float,
    target_dec_deg: float,
    match_radius_arcsec: float | None = None,
    force_filter: str | None = "no",
    declared_filter: str | None = None,
    observatory_filters: Sequence[str] | str | None = None,
    params: CalibrationParams = DEFAULT_PARAMS,
) -> CalibrationResult:
    """Calibrate a catalogue against reference surveys and measure (or limit) the target.

    Parameters
    ----------
    stars : StarTable
        The observer's catalogue (instrumental magnitudes).
    references : sequence of ReferenceStars
        Reference stars around the field, one entry per survey (a survey given twice: the first);
        their order does not matter.
    target_ra_deg, target_dec_deg : float
        The event position in degrees.
    match_radius_arcsec : float or None, optional
        Radius for matching reference stars and for identifying the target. None (or not a positive
        number): automatic, from the astrometric offsets: each survey's own radius for its matches;
        for the target, the astrometric standard's (Gaia) when present, else the calibrating
        survey's.
    force_filter : str, optional
        ``"no"`` for automatic selection, or ``"SURVEY/band"``, ``"any/band"``, ``"SURVEY/any"``. A
        forced filter only selects among the fits computed for automatic selection.
    declared_filter : str, optional
        The observation's filter as declared with the upload; None: ``stars.header["FILTER"]``; an
        empty string: explicitly none. Automatic (and ``SURVEY/any``) selection is restricted to
        compatible bands.
    observatory_filters : sequence of str or str, optional
        The observatory's filters, used when no filter is declared.
    params : CalibrationParams, optional
        Tunables.

    Returns
    -------
    CalibrationResult
        Never NaN; on failure ``status == "failed"`` with a ``reason`` and whatever was computed.
    """
    t_ra, t_dec = float(target_ra_deg), float(target_dec_deg)
    requested = "no" if force_filter is None else str(force_filter)
    user_radius = opt_float(match_radius_arcsec)
    user_radius = user_radius if user_radius is not None and user_radius > 0 else None

    # 1. clean once
    cols = [np.asarray(v, dtype=float).ravel() for v in (stars.ra_deg, stars.dec_deg, stars.mag, stars.mag_err)]
    with np.errstate(invalid="ignore"):
        clean = (np.isfinite(cols[0]) & np.isfinite(cols[1]) & np.isfinite(cols[2]) & np.isfinite(cols[3])
                 & (cols[2] < params.max_inst_mag) & (cols[3] < params.max_inst_err_mag) & (cols[3] >= 0))
    keep = np.flatnonzero(clean)
    ra, dec, mag, err = (c[keep] for c in cols)
    cat = {"ra": ra, "dec": dec, "mag": mag, "err": err, "row": keep}
    n_cat = int(keep.size)
    refs: list[ReferenceStars] = []
    for ref in references:
        if ref.survey not in {r.survey for r in refs}:
            refs.append(ref)
    refs.sort(key=lambda r: r.survey)  # the same answer whatever order the store returned them in
    versions = {r.survey: str(r.version) for r in refs}

    # 2.-3. radii; the target as it is when a survey calibrates the catalogue (the same star for
    # every survey when the radius comes from the user or the astrometric standard)
    # the nearest neighbours of the catalogue in every survey and back, once, far enough for every
    # radius below (the first match of the radius estimate, any radius it or the user can give)
    cat_tree = SkyTree(ra, dec)
    reach = max(params.first_match_radius_arcsec, params.min_match_radius_arcsec, params.max_match_radius_arcsec,
                params.default_match_radius_arcsec, user_radius or 0.0)
    neighbours = {r.survey: MutualNeighbours(cat_tree, SkyTree(r.ra_deg, r.dec_deg), reach) for r in refs}
    radii = _radii(ra, dec, refs, user_radius, params, neighbours)
    survey_radius = {name: float(m.radius_arcsec) for name, m in radii.per_survey.items()}
    targets: dict[float, tuple[int | None, float | None]] = {}

    def target_within(r_arcsec: float) -> tuple[int | None, float | None]:
        if r_arcsec not in targets:
            targets[r_arcsec] = _find_target(ra, dec, mag, t_ra, t_dec, r_arcsec)
        return targets[r_arcsec]

    # 4.-5. match every survey once, fit every band
    fits: list[BandFit] = []
    columns = {r.survey: RefColumns(r, params.max_ref_err_mag) for r in refs}
    for ref in refs:
        r_s = survey_radius[ref.survey]
        t_own = target_within(float(radii.for_target(ref.survey, params).radius_arcsec))[0]
        i_cat, i_ref, sep = neighbours[ref.survey].match(
            r_s, exclude=t_own if params.exclude_target_from_fit else None)
        for band in ref.mags:
            fits.append(fit_band(columns[ref.survey], band, i_ref, i_cat, sep, cat, r_s, params))

    # 6. order (request-independent), then select; the chosen band gets its colour term
    fits = rank_fits(fits, params.band_identification_min_delta_lnl)
    forced = parse_force_filter(requested)
    hint, decl_str, decl_source = _declared(stars, declared_filter, observatory_filters, params)
    label = None if decl_str is None else f"declared filter {decl_str!r}"
    inferred = inference_failure = None
    if hint is None and params.infer_undeclared_filter and (forced is None or forced[1] is None) and fits:
        hint, why = identify_filter(fits, min_stars=params.band_identification_min_stars,
                                    min_delta_lnl=params.band_identification_min_delta_lnl)
        if hint is None:
            inference_failure = why
        else:
            inferred, decl_source = hint.declared.removeprefix("inferred: "), "inferred from the data"
            label = f"filter inferred from the data ({inferred})"
    # for a sentence only ("no reference stars matched within ..."): the largest radius tried
    tried = max(survey_radius.values(), default=params.default_match_radius_arcsec)
    chosen, display, reason = select(fits, forced, requested, hint, tried, label, params.colour_min_stars)
    if inference_failure is not None:
        chosen, reason = None, (f"{inference_failure}; declare the filter (upload field 'filter' or the FITS "
                                "FILTER keyword) or force one")
    if chosen is not None:
        chosen = with_colour_term(chosen, params)
        fits = [chosen if (f.summary.survey, f.summary.band) == (chosen.summary.survey, chosen.summary.band) else f
                for f in fits]
        display = chosen

    # the target's radius: from the survey that calibrates (or, failing, was the best attempt)
    lead = chosen or display
    radius_info = radii.for_target(None if lead is None else lead.summary.survey, params,
                                   why=None if refs else "no reference stars")
    radius = float(radius_info.radius_arcsec)
    t_idx, t_sep = target_within(radius)

    # 7. the target's magnitude or limit
    base: dict[str, Any] = dict(
        target_ra_deg=t_ra, target_dec_deg=t_dec, target_sep_arcsec=opt_float(t_sep),
        ra_deg=opt_float(ra[t_idx]) if t_idx is not None else None,
        dec_deg=opt_float(dec[t_idx]) if t_idx is not None else None,
        match_radius_arcsec=radius, n_catalogue_stars=n_cat, requested_filter=requested, declared_filter=decl_str,
        compatible_bands=list(hint.bands) if hint is not None else [],
        fits=[f.summary for f in fits], refcat_versions=versions, params=params.to_dict(),
        params_hash=params.hash(), algorithm_version=ALGORITHM_VERSION,
        mode="AUTO" if forced is None else "FORCED", matched=None if display is None else in_full(display),
        match_radius_method=radius_info.method, match_radius_detail=radius_info.to_dict(),
        survey_match_radius_arcsec=dict(survey_radius), declared_filter_source=decl_source, inferred_filter=inferred,
        band_matches=[f.matched for f in fits],
    )
    if chosen is None:
        # no numbers of a band that was not chosen; the best attempt is in `fits` and `matched`
        return CalibrationResult(
            status="failed", reason=reason or "calibration failed", survey=None, band=None, filter=None,
            zeropoint=None, zeropoint_err=None, scatter=None, outlier_fraction=None, npoints=0, mag=None,
            mag_err=None, zp_err=None, calib_err=None, total_err=None, is_limit=False, limit_sigma=None,
            limit_method=None, **base)

    s = chosen.summary
    pos = (t_ra, t_dec) if t_idx is None else (float(ra[t_idx]), float(dec[t_idx]))
    zp, zp_err, colour_err, colour = zeropoint_at_target(chosen, columns[s.survey], pos, radius)
    scatter = fitted_value(s.scatter)
    factor = fit_of(chosen).small_sample_factor()
    calib_total = factor * math.hypot(zp_err, scatter)  # zero point and star-to-star, few-star corrected
    common: dict[str, Any] = dict(survey=s.survey, band=s.band, filter=s.filter, zeropoint=opt_float(zp),
                  zeropoint_err=opt_float(zp_err), scatter=scatter, outlier_fraction=s.outlier_fraction,
                  npoints=s.npoints, zp_err=opt_float(zp_err), calib_err=scatter,
                  small_sample_factor=opt_float(factor), n_effective=opt_float(fit_of(chosen).n_effective),
                  refcat_version=versions.get(s.survey), colour_note=s.colour_note, **colour)
    if t_idx is not None:
        m_err = float(err[t_idx])
        return CalibrationResult(
            status="calibrated", reason=None, mag=opt_float(mag[t_idx] - zp), mag_err=opt_float(m_err),
            total_err=opt_float(math.sqrt(m_err**2 + calib_total**2 + colour_err**2)),
            is_limit=False, limit_sigma=None, limit_method=None, **common, **base)
    lim = limiting_magnitude(mag, err, n_sigma=params.limit_sigma, min_stars=params.limit_min_stars,
                             min_slope_dex_per_mag=params.limit_min_slope_dex_per_mag,
                             max_extrapolation_mag=params.limit_max_extrapolation_mag)
    lim_mag = opt_float(None if lim.mag is None else lim.mag - zp)
    if lim_mag is None:
        return CalibrationResult(
            status="failed", reason="no catalogue star near the target and no limiting magnitude",
            mag=None, mag_err=None, total_err=None, is_limit=False, limit_sigma=None,
            limit_method=lim.method, **common, **base)
    lim_err = None if lim.mag_err is None else math.sqrt(lim.mag_err**2 + calib_total**2 + colour_err**2)
    return CalibrationResult(
        status="limit", reason=f"no catalogue star within {fmt_arcsec(radius)} arcsec of the target",
        mag=lim_mag, mag_err=None, total_err=None, is_limit=True,
        limit_sigma=opt_float(lim.sigma or params.limit_sigma), limit_method=lim.method,
        limit_err=opt_float(lim_err), **common, **base)
