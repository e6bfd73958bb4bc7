"""Calibrate an observer's catalogue against reference surveys and measure the target.

Pure, synchronous and deterministic. The steps (see ``docs/ALGORITHM.md``):

1. clean the catalogue once (instrumental magnitude and error limits);
2. find the target: the nearest catalogue star to the event position within the radius;
3. match the catalogue to every survey once, one-to-one (the target is never a calibrator);
4. fit a zero point for every survey/band with usable reference values and apply the gates;
5. select a band: a forced filter only picks among those results; automatic selection prefers
   bands compatible with the declared filter and then the smallest scatter;
6. the target's magnitude, or an n-sigma upper limit from the catalogue's error-magnitude relation.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

import numpy as np

from services.calibration.science.bands import BandHint, band_hint
from services.calibration.science.crossmatch import angular_separation_arcsec, match_one_to_one
from services.calibration.science.limit import limiting_magnitude
from services.calibration.science.zeropoint import fit_zeropoint
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

ALGORITHM_VERSION = "2026.11.1"

_AUTO_WORDS = {"", "no", "auto", "automatic", "none", "any", "any/any"}


def _opt(x: Any) -> float | None:
    """A finite Python float, or None."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _fmt_arcsec(r: float) -> str:
    return f"{r:.1f}" if round(r, 1) == r else f"{r:g}"


@dataclass(frozen=True)
class CalibrationParams:
    """Every tunable of the calibration (CPCS version 2 gate values by default).

    Attributes
    ----------
    max_ref_err_mag : float
        Reference magnitudes with an error at or above this are not used.
    max_inst_mag : float
        Catalogue rows with an instrumental magnitude at or above this are dropped.
    max_inst_err_mag : float
        Catalogue rows with an instrumental error at or above this are dropped.
    max_outlier_fraction : float
        Gate: the fitted outlier fraction must be below this.
    min_npoints : int
        Gate: at least this many matched stars with usable reference values.
    max_scatter_mag : float
        Gate: the intrinsic scatter must be below this.
    scatter_floor_mag : float
        Floor of the reported scatter.
    outlier_scale_factor : float
        Width of the outlier density in units of the robust spread (see ``fit_zeropoint``).
    outlier_scale_min_mag : float
        Minimum width of the outlier density.
    limit_sigma : float
        Detection threshold (S/N) of upper limits.
    limit_min_stars : int
        Fewest stars for the error-magnitude relation of the limit.
    limit_min_slope_dex_per_mag : float
        Flatter error-magnitude relations fall back to the faintest star.
    limit_max_extrapolation_mag : float
        Largest extrapolation of the relation beyond the faintest star.
    use_declared_filter : bool
        Restrict automatic selection to bands compatible with the declared filter.
    exclude_target_from_fit : bool
        Never use the catalogue star identified as the target as a calibration star.
    """

    max_ref_err_mag: float = 0.3
    max_inst_mag: float = 50.0
    max_inst_err_mag: float = 1.0
    max_outlier_fraction: float = 0.5
    min_npoints: int = 5
    max_scatter_mag: float = 1.5
    scatter_floor_mag: float = 1e-4
    outlier_scale_factor: float = 5.0
    outlier_scale_min_mag: float = 0.05
    limit_sigma: float = 5.0
    limit_min_stars: int = 10
    limit_min_slope_dex_per_mag: float = 0.02
    limit_max_extrapolation_mag: float = 3.0
    use_declared_filter: bool = True
    exclude_target_from_fit: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict."""
        return asdict(self)

    def canonical_json(self) -> str:
        """Sorted-key, compact JSON of the parameters."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def hash(self) -> str:
        """First 16 hex digits of the SHA-256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class BandFitSummary:
    """The zero-point fit of one survey/band and whether it passed the gates."""

    survey: str
    band: str
    zeropoint: float | None
    zeropoint_err: float | None
    scatter: float | None
    outlier_fraction: float | None
    npoints: int
    n_outliers: int
    n_matched: int
    passed: bool
    reason: str | None

    @property
    def filter(self) -> str:
        """``SURVEY/band``."""
        return f"{self.survey}/{self.band}"

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict including ``filter``."""
        d = asdict(self)
        d["filter"] = self.filter
        return d


