"""Telling an uploaded FITS image from a catalogue, and checking its header before anything is stored."""
from __future__ import annotations

from dataclasses import dataclass

from shared.fitsimage import ImageRefused, calibration_refusal, read_image, standardise_header

NOT_AN_IMAGE = ("the file is not a FITS image", "the FITS file holds no image")


@dataclass(frozen=True)
class ImageIntake:
    """What ingest learns of an uploaded image: its standardised header record (a plain dict)."""

    record: dict
    n_pixels: int

    @property
    def header(self) -> dict:  # the catalogue-like view uploads use for MJD and FILTER
        return {"MJD-OBS": self.record.get("mjd_mid"), "FILTER": self.record.get("filter")}


def upload_values(mjd: float | None, exptime_s: float | None, declared_filter: str | None) -> dict:
    return {k: v for k, v in (("mjd", mjd), ("exptime_s", exptime_s), ("filter", declared_filter)) if v is not None}


def inspect_image(data: bytes, *, observatory: dict, upload: dict, extension=None) -> ImageIntake | None:
    """The image's record, None if the bytes are no FITS image; ImageRefused with the reason if unusable."""
    try:
        frame = read_image(data, extension=extension)
    except ImageRefused as exc:
        if str(exc).startswith(NOT_AN_IMAGE):
            return None
        raise
    record = standardise_header(frame.header, observatory=observatory, upload=upload)
    refusal = calibration_refusal(record)
    if refusal:
        raise ImageRefused(refusal)
    ny, nx = frame.shape
    return ImageIntake(record=record.to_dict(), n_pixels=nx * ny)
