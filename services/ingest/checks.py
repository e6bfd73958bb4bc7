"""Plausibility checks made before anything of an upload is stored: does the file cover the event,
is the time of the observation a time it could have been taken. Each returns the sentence of the
refusal for the observer, or None."""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from shared.catalogue import StarTable
from shared.footprint import catalogue_footprint, describe_angle, separation_deg
from shared.refcat.healpix import separation_deg as separations_deg

#: The margin of a catalogue's footprint when the matching radius is automatic (its upper bound).
AUTO_RADIUS_MARGIN_ARCSEC = 5.0
#: How far the header pointing of an image may be from the event, in units of the field radius the
#: header's pixel scale gives (a binned or resampled frame may keep a scale 20 times too small), plus
#: a degree of pointing error; the astrometry service checks the solved frame exactly.
IMAGE_RADII_ALLOWED = 20.0
IMAGE_POINTING_ERROR_DEG = 1.0
IMAGE_MAX_ALLOWED_DEG = 30.0
#: Observations are refused this long before the event was known (archival data are rarely older).
MAX_YEARS_BEFORE_EVENT = 20.0
#: Clock slack for an observation "in the future".
FUTURE_SLACK_DAYS = 1.0
JD_MINUS_MJD = 2400000.5
JD_LOOKALIKE = 2400000.0  # no MJD of a CCD observation is this large; a JD of any is
UNIX_EPOCH_MJD = 40587.0
#: The MJDs an observation may have at all: 15000 is 1899-12-02 (older plates are not calibrated here),
#: 100000 is 2132-09-01; the event's own time and the clock narrow it further.
MJD_RANGE = (15000.0, 100000.0)
#: The longest exposure accepted, in seconds (a stack of a whole season is still shorter).
MAX_EXPOSURE_S = 1.0e6


def _position(ra_deg: float, dec_deg: float) -> str:
    return f"RA {ra_deg:.4f}, Dec {dec_deg:+.4f}"


def catalogue_outside_event(stars: StarTable, event: Mapping, margin_arcsec: float | None) -> str | None:
    """The refusal of a catalogue whose footprint (plus the matching radius) misses the event."""
    margin = AUTO_RADIUS_MARGIN_ARCSEC if margin_arcsec is None else float(margin_arcsec)
    if len(stars) and nearest_star_arcsec(stars, event["ra_deg"], event["dec_deg"]) <= margin:
        return None  # a star within the margin: the footprint holds it, so the event is within the margin too
    footprint = catalogue_footprint(stars.ra_deg, stars.dec_deg)
    outside = footprint.outside_arcsec(event["ra_deg"], event["dec_deg"])
    if outside <= margin:
        return None
    centre = footprint.centre_distance_deg(event["ra_deg"], event["dec_deg"])
    return (f"the catalogue does not cover the event: its {len(stars)} stars lie within "
            f"{describe_angle(footprint.radius_deg)} of "
            f"{_position(footprint.centre_ra_deg, footprint.centre_dec_deg)}, "
            f"but {event['_id']} is at {_position(event['ra_deg'], event['dec_deg'])}, "
            f"{describe_angle(centre)} from that centre and {describe_angle(outside / 3600.0)} outside the "
            f"field (margin {margin:g} arcsec); upload the catalogue of a frame that contains the event, "
            "or check the EventID")


def nearest_star_arcsec(stars: StarTable, ra_deg: float, dec_deg: float) -> float:
    """The distance from a position to the catalogue's nearest star."""
    return float(separations_deg(ra_deg, dec_deg, stars.ra_deg, stars.dec_deg).min()) * 3600.0