@dataclass(frozen=True)
class MatchedStars:
    """The matched stars of one survey/band, for plotting and provenance (lists, aligned)."""

    survey: str
    band: str
    ref_mag: list[float]
    inst_mag: list[float]
    err_mag: list[float]
    outlier: list[bool]

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict."""
        return {
            "survey": self.survey,
            "band": self.band,
            "ref_mag": list(self.ref_mag),
            "inst_mag": list(self.inst_mag),
            "err_mag": list(self.err_mag),
            "outlier": list(self.outlier),
        }


@dataclass(frozen=True)
class CalibrationResult:
    """The outcome of :func:`calibrate`; every float is finite or None.

    ``status`` is ``"calibrated"`` (target measured), ``"limit"`` (target not detected: ``mag`` is an
    upper limit, ``mag_err`` None) or ``"failed"`` (``reason`` says why). ``calib_err`` is the
    scatter (the CPCS meaning); ``total_err = sqrt(mag_err^2 + zp_err^2 + calib_err^2)``.
    ``ra_deg``/``dec_deg`` are the catalogue position of the star taken as the target.
    """

    status: str
    reason: str | None
    survey: str | None
    band: str | None
    filter: str | None
    mode: str
    zeropoint: float | None
    zeropoint_err: float | None
    scatter: float | None
    outlier_fraction: float | None
    npoints: int
    mag: float | None
    mag_err: float | None
    zp_err: float | None
    calib_err: float | None
    total_err: float | None
    is_limit: bool
    limit_sigma: float | None
    limit_method: str | None
    target_ra_deg: float
    target_dec_deg: float
    target_sep_arcsec: float | None
    ra_deg: float | None
    dec_deg: float | None
    match_radius_arcsec: float
    n_catalogue_stars: int
    requested_filter: str
    declared_filter: str | None
    compatible_bands: list[str]
    fits: list[BandFitSummary]
    matched: MatchedStars | None
    refcat_versions: dict[str, str]
    params: dict[str, Any]
    params_hash: str
    algorithm_version: str = ALGORITHM_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain Python types (JSON-serialisable, no NaN)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "fits":
                value = [s.to_dict() for s in value]
            elif f.name == "matched":
                value = None if value is None else value.to_dict()
            elif isinstance(value, (list, dict)):
                value = json.loads(json.dumps(value))
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CalibrationResult":
        """Rebuild a result from :meth:`to_dict` output (e.g. read back from the database)."""
        values = {f.name: data.get(f.name) for f in fields(cls) if f.name in data}
        values["fits"] = [BandFitSummary(**{k: v for k, v in s.items() if k != "filter"})
                          for s in data.get("fits") or []]
        values["matched"] = MatchedStars(**data["matched"]) if data.get("matched") else None
        return cls(**values)

    @classmethod
    def failure(cls, reason: str, *, target_ra_deg: float, target_dec_deg: float,
                params: CalibrationParams | None = None) -> "CalibrationResult":
        """A failed result before any fit (e.g. an unreadable catalogue), for records and plots."""
        params = params or CalibrationParams()
        return cls(status="failed", reason=reason, survey=None, band=None, filter=None, mode="AUTO",
                   zeropoint=None, zeropoint_err=None, scatter=None, outlier_fraction=None, npoints=0,
                   mag=None, mag_err=None, zp_err=None, calib_err=None, total_err=None, is_limit=False,
                   limit_sigma=None, limit_method=None, target_ra_deg=target_ra_deg,
                   target_dec_deg=target_dec_deg, target_sep_arcsec=None, ra_deg=None, dec_deg=None,
                   match_radius_arcsec=0.0, n_catalogue_stars=0, requested_filter="no", declared_filter=None,
                   compatible_bands=[], fits=[], matched=None, refcat_versions={}, params=params.to_dict(),
                   params_hash=params.hash())

    def summary_dict(self) -> dict[str, Any]:
        """The fields of the CPCS-compatible ``CalibrationSummary`` message part (v1 contract)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "survey": self.survey,
            "band": self.band,
            "filter": self.filter,
            "mode": self.mode,
            "mag": self.mag,
            "mag_err": self.mag_err,
            "zp_err": self.zp_err,
            "calib_err": self.calib_err,
            "total_err": self.total_err,
            "is_limit": self.is_limit,
            "limit_sigma": self.limit_sigma,
            "zeropoint": self.zeropoint,
            "zeropoint_err": self.zeropoint_err,
            "scatter": self.scatter,
            "outlier_fraction": self.outlier_fraction,
            "npoints": self.npoints,
            "ra_deg": self.ra_deg,
            "dec_deg": self.dec_deg,
            "match_radius_arcsec": self.match_radius_arcsec,
            "n_catalogue_stars": self.n_catalogue_stars,
        }


@dataclass(frozen=True)
class _BandFit:
    summary: BandFitSummary
    matched: MatchedStars


