"""Uploaded FITS images: reading the science frame and standardising its header."""
from shared.fitsimage.header import calibration_refusal, header_wcs, missing_for_calibration, standardise_header
from shared.fitsimage.model import ImageFrame, ImageRefused, ObservationHeader
from shared.fitsimage.reader import read_image

__all__ = ["ImageFrame", "ImageRefused", "ObservationHeader", "calibration_refusal", "header_wcs",
           "missing_for_calibration", "read_image", "standardise_header"]
