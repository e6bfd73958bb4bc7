"""The photometry service's settings: the shared broker and database parts and the measurement's
parameters (``PhotometryParams``: a ``CPCS_PHOTOMETRY_PARAMS`` file, ``CPCS_PHOTOMETRY_<NAME>``)."""
from __future__ import annotations

from pydantic import Field

from services.photometry.science.model import PhotometryParams
from shared.settings import LoadedParameters, ServiceSettings, load_parameters


def load_params() -> LoadedParameters:
    return load_parameters(PhotometryParams, "photometry")


class PhotometrySettings(ServiceSettings):
    """``params``: the measurement's tunables and their source; recorded with each image's metadata
    (``image_metadata.params``)."""

    params: LoadedParameters = Field(default_factory=load_params)