def parse_force_filter(force_filter: str | None) -> tuple[str | None, str | None] | None:
    """Parse a CPCS filter request.

    Parameters
    ----------
    force_filter : str or None
        ``"no"`` (automatic), ``"SURVEY/band"``, ``"any/band"``, ``"SURVEY/any"``; a bare band name
        is read as ``"any/band"``.

    Returns
    -------
    tuple or None
        None for automatic, else ``(survey or None, band or None)`` where None means any.
    """
    text = "" if force_filter is None else str(force_filter).strip()
    if text.lower() in _AUTO_WORDS:
        return None
    if "/" in text:
        survey, band = (p.strip() for p in text.split("/", 1))
    else:
        survey, band = "any", text
    survey_v = None if survey.lower() in ("any", "") else survey
    band_v = None if band.lower() in ("any", "") else band
    return survey_v, band_v


def _rank_key(s: BandFitSummary) -> tuple:
    """Passing fits: smallest scatter, then smallest ZP error, then names."""
    return (s.scatter if s.scatter is not None else math.inf,
            s.zeropoint_err if s.zeropoint_err is not None else math.inf,
            s.survey, s.band)


def _attempt_key(s: BandFitSummary) -> tuple:
    """Failed fits: the one that got furthest (most stars, then smallest scatter, names)."""
    return (-s.npoints, *_rank_key(s))


def _fit_band(
    survey: str,
    band: str,
    ref: ReferenceStars,
    ref_idx: np.ndarray,
    inst_mag: np.ndarray,
    inst_err: np.ndarray,
    radius_arcsec: float,
    params: CalibrationParams,
) -> _BandFit:
    name = f"{survey}/{band}"
    n_matched = int(ref_idx.size)
    mags = np.asarray(ref.mags[band], dtype=float)
    errs_all = ref.mag_errs.get(band)
    errs = np.full(mags.shape, np.nan) if errs_all is None else np.asarray(errs_all, dtype=float)
    rm = mags[ref_idx]
    re = errs[ref_idx]
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(rm) & np.isfinite(re) & (re >= 0) & (re < params.max_ref_err_mag)
    rm, re, im, ie = rm[usable], re[usable], inst_mag[usable], inst_err[usable]
    n = int(rm.size)

    def summary(fit=None, passed=False, reason=None) -> BandFitSummary:
        return BandFitSummary(
            survey=survey, band=band,
            zeropoint=None if fit is None else _opt(fit.zeropoint),
            zeropoint_err=None if fit is None else _opt(fit.zeropoint_err),
            scatter=None if fit is None or not fit.ok else _opt(fit.scatter),
            outlier_fraction=None if fit is None or not fit.ok else _opt(fit.outlier_fraction),
            npoints=n, n_outliers=0 if fit is None else int(fit.n_outliers), n_matched=n_matched,
            passed=passed, reason=reason,
        )

    diff = im - rm
    comb = np.sqrt(ie * ie + re * re)
    if n_matched == 0:
        return _BandFit(summary(reason=f"no reference stars matched within {_fmt_arcsec(radius_arcsec)} arcsec"),
                        MatchedStars(survey, band, [], [], [], []))
    if n == 0:
        return _BandFit(
            summary(reason=(f"no usable {name} values among {n_matched} matched stars "
                            f"(reference error below {params.max_ref_err_mag:g} mag)")),
            MatchedStars(survey, band, [], [], [], []),
        )
    fit = fit_zeropoint(
        diff, comb,
        scatter_floor_mag=params.scatter_floor_mag,
        outlier_scale_factor=params.outlier_scale_factor,
        outlier_scale_min_mag=params.outlier_scale_min_mag,
    )
    matched = MatchedStars(
        survey, band,
        [float(x) for x in rm], [float(x) for x in im], [float(x) for x in comb],
        [bool(x) for x in fit.outlier],
    )
    if n < params.min_npoints:
        reason = f"only {n} matched star{'s' if n != 1 else ''} in {name}, need {params.min_npoints}"
    elif not fit.ok:
        reason = f"{name}: {fit.reason}"
    elif not fit.outlier_fraction < params.max_outlier_fraction:
        reason = (f"outlier fraction {fit.outlier_fraction:.2f} in {name}, "
                  f"must be below {params.max_outlier_fraction:g}")
    elif not fit.scatter < params.max_scatter_mag:
        reason = f"scatter {fit.scatter:.2f} mag in {name}, must be below {params.max_scatter_mag:g} mag"
    else:
        reason = None
    return _BandFit(summary(fit, passed=reason is None, reason=reason), matched)


