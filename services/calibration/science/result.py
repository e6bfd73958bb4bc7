"""The parameters and the result of a calibration (plain, serialisable dataclasses)."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "ALGORITHM_VERSION",
    "BandFitSummary",
    "CalibrationParams",
    "CalibrationResult",
    "MatchedStars",
]

ALGORITHM_VERSION = "2026.12.1"


def opt_float(x: Any) -> float | None:
    """A finite Python float, or None."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class CalibrationParams:
    """Every tunable of the calibration (CPCS version 2 gate values by default, except the scatter).

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
        Gate: the intrinsic scatter must be below this. 0.5 mag, not the original's 1.5: stars that
        scatter by more than half a magnitude do not follow one zero point (a wrong band, blends, a
        broken catalogue), and such fits made most of the wrong limits in ``bench/accuracy.py``.
    scatter_floor_mag : float
        Floor of the reported scatter.
    scatter_prior_mag : float or None
        Soft floor of the intrinsic scatter: a one-sided log-normal prior below this value (see
        ``fit_zeropoint``); None for plain maximum likelihood.
    scatter_prior_width : float
        Width of the soft floor in ``ln s`` (1.0: one sigma at 0.37 times the value).
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
    default_match_radius_arcsec : float
        Radius when none is given and the astrometric offsets cannot be fitted.
    first_match_radius_arcsec : float
        Radius of the generous first match for the automatic radius.
    match_radius_k_sigma : float
        Automatic radius = systematic offset + this many sigma of the offsets.
    min_match_radius_arcsec, max_match_radius_arcsec : float
        Bounds of the automatic radius.
    match_radius_min_pairs : int
        Fewest first-match pairs for the automatic radius.
    astrometric_surveys : tuple of str
        The astrometric standard: the first of these present in the field gives the target's
        radius and the radius of surveys whose own offsets cannot be fitted. Without one, the
        target's radius is the calibrating survey's own (never another survey's, whatever its size).
    use_colour_terms : bool
        Try a colour term where the survey gives the band's natural colour.
    colour_criterion : str
        ``"aic"`` or ``"bic"``: the colour term is kept only when it lowers this criterion. AIC
        (the default) aims at the best prediction of a new star's magnitude, which is what the
        target needs; BIC keeps fewer colour terms and left colour residuals unaccounted for in
        ``bench/accuracy.py``.
    colour_min_stars : int
        Fewest stars with a colour for the colour term to be tried.
    max_colour_slope : float
        Bound of the colour slope in magnitudes per magnitude. A slope at the bound is not a
        colour term (a wrong band or a degenerate sample): the band is calibrated without one and
        ``colour_note`` says so.
    colour_slope_bound_sigma : float
        A fitted slope counts as at its bound also when the bound is within this many standard
        errors of it (so that nearly identical catalogues do not fall on both sides of the bound).
    band_identification_min_delta_lnl : float
        Least log-likelihood difference for one band to beat another in the request-independent
        order of bands (see ``_select.rank_fits``).
    infer_undeclared_filter : bool
        With no declared filter, infer it from the data (``_select.identify_filter``) and keep the
        choice compatible with it; when the data cannot tell, fail and ask for the filter.
        False: any band may be chosen (the original's behaviour, without its smallest-scatter rule).
    band_identification_min_stars : int
        Fewest stars of the inferred band.
    """

    max_ref_err_mag: float = 0.3
    max_inst_mag: float = 50.0
    max_inst_err_mag: float = 1.0
    max_outlier_fraction: float = 0.5
    min_npoints: int = 5
    max_scatter_mag: float = 0.5
    scatter_floor_mag: float = 1e-4
    scatter_prior_mag: float | None = 0.02
    scatter_prior_width: float = 1.0
    outlier_scale_factor: float = 5.0
    outlier_scale_min_mag: float = 0.05
    limit_sigma: float = 5.0
    limit_min_stars: int = 10
    limit_min_slope_dex_per_mag: float = 0.02
    limit_max_extrapolation_mag: float = 3.0
    use_declared_filter: bool = True
    exclude_target_from_fit: bool = True
    default_match_radius_arcsec: float = 2.0
    first_match_radius_arcsec: float = 5.0
    match_radius_k_sigma: float = 3.0
    min_match_radius_arcsec: float = 0.5
    max_match_radius_arcsec: float = 5.0
    match_radius_min_pairs: int = 8
    astrometric_surveys: tuple[str, ...] = ("GaiaDR3", "GaiaDR2", "GaiaEDR3", "Gaia")
    use_colour_terms: bool = True
    colour_criterion: str = "aic"
    colour_min_stars: int = 10
    max_colour_slope: float = 1.0
    colour_slope_bound_sigma: float = 3.0
    band_identification_min_delta_lnl: float = 3.0
    infer_undeclared_filter: bool = True
    band_identification_min_stars: int = 10

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (tuples as lists)."""
        out: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationParams:
        """Parameters from :meth:`to_dict` output (e.g. a stored calibration, for a recalibration);
        keys this version does not know are refused, missing ones take today's defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown calibration parameters: {', '.join(unknown)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def canonical_json(self) -> str:
        """Sorted-key, compact JSON of the parameters."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def hash(self) -> str:
        """First 16 hex digits of the SHA-256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class BandFitSummary:
    """The zero-point fit of one survey/band and whether it passed the gates.

    ``zeropoint`` applies at ``colour_pivot_mag`` when a colour term was kept
    (``colour_slope`` not None); ``constant_*`` describe the colour-free fit, which also serves to
    identify the observed band. ``rank`` is the band's place in the request-independent order of
    passing fits (1 = preferred; None when it failed).
    """

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
    colour: str | None = None
    colour_slope: float | None = None
    colour_slope_err: float | None = None
    colour_pivot_mag: float | None = None
    zeropoint_slope_cov: float | None = None
    colour_delta_ic: float | None = None
    colour_note: str | None = None
    constant_zeropoint: float | None = None
    constant_scatter: float | None = None
    match_radius_arcsec: float | None = None
    rank: int | None = None

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
    """The matched stars of one survey/band, for plots and provenance (lists, aligned).

    ``cat_index`` are rows of the uploaded catalogue as read (before cleaning), ``ref_index`` rows
    of the survey's reference stars. ``err_mag`` is the combined error (instrumental and reference
    in quadrature), ``colour`` the star's reference colour (None where missing or not used); any
    value that is not finite is stored as None.
    """

    survey: str
    band: str
    ref_mag: list[float | None]
    inst_mag: list[float | None]
    err_mag: list[float | None]
    outlier: list[bool]
    cat_index: list[int] = field(default_factory=list)
    ref_index: list[int] = field(default_factory=list)
    ref_err: list[float | None] = field(default_factory=list)
    inst_err: list[float | None] = field(default_factory=list)
    colour: list[float | None] = field(default_factory=list)
    sep_arcsec: list[float | None] = field(default_factory=list)
    ra_deg: list[float | None] = field(default_factory=list)
    dec_deg: list[float | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), list) else v) for f in fields(self)}

    def lean(self) -> MatchedStars:
        """What a plot of this band needs (magnitudes, errors, outliers, colours, catalogue rows);
        positions, separations and reference rows are left out (they are in the chosen band's
        ``matched`` and follow from ``cat_index``)."""
        return MatchedStars(self.survey, self.band, self.ref_mag, self.inst_mag, self.err_mag, self.outlier,
                            cat_index=self.cat_index, colour=self.colour)


