"""The calibration parameters as a typed model: their names, types and defaults, and the reading of
overrides (``recalibration.requested.v1`` ``param_overrides``, the admin API's ``params``, ``cpcs
recalibrate --param NAME=VALUE``).

Ingest validates an admin's overrides with it before publishing; calibration builds its science
parameters (``services/calibration/science/result.py`` ``CalibrationParams``, same fields and
defaults, checked by ``tests/unit/test_calibration_params.py``) from it. ``VERSION`` changes when a
parameter is removed, renamed or changes meaning; adding one with a default keeps it.

An operator sets the calibration's parameter set (``load_parameter_set``): a TOML or JSON file named by
``CPCS_CALIBRATION_PARAMS`` and/or ``CPCS_CALIBRATION_<NAME>`` variables (they win over the file), read
once at start; an unknown name or a mistyped value stops the service with a one-line error. Every
calibration records the set it used (``ParameterSet.provenance``: version, hash, source).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.settings import SettingsError, parameter_values, split_list

VERSION = "1"
_TRUE = {"1", "true", "yes", "on"}
_NONE = (None, "", "none", "None")


class CalibrationParameters(BaseModel):
    """Every tunable of the calibration; the meaning of each is documented on the science's
    ``CalibrationParams``."""

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
        values = {name: _coerced(name, getattr(defaults, name), value, nullable=_nullable(name))
                  for name, value in overrides.items()}
        try:
            return cls.model_validate(defaults.model_dump() | values)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = ".".join(map(str, error["loc"]))
            raise ValueError(f"calibration parameter {name}: {error['msg']}, got {overrides.get(name)!r}") from None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists for the tuples), as the calibration stores them."""
        return self.model_dump(mode="json")

    def hash(self) -> str:
        """First 16 hex digits of the SHA-256 of the sorted, compact JSON of the values: the science's
        ``CalibrationParams.hash()``, the ``params_hash`` of every calibration."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


RECALIBRATION_OVERRIDE = "recalibration override"


@dataclass(frozen=True)
class ParameterSet:
    """The calibration parameters a service runs with and where they came from.

    ``source``: ``"defaults"``, ``"file /path"``, ``"env CPCS_CALIBRATION_..."`` (or a file and
    variables), or ``"recalibration override"`` (then ``base_source`` is the set the overrides were
    applied to and ``overrides`` their names)."""

    params: CalibrationParameters = field(default_factory=CalibrationParameters)
    source: str = "defaults"
    base_source: str | None = None
    overrides: tuple[str, ...] = ()

    def provenance(self) -> dict[str, Any]:
        """What a stored calibration records: version, hash and source (and the overrides' base)."""
        out: dict[str, Any] = {"version": VERSION, "hash": self.params.hash(), "source": self.source}
        if self.overrides:
            out |= {"base_source": self.base_source, "overrides": list(self.overrides)}
        return out

    def overridden(self, overrides: Mapping[str, Any] | None) -> ParameterSet:
        """This set with a recalibration's overrides applied (itself when there are none)."""
        if not overrides:
            return self
        return ParameterSet(CalibrationParameters.with_overrides(overrides, base=self.params),
                            source=RECALIBRATION_OVERRIDE, base_source=self.source,
                            overrides=tuple(sorted(overrides)))


def load_parameter_set(environ: Mapping[str, str] | None = None) -> ParameterSet:
    """The operator's calibration parameters: ``CPCS_CALIBRATION_PARAMS`` (a ``.toml`` or ``.json``
    file), then ``CPCS_CALIBRATION_<NAME>`` variables; the defaults where neither says.

    Stricter than :meth:`CalibrationParameters.with_overrides`: a flag must read as one (true/false,
    yes/no, on/off, 1/0). ``SettingsError`` (one line) for an unknown name, a mistyped value or a file
    written for another ``version``."""
    values, source = parameter_values("calibration", CalibrationParameters.model_fields, environ)
    version = values.pop("version", VERSION)
    if str(version) != VERSION:
        raise SettingsError(f"calibration parameters ({source}) are for version {version}; this server's "
                            f"parameter set is version {VERSION}")
    defaults = CalibrationParameters()
    typed = {}
    for name, value in values.items():
        value = split_list(getattr(defaults, name), value)
        if _nullable(name) and isinstance(value, str) and value in _NONE:
            value = None
        typed[name] = value
    try:
        params = CalibrationParameters.model_validate(defaults.model_dump() | typed)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "?"
        raise SettingsError(f"calibration parameter {name} ({source}): {error['msg']}, "
                            f"got {values.get(name)!r}") from None
    return ParameterSet(params, source=source)


def _nullable(name: str) -> bool:
    return type(None) in get_args(CalibrationParameters.model_fields[name].annotation)


def _coerced(name: str, default: Any, value: Any, *, nullable: bool) -> Any:
    if isinstance(default, tuple):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(","))
        if not isinstance(value, list | tuple):
            raise ValueError(f"calibration parameter {name} must be a list of names, got {value!r}")
        return tuple(value)
    if nullable and (value is None or isinstance(value, str) and value in _NONE):
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
