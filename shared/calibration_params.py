"""The operator's calibration parameter set and its provenance.

The parameters themselves (names, types, defaults, meaning, hash, the reading of overrides:
``recalibration.requested.v1`` ``param_overrides``, the admin API's ``params``, ``cpcs recalibrate
--param NAME=VALUE``) are declared once, in ``shared/calibration_params_model.py``, and re-exported
here: ``CalibrationParameters`` (the science's ``CalibrationParams`` is the same class). Ingest
validates an admin's overrides with it before publishing; calibration runs its science with it.

An operator sets the calibration's parameter set (``load_parameter_set``): a TOML or JSON file named by
``CPCS_CALIBRATION_PARAMS`` and/or ``CPCS_CALIBRATION_<NAME>`` variables (they win over the file), read
once at start; an unknown name or a mistyped value stops the service with a one-line error. Every
calibration records the set it used (``ParameterSet.provenance``: version, hash, source).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shared.calibration_params_model import (
    NONE_TEXT,
    VERSION,
    CalibrationParameters,
    CalibrationParams,
    nullable,
)
from shared.settings import SettingsError, parameter_values, split_list

__all__ = [
    "RECALIBRATION_OVERRIDE",
    "VERSION",
    "CalibrationParameters",
    "CalibrationParams",
    "ParameterSet",
    "load_parameter_set",
]

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
        if nullable(name) and isinstance(value, str) and value in NONE_TEXT:
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
