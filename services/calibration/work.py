"""The CPU-bound steps, run in a process pool: read the catalogue, calibrate, draw the plot."""
from __future__ import annotations

import dataclasses

import numpy as np

from shared.catalogue import StarTable, read_catalogue
from shared.refcat.model import ReferenceStars
from services.calibration.science.calibrate import CalibrationParams, calibrate
from services.calibration.science.plot import render_calibration_plot


def read_stars(data: bytes, filename: str, exptime_s: float | None, declared_filter: str | None) -> StarTable:
    stars = read_catalogue(data, filename=filename, exptime_s=exptime_s)
    if declared_filter:
        stars = dataclasses.replace(stars, header={**stars.header, "FILTER": declared_filter})
    return stars


def field_of(stars: StarTable) -> tuple[float, float, float]:
    """Centre (RA, Dec) and radius in degrees of the circle holding the catalogue's stars."""
    ra, dec = np.radians(stars.ra_deg), np.radians(stars.dec_deg)
    xyz = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]).mean(axis=1)
    xyz /= np.linalg.norm(xyz)
    centre_ra = float(np.degrees(np.arctan2(xyz[1], xyz[0])) % 360.0)
    centre_dec = float(np.degrees(np.arcsin(np.clip(xyz[2], -1, 1))))
    cos_sep = (np.cos(dec) * np.cos(ra) * xyz[0] + np.cos(dec) * np.sin(ra) * xyz[1] + np.sin(dec) * xyz[2])
    radius = float(np.degrees(np.arccos(np.clip(cos_sep.min(), -1, 1))))
    return centre_ra, centre_dec, radius


def run_calibration(stars: StarTable, references: list[ReferenceStars], *, target_ra_deg: float,
                    target_dec_deg: float, match_radius_arcsec: float | None, force_filter: str) -> dict:
    params = CalibrationParams()
    result = calibrate(stars, references, target_ra_deg=target_ra_deg, target_dec_deg=target_dec_deg,
                       match_radius_arcsec=match_radius_arcsec or params.match_radius_arcsec,
                       force_filter=force_filter, params=params)
    return result.to_dict()


def draw_plot(result: dict, title: str) -> bytes:
    return render_calibration_plot(result, title=title)
