"""Photometry's CPU-bound step, run in a process pool: measure every star and the event position."""
from __future__ import annotations

import io
import math
import time

from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from services.photometry.products import image_products
from services.photometry.science import measure
from services.photometry.science.model import DEFAULT_PARAMS, PhotometryParams
from shared.contracts import ObservationRecord
from shared.fitsimage import read_image, standardise_header
from shared.imaging import observation_header, observation_record


def catalogue_bytes(stars) -> bytes:
    """A FITS table with SExtractor column names, so calibration reads it like an uploaded catalogue."""
    table = Table({"ALPHA_J2000": stars.ra_deg, "DELTA_J2000": stars.dec_deg, "MAG_PSF": stars.mag,
                   "MAGERR_PSF": stars.mag_err})
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(table)]).writeto(buffer)
    return buffer.getvalue()


def run_measure(data: bytes, extension, record: ObservationRecord | None, upload: dict, *, wcs_header: dict,
                target_ra_deg: float, target_dec_deg: float, params: PhotometryParams = DEFAULT_PARAMS) -> dict:
    """Measure the frame (read once here) with the message's header record.

    Without a record (an older astrometry), the header is standardised here without the observatory
    record; the result's ``observation`` is then that record (else None).
    """
    frame = read_image(data, extension=extension)
    standardised = None
    if record is None:
        standardised = observation_record(standardise_header(frame.header, upload=upload))
    result = measure(frame, WCS(wcs_header), target_ra_deg=target_ra_deg, target_dec_deg=target_dec_deg,
                     record=observation_header(record or standardised), params=params)
    if result.status != "measured" or result.stars is None:
        return {"status": "failed", "reason": result.reason or "no stars could be measured on the image"}
    plain = result.to_dict()
    return {"status": "measured", "catalogue": catalogue_bytes(result.stars), "n_stars": len(result.stars),
            "target": plain.get("target"), "metadata": _finite(result.metadata), "observation": standardised,
            **_products(frame.data, wcs_header, result, record or standardised, upload)}


def _products(data, wcs_header: dict, result, record: ObservationRecord | None, upload: dict) -> dict:
    """The downloadable products from what the measurement holds (no second read of the frame)."""
    t0 = time.perf_counter()
    target = result.target
    observed = {"EXPTIME": result.metadata.get("exptime_s"), "FILTER": result.metadata.get("filter"),
                "MJD-OBS": record.mjd_start if record else None, "OBJECT": record.object_name if record else None,
                "TELESCOP": record.telescope if record else None}
    products = image_products(
        data, wcs_header, result.sources, target_x_px=target.x_px if target else None,
        target_y_px=target.y_px if target else None, in_frame=bool(target and target.in_frame), observed=observed,
        background=result.metadata.get("background_adu"), noise=result.metadata.get("background_rms_adu"))
    return {"products": products, "products_s": time.perf_counter() - t0}


def _finite(metadata: dict) -> dict:
    out = {}
    for key, value in metadata.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if value is None or isinstance(value, (int, float, str, bool)):
            out[key] = value
    return out
