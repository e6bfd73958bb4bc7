"""The calibration service's settings: the shared broker and database parts, the reference margin, the
online reference archives (``CPCS_REFCAT_*``) and the calibration parameter set."""
from __future__ import annotations

from pydantic import Field

from shared.calibration_params import ParameterSet, load_parameter_set
from shared.refcat.archives import OnlineSettings
from shared.settings import ServiceSettings


class CalibrationSettings(ServiceSettings):
    """``CPCS_REFCAT_MARGIN_ARCMIN``: how far beyond the catalogue's stars references are read.
    ``online_refcat``: which archives may fill the store (``CPCS_REFCAT_ONLINE``, ...). ``params``: the
    calibration parameter set (``CPCS_CALIBRATION_PARAMS`` file, ``CPCS_CALIBRATION_<NAME>``), with
    its source."""

    refcat_margin_arcmin: float = 2.0
    online_refcat: OnlineSettings = Field(default_factory=OnlineSettings)
    params: ParameterSet = Field(default_factory=load_parameter_set)
