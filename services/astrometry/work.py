"""Astrometry's CPU-bound steps, run in a process pool: read the frame, standardise, solve."""
from __future__ import annotations

from shared.fitsimage import read_image, standardise_header
from services.astrometry.science import reference_cone, solve


def inspect(data: bytes, extension, observatory: dict, upload: dict, hint_ra_deg: float,
            hint_dec_deg: float) -> dict:
    """The header record and the reference cone the solver needs around the hint."""
    frame = read_image(data, extension=extension)
    record = standardise_header(frame.header, observatory=observatory, upload=upload)
    ra, dec, radius = reference_cone(frame.shape, pixel_scale_arcsec=record.pixel_scale_arcsec,
                                     hint_ra_deg=hint_ra_deg, hint_dec_deg=hint_dec_deg)
    return {"record": record.to_dict(), "cone": (ra, dec, radius)}


def run_solve(data: bytes, extension, observatory: dict, upload: dict, *, hint_ra_deg: float, hint_dec_deg: float,
              ref_ra_deg, ref_dec_deg, ref_mag) -> dict:
    frame = read_image(data, extension=extension)
    record = standardise_header(frame.header, observatory=observatory, upload=upload)
    result = solve(frame, references_ra_deg=ref_ra_deg, references_dec_deg=ref_dec_deg, references_mag=ref_mag,
                   hint_ra_deg=hint_ra_deg, hint_dec_deg=hint_dec_deg, record=record)
    return result.to_dict()