def _find_target(
    ra: np.ndarray, dec: np.ndarray, mag: np.ndarray, target_ra_deg: float, target_dec_deg: float, radius_arcsec: float
) -> tuple[int | None, float | None]:
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


def calibrate(
    stars: StarTable,
    references: Sequence[ReferenceStars],
    *,
    target_ra_deg: float,
    target_dec_deg: float,
    match_radius_arcsec: float = 2.0,
    force_filter: str | None = "no",
    declared_filter: str | None = None,
    params: CalibrationParams = CalibrationParams(),
) -> CalibrationResult:
    """Calibrate a catalogue against reference surveys and measure (or limit) the target.

    Parameters
    ----------
    stars : StarTable
        The observer's catalogue (instrumental magnitudes).
    references : sequence of ReferenceStars
        Reference stars around the field, one entry per survey.
    target_ra_deg, target_dec_deg : float
        The event position in degrees.
    match_radius_arcsec : float, optional
        Radius for matching reference stars and for identifying the target.
    force_filter : str, optional
        ``"no"`` for automatic selection, or ``"SURVEY/band"``, ``"any/band"``, ``"SURVEY/any"``. A
        forced filter only selects among the fits computed for automatic selection.
    declared_filter : str, optional
        The observation's filter as declared with the upload; defaults to ``stars.header["FILTER"]``.
        Automatic (and ``SURVEY/any``) selection is restricted to compatible bands.
    params : CalibrationParams, optional
        Tunables.

    Returns
    -------
    CalibrationResult
        Never NaN; on failure ``status == "failed"`` with a ``reason`` and whatever was computed.
    """
    radius = float(match_radius_arcsec)
    t_ra, t_dec = float(target_ra_deg), float(target_dec_deg)
    requested = "no" if force_filter is None else str(force_filter)

    # 1. clean once
    ra = np.asarray(stars.ra_deg, dtype=float).ravel()
    dec = np.asarray(stars.dec_deg, dtype=float).ravel()
    mag = np.asarray(stars.mag, dtype=float).ravel()
    err = np.asarray(stars.mag_err, dtype=float).ravel()
    with np.errstate(invalid="ignore"):
        clean = (np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mag) & np.isfinite(err)
                 & (mag < params.max_inst_mag) & (err < params.max_inst_err_mag) & (err >= 0))
    keep = np.flatnonzero(clean)
    ra, dec, mag, err = ra[keep], dec[keep], mag[keep], err[keep]
    n_cat = int(keep.size)

    # 2. the target
    t_idx, t_sep = _find_target(ra, dec, mag, t_ra, t_dec, radius)

    # 3.-4. match every survey once, fit every band
    calib = np.ones(n_cat, dtype=bool)
    if t_idx is not None and params.exclude_target_from_fit:
        calib[t_idx] = False
    cal_idx = np.flatnonzero(calib)
    fits: list[_BandFit] = []
    versions: dict[str, str] = {}
    for ref in references:
        if ref.survey in versions:  # a survey given twice: keep the first
            continue
        versions[ref.survey] = str(ref.version)
        i_cat, i_ref, _ = match_one_to_one(ra[cal_idx], dec[cal_idx], ref.ra_deg, ref.dec_deg, radius)
        i_cat = cal_idx[i_cat]
        for band in ref.mags:
            fits.append(_fit_band(ref.survey, band, ref, i_ref, mag[i_cat], err[i_cat], radius, params))
    summaries = [f.summary for f in fits]

    # 5. selection
    forced = parse_force_filter(requested)
    mode = "AUTO" if forced is None else "FORCED"
    decl = declared_filter if declared_filter is not None else stars.header.get("FILTER")
    decl_str = None if decl is None or str(decl).strip() == "" else str(decl).strip()
    hint: BandHint | None = band_hint(decl_str) if params.use_declared_filter else None

    if forced is None:
        candidates = list(fits)
    else:
        f_survey, f_band = forced
        candidates = [
            f for f in fits
            if (f_survey is None or f.summary.survey.lower() == f_survey.lower())
            and (f_band is None or f.summary.band == f_band)
        ]
    use_hint = hint is not None and (forced is None or forced[1] is None)

    chosen: _BandFit | None = None
    reason: str | None = None
    if not fits:
        reason = "no reference catalogue covers the field"
    elif not candidates:
        available = ", ".join(sorted({s.filter for s in summaries}))
        reason = f"filter {requested!r} is not available; available: {available}"
    else:
        passing = [f for f in candidates if f.summary.passed]
        if use_hint:
            for tier in hint.tiers:
                pool = [f for f in passing if f.summary.band in tier]
                if pool:
                    chosen = min(pool, key=lambda f: _rank_key(f.summary))
                    break
        elif passing:
            chosen = min(passing, key=lambda f: _rank_key(f.summary))
        if chosen is None:
            compatible = [f for f in candidates if not use_hint or f.summary.band in hint.bands]
            if all(f.summary.n_matched == 0 for f in candidates):
                reason = f"no reference stars matched within {_fmt_arcsec(radius)} arcsec"
            elif use_hint and passing:
                best = min(compatible, key=lambda f: _attempt_key(f.summary)) if compatible else None
                reason = (f"no band compatible with the declared filter {decl_str!r} "
                          f"({', '.join(hint.bands)}) passed the quality gates"
                          + (f" (best attempt: {best.summary.reason})" if best is not None else "")
                          + "; passing but incompatible: "
                          + ", ".join(sorted(f.summary.filter for f in passing)))
            else:
                pool = compatible or candidates
                best = min(pool, key=lambda f: _attempt_key(f.summary))
                reason = best.summary.reason
    display = chosen
    if chosen is None and candidates:
        pool = [f for f in candidates if not use_hint or f.summary.band in hint.bands] or candidates
        display = min(pool, key=lambda f: _attempt_key(f.summary))

    # 6. the target's magnitude or limit
    t_ra_star = _opt(ra[t_idx]) if t_idx is not None else None
    t_dec_star = _opt(dec[t_idx]) if t_idx is not None else None
    base = dict(
        target_ra_deg=t_ra, target_dec_deg=t_dec, target_sep_arcsec=_opt(t_sep),
        ra_deg=t_ra_star, dec_deg=t_dec_star, match_radius_arcsec=radius, n_catalogue_stars=n_cat,
        requested_filter=requested, declared_filter=decl_str,
        compatible_bands=list(hint.bands) if hint is not None else [],
        fits=summaries, refcat_versions=versions, params=params.to_dict(), params_hash=params.hash(),
        algorithm_version=ALGORITHM_VERSION, mode=mode,
        matched=None if display is None else display.matched,
    )
    if chosen is None:
        # no numbers of a band that was not chosen; the best attempt is in `fits` and `matched`
        return CalibrationResult(
            status="failed", reason=reason or "calibration failed",
            survey=None, band=None, filter=None,
            zeropoint=None, zeropoint_err=None, scatter=None, outlier_fraction=None, npoints=0,
            mag=None, mag_err=None, zp_err=None, calib_err=None, total_err=None,
            is_limit=False, limit_sigma=None, limit_method=None, **base,
        )

    s = chosen.summary
    zp, zp_err, scatter = float(s.zeropoint), float(s.zeropoint_err), float(s.scatter)
    common = dict(
        survey=s.survey, band=s.band, filter=s.filter, zeropoint=zp, zeropoint_err=zp_err,
        scatter=scatter, outlier_fraction=s.outlier_fraction, npoints=s.npoints,
        zp_err=zp_err, calib_err=scatter,
    )
    if t_idx is not None:
        m_err = float(err[t_idx])
        return CalibrationResult(
            status="calibrated", reason=None,
            mag=_opt(mag[t_idx] - zp), mag_err=_opt(m_err),
            total_err=_opt(math.sqrt(m_err**2 + zp_err**2 + scatter**2)),
            is_limit=False, limit_sigma=None, limit_method=None, **common, **base,
        )
    lim = limiting_magnitude(
        mag, err,
        n_sigma=params.limit_sigma,
        min_stars=params.limit_min_stars,
        min_slope_dex_per_mag=params.limit_min_slope_dex_per_mag,
        max_extrapolation_mag=params.limit_max_extrapolation_mag,
    )
    lim_mag = _opt(None if lim.mag is None else lim.mag - zp)
    if lim_mag is None:
        return CalibrationResult(
            status="failed", reason="no catalogue star near the target and no limiting magnitude",
            mag=None, mag_err=None, total_err=None, is_limit=False, limit_sigma=None,
            limit_method=lim.method, **common, **base,
        )
    return CalibrationResult(
        status="limit",
        reason=f"no catalogue star within {_fmt_arcsec(radius)} arcsec of the target",
        mag=lim_mag, mag_err=None, total_err=None, is_limit=True,
        limit_sigma=_opt(params.limit_sigma), limit_method=lim.method, **common, **base,
    )
