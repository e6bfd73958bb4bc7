"""The astrometry service's settings: the shared broker and database parts and the solver's parameters
(``AstrometryParams``: a ``CPCS_ASTROMETRY_PARAMS`` file, ``CPCS_ASTROMETRY_<NAME>`` variables)."""
from __future__ import annotations

from pydantic import Field

from services.astrometry.science import AstrometryParams
from shared.settings import LoadedParameters, ServiceSettings, load_parameters


def load_params() -> LoadedParameters:
    return load_parameters(AstrometryParams, "astrometry")


class AstrometrySettings(ServiceSettings):
    """``params``: the solver's tunables and their source; every solve records the values in
    ``image.solved.v1`` (``astrometry.params``)."""

    params: LoadedParameters = Field(default_factory=load_params)
