"""The calibration parameters: the one declaration of every tunable of the calibration (name, type,
default, meaning), their plain values and hash, and the reading of overrides.

Pure (pydantic only, no I/O): the science uses it as ``CalibrationParams``
(``services/calibration/science/result.py`` re-exports it), ingest and the calibration service as
``CalibrationParameters`` (``shared/calibration_params.py`` re-exports it with the operator's parameter
set and its provenance). Both names are the same class. ``VERSION`` changes when a parameter is
removed, renamed or changes meaning; adding one with a default keeps it.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["NONE_TEXT", "VERSION", "CalibrationParameters", "CalibrationParams", "nullable"]

VERSION = "1"
NONE_TEXT = ("", "none", "None")
"""Texts that clear a parameter that may be empty (``scatter_prior_mag``)."""
_TRUE = {"1", "true", "yes", "on"}


class CalibrationParameters(BaseModel):
    """Every tunable of the calibration (CPCS version 2 gate values by default, except the scatter).

    Frozen and validated: an unknown name or a value of the wrong type is refused (``ValueError``).

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
    colour_criterion : {"aic", "bic"}
        The colour term is kept only when it lowers this criterion. AIC (the default) aims at the
        best prediction of a new star's magnitude, which is what the target needs; BIC keeps fewer
        colour terms and left colour residuals unaccounted for in ``bench/accuracy.py``.
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

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: ClassVar[str] = VERSION

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
    colour_criterion: Literal["aic", "bic"] = "aic"
    colour_min_stars: int = 10
    max_colour_slope: float = 1.0
    colour_slope_bound_sigma: float = 3.0
    band_identification_min_delta_lnl: float = 3.0
    infer_undeclared_filter: bool = True
    band_identification_min_stars: int = 10

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Any],
                       base: CalibrationParameters | None = None) -> CalibrationParameters:
        """``base`` (the defaults if None) with some replaced; ValueError naming any unknown or
        mistyped parameter.

        Values may be text (from a command line): a list parameter takes comma-separated names, a
        flag takes 1/true/yes/on (anything else is false), ``none`` or an empty text clears a
        parameter that may be empty."""
        known = cls.model_fields
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown calibration parameter(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        defaults = base if base is not None else cls()
        values = {name: _coerced(name, getattr(defaults, name), value, nullable=nullable(name))
                  for name, value in overrides.items()}
        try:
            return cls.model_validate(defaults.model_dump() | values)
        except ValidationError as exc:
            raise _refusal(exc, overrides) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationParameters:
        """Parameters from :meth:`to_dict` output (e.g. a stored calibration, for a recalibration);
        keys this version does not know are refused, missing ones take today's defaults."""
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"unknown calibration parameters: {', '.join(unknown)}")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise _refusal(exc, data) from None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists for the tuples), as the calibration stores them."""
        return self.model_dump(mode="json")

    def to_dict(self) -> dict[str, Any]:
        """The science's name of :meth:`as_dict`."""
        return self.as_dict()

    def canonical_json(self) -> str:
        """Sorted-key, compact JSON of the values."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    def hash(self) -> str:
        """First 16 hex digits of the SHA-256 of :meth:`canonical_json`: the ``params_hash`` of every
        calibration."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()[:16]


CalibrationParams = CalibrationParameters
"""The science's name of the calibration parameters."""


def nullable(name: str) -> bool:
    """Whether the parameter ``name`` may be None (cleared)."""
    return type(None) in get_args(CalibrationParameters.model_fields[name].annotation)


def _refusal(exc: ValidationError, given: Mapping[str, Any]) -> ValueError:
    """The first refused value, with the parameter named."""
    error = exc.errors()[0]
    name = ".".join(map(str, error["loc"]))
    return ValueError(f"calibration parameter {name}: {error['msg']}, got {given.get(name)!r}")


def _coerced(name: str, default: Any, value: Any, *, nullable: bool) -> Any:
    if isinstance(default, tuple):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(","))
        if not isinstance(value, list | tuple):
            raise ValueError(f"calibration parameter {name} must be a list of names, got {value!r}")
        return tuple(value)
    if nullable and (value is None or isinstance(value, str) and value in NONE_TEXT):
        return None
    if value is None:
        return None  # refused by the model, naming the parameter
    kind = type(default)
    if kind is bool:
        return value if isinstance(value, bool) else str(value).lower() in _TRUE
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"calibration parameter {name} must be a {kind.__name__}, got {value!r}") from exc
