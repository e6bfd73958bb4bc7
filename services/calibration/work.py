"""The CPU-bound steps, run in a process pool: read the catalogue, calibrate, draw the plot."""
from __future__ import annotations

from typing import Any

import numpy as np

from services.calibration.science.calibrate import CalibrationParams, CalibrationResult, calibrate
from services.calibration.science.match_radius import fit_offsets
from services.calibration.science.plot import render_calibration_plot
from services.calibration.science.zeropoint import fit_zeropoint
from services.calibration.stars import packed_result
from shared.calibration_params import CalibrationParameters, ParameterSet
from shared.catalogue import StarTable, read_catalogue
from shared.footprint import circle_holds, enclosing_circle
from shared.refcat.model import ReferenceStars


def warm_up() -> None:
    """Every calibration worker's initializer: a small fit with and without a colour term and an offset
    fit, so the compiled kernels are loaded (or, the first time after an install, compiled and cached:
    seconds) before the first upload instead of during it."""
    rng = np.random.default_rng(0)
    diff, err, colour = rng.normal(0.0, 0.05, 50), np.full(50, 0.02), rng.normal(0.5, 0.3, 50)
    fit_zeropoint(diff, err)
    fit_zeropoint(diff, err, colour_mag=colour)
    fit_offsets(rng.normal(0.0, 0.3, 50), rng.normal(0.0, 0.3, 50), 5.0)


def read_stars(data: bytes, filename: str, exptime_s: float | None) -> StarTable:
    return read_catalogue(data, filename=filename, exptime_s=exptime_s)


def field_of(stars: StarTable) -> tuple[float, float, float]:
    """Centre (RA, Dec) and radius in degrees of the circle holding the catalogue's stars."""
    return enclosing_circle(stars.ra_deg, stars.dec_deg)


def read_and_calibrate(data: bytes, filename: str, exptime_s: float | None, references: list[ReferenceStars],
                       *, field: tuple[float, float, float], **calibration: Any) -> tuple[int, dict] | None:
    """Read and calibrate in one trip to the worker, with the references fetched for ``field`` (the circle
    the upload's message names): (the number of stars read, the result), or None when the stars do not
    lie in that circle (the caller then fetches for their own field). ``calibration``: as
    :func:`run_calibration`'s keywords."""
    stars = read_stars(data, filename, exptime_s)
    if not circle_holds(field, field_of(stars)):
        return None
    return len(stars), run_calibration(stars, references, **calibration)


def run_calibration(stars: StarTable, references: list[ReferenceStars], *, target_ra_deg: float,
                    target_dec_deg: float, match_radius_arcsec: float | None, force_filter: str,
                    declared_filter: str | None, param_overrides: dict | None = None,
                    observatory_filters: list[str] | None = None, params: dict | None = None,
                    packed: bool = False) -> dict:
    """Calibrate; ``match_radius_arcsec=None`` lets the science choose the radius from the astrometry.
    ``packed``: the per-star arrays packed for storage (``stars.packed_result``), as the service stores them.

    ``params``: the complete parameter values (``CalibrationParameters.as_dict()`` of the service's
    set); the defaults if None. ``param_overrides`` replace some of them."""
    base = CalibrationParameters.model_validate(params) if params is not None else None
    result = calibrate(stars, references, target_ra_deg=target_ra_deg, target_dec_deg=target_dec_deg,
                       match_radius_arcsec=match_radius_arcsec, force_filter=force_filter,
                       declared_filter=declared_filter, observatory_filters=observatory_filters,
                       params=params_with(param_overrides or {}, base))
    return packed_result(result.to_dict()) if packed else result.to_dict()


def params_with(overrides: dict, base: CalibrationParameters | None = None) -> CalibrationParams:
    """``base`` (the defaults if None) with some parameters replaced; ValueError naming any unknown or
    mistyped one (read by the shared model ``shared.calibration_params``, which ingest also checks
    them with)."""
    return CalibrationParameters.with_overrides(overrides, base)


def failure(reason: str, *, target_ra_deg: float, target_dec_deg: float, params: ParameterSet | None = None) -> dict:
    """A failed result before any fit, recording the parameter set it would have used."""
    result = CalibrationResult.failure(reason, target_ra_deg=target_ra_deg, target_dec_deg=target_dec_deg,
                                       params=None if params is None else params.params).to_dict()
    if params is not None:
        result["params_provenance"] = params.provenance()
    return result


def draw_plot(result: dict, title: str) -> bytes:
    """The stored calibration's plot: the chosen band's panels, then every survey/band tried."""
    return render_calibration_plot(CalibrationResult.from_dict(result), title=title, per_band=True)
