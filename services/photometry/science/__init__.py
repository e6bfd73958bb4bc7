"""Photometry science: all stars and forced photometry at the event, from a frame with a WCS (pure)."""
from services.photometry.science.measurement import measure
from services.photometry.science.model import FLAGS, ForcedPhotometry, PhotometryParams, PhotometryResult

__all__ = ["FLAGS", "ForcedPhotometry", "PhotometryParams", "PhotometryResult", "measure"]