def image_outside_event(record: Mapping, event: Mapping) -> str | None:
    """The refusal of an image whose header pointing is far beyond any frame that could hold the event."""
    ra, dec = record.get("wcs_centre_ra_deg"), record.get("wcs_centre_dec_deg")
    which = "header WCS centre"
    if ra is None or dec is None:
        ra, dec, which = record.get("pointing_ra_deg"), record.get("pointing_dec_deg"), "header pointing"
    if ra is None or dec is None:
        return None  # nothing to judge by: the astrometry service checks the solved frame
    scale, naxis = record.get("pixel_scale_arcsec"), record.get("naxis")
    allowed = IMAGE_MAX_ALLOWED_DEG
    if scale and naxis:
        field_radius_deg = 0.5 * (float(naxis[0]) ** 2 + float(naxis[1]) ** 2) ** 0.5 * float(scale) / 3600.0
        allowed = min(IMAGE_MAX_ALLOWED_DEG, IMAGE_POINTING_ERROR_DEG + IMAGE_RADII_ALLOWED * field_radius_deg)
    distance = separation_deg(float(ra), float(dec), event["ra_deg"], event["dec_deg"])
    if distance <= allowed:
        return None
    return (f"the image does not cover the event: its {which} is {_position(float(ra), float(dec))}, "
            f"but {event['_id']} is at {_position(event['ra_deg'], event['dec_deg'])}, "
            f"{describe_angle(distance)} away (more than the {describe_angle(allowed)} any frame of this size "
            "could reach); upload an image of the event's field, or check the EventID")


def now_mjd() -> float:
    return time.time() / 86400.0 + UNIX_EPOCH_MJD


def _mjd_of(value) -> float | None:
    """The MJD of a stored time (a datetime, or the ISO string some servers give back)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp() / 86400.0 + UNIX_EPOCH_MJD


def event_known_mjd(event: Mapping) -> float | None:
    """When the event was first known: the alert's own time if it has one, else when it was added."""
    for key in ("discovered_mjd", "first_mjd"):
        if isinstance(event.get(key), (int, float)):
            return float(event[key])
    return _mjd_of(event.get("published"))


def implausible_mjd(mjd: float, event: Mapping, *, now: float | None = None) -> str | None:
    """The refusal of an MJD no observation of this event can have, with the conversion when it is a JD."""
    now = now_mjd() if now is None else now
    low, high = MJD_RANGE
    if math.isfinite(mjd) and JD_LOOKALIKE + low <= mjd <= JD_LOOKALIKE + high:
        return (f"MJD {mjd:.5f} looks like a Julian Date, not a Modified Julian Date: "
                f"MJD = JD - 2400000.5 = {mjd - JD_MINUS_MJD:.5f}; send that (the MJD of mid-exposure)")
    if not (math.isfinite(mjd) and low <= mjd <= high):
        return (f"MJD {mjd:.6g} is not a time of an observation (this server takes MJD {low:g} to {high:g}): "
                f"send the MJD of mid-exposure (e.g. {now:.1f} is now)")
    if mjd > now + FUTURE_SLACK_DAYS:
        return (f"MJD {mjd:.5f} is {mjd - now:.1f} days in the future (now is MJD {now:.3f}); "
                "send the MJD of mid-exposure")
    known = event_known_mjd(event)
    if known is not None and mjd < known - MAX_YEARS_BEFORE_EVENT * 365.25:
        return (f"MJD {mjd:.5f} is {(known - mjd) / 365.25:.0f} years before event {event['_id']} was known "
                f"(MJD {known:.1f}); check the MJD (mid-exposure, MJD = JD - 2400000.5)")
    return None


def implausible_exposure(exptime_s: float | None) -> str | None:
    """The refusal of an exposure time no frame can have (None: not given, the header's is used)."""
    if exptime_s is None:
        return None
    if not (math.isfinite(exptime_s) and 0.0 < exptime_s <= MAX_EXPOSURE_S):
        return (f"expTime {exptime_s:.6g} is not an exposure time: send the exposure in seconds "
                f"(more than 0, at most {MAX_EXPOSURE_S:g})")
    return None


def header_mid_mjd(header: Mapping, exptime_s: float | None) -> tuple[float | None, str]:
    """The mid-exposure MJD of a catalogue from its header, and where it came from.

    A mid-exposure keyword (MJD-MID, MJD-AVG) is taken as it is; MJD-OBS is the start of the exposure
    (the FITS convention) and is moved by half the exposure time when that is known.
    """
    for key in ("MJD-MID", "MJD-AVG", "MJDMID"):
        value = _float(header.get(key))
        if value is not None:
            return value, f"header {key} (mid-exposure)"
    start = _float(header.get("MJD-OBS"))
    if start is None:
        return None, ""
    if exptime_s:
        return start + float(exptime_s) / 2.0 / 86400.0, "header MJD-OBS (start) + exposure/2"
    return start, "header MJD-OBS (start; exposure time unknown)"


def _float(value) -> float | None:
    try:
        out = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return out if out is not None and out == out else None
