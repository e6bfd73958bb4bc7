"""The parameters and the result of a calibration (plain, serialisable).

The parameters, ``CalibrationParams``, are declared in ``shared/calibration_params_model.py`` (the
same class as ``shared.calibration_params.CalibrationParameters``, with which ingest checks
recalibration overrides and an operator sets them) and re-exported here.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from shared.calibration_params_model import CalibrationParams

__all__ = [
    "ALGORITHM_VERSION",
    "BandFitSummary",
    "CalibrationParams",
    "CalibrationResult",
    "MatchedStars",
]

ALGORITHM_VERSION = "2026.12.2"


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