@dataclass(frozen=True)
class CalibrationResult:
    """The outcome of :func:`~services.calibration.science.calibrate.calibrate`; floats finite or None.

    ``status`` is ``"calibrated"`` (target measured), ``"limit"`` (target not detected: ``mag`` is an
    upper limit, ``mag_err`` None; ``limit_err`` its statistical uncertainty) or ``"failed"``
    (``reason`` says why).

    Error budget of a measured magnitude (all 1 sigma, magnitudes)::

        total_err^2 = mag_err^2 + t^2 (zp_err^2 + calib_err^2) + colour_err^2

    ``mag_err`` the instrumental error from the catalogue; ``zp_err`` the statistical uncertainty of
    the zero point at the target's colour (from the likelihood; includes the colour slope's
    uncertainty); ``calib_err`` the scatter, i.e. the star-to-star calibration error beyond the quoted
    errors (the CPCS meaning); ``colour_err = |k| sigma(target colour)`` when a colour term is used
    (None otherwise); ``t = small_sample_factor`` (1 for many stars, up to 1.73 when a handful of
    stars set the zero point: ``n_effective``), because ZP and scatter estimated from few stars
    spread a new star's magnitude like a Student-t. A limit's ``limit_err`` combines the error of
    the error-magnitude relation with the same calibration terms.

    ``zeropoint`` is the zero point at the target's colour, so that ``mag = m_inst - zeropoint`` as
    in CPCS; ``colour_pivot_mag`` and ``colour_slope`` give it at any colour. ``ra_deg``/``dec_deg``
    are the catalogue position of the star taken as the target. ``colour_note`` is the chosen
    band's colour-term note: kept, rejected by the information criterion, or dropped (a slope at
    its bound: calibrated without a colour term), or why none was tried.
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
    limit_err: float | None = None
    colour_err: float | None = None
    colour: str | None = None
    colour_slope: float | None = None
    colour_slope_err: float | None = None
    colour_pivot_mag: float | None = None
    colour_note: str | None = None
    target_colour: float | None = None
    target_colour_err: float | None = None
    target_colour_source: str | None = None
    match_radius_method: str = "user"
    match_radius_detail: dict[str, Any] = field(default_factory=dict)
    survey_match_radius_arcsec: dict[str, float] = field(default_factory=dict)
    declared_filter_source: str | None = None
    inferred_filter: str | None = None
    small_sample_factor: float | None = None
    n_effective: float | None = None
    refcat_version: str | None = None
    band_matches: list[MatchedStars] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain Python types (JSON-serialisable, no NaN)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "fits":
                value = [s.to_dict() for s in value]
            elif f.name == "band_matches":
                value = [m.to_dict() for m in value]
            elif f.name == "matched":
                value = None if value is None else value.to_dict()
            elif isinstance(value, (list, dict)):
                value = json.loads(json.dumps(value))
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationResult:
        """Rebuild a result from :meth:`to_dict` output (also older documents without new fields)."""
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls) if f.name in data}
        values["fits"] = [BandFitSummary(**{k: v for k, v in s.items() if k != "filter"})
                          for s in data.get("fits") or []]
        values["matched"] = MatchedStars(**data["matched"]) if data.get("matched") else None
        values["band_matches"] = [MatchedStars(**m) for m in data.get("band_matches") or []]
        return cls(**values)

    @classmethod
    def failure(cls, reason: str, *, target_ra_deg: float, target_dec_deg: float,
                params: CalibrationParams | None = None) -> CalibrationResult:
        """A failed result before any fit (e.g. an unreadable catalogue), for records and plots."""
        params = params or CalibrationParams()
        return cls(status="failed", reason=reason, survey=None, band=None, filter=None, mode="AUTO",
                   zeropoint=None, zeropoint_err=None, scatter=None, outlier_fraction=None, npoints=0,
                   mag=None, mag_err=None, zp_err=None, calib_err=None, total_err=None, is_limit=False,
                   limit_sigma=None, limit_method=None, target_ra_deg=target_ra_deg,
                   target_dec_deg=target_dec_deg, target_sep_arcsec=None, ra_deg=None, dec_deg=None,
                   match_radius_arcsec=0.0, n_catalogue_stars=0, requested_filter="no", declared_filter=None,
                   compatible_bands=[], fits=[], matched=None, refcat_versions={}, params=params.to_dict(),
                   params_hash=params.hash(), match_radius_method="default")

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
