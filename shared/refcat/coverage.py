"""Where a survey has stars: Multi-Order Coverage maps (IVOA MOC, through mocpy). Pure, no I/O.

A survey's coverage is the union of

* the store pixels (HEALPix order :data:`shared.refcat.healpix.ORDER`, ~13.7') that hold at least one
  of its imported stars, built while importing, and
* the sky tiles (same order) fetched from an online archive and cached in the store.

It is kept in the survey record as the MOC's ASCII serialisation (``"8/12-19 40"``), so it travels with
the survey through any MongoDB-protocol server. A field is tested against it before any block is read:
a field with no overlap is skipped without a query, and a field that overlaps only partly is reported
with the covered fraction. The field itself is a cone MOC at order :data:`FIELD_ORDER` (3.4'), fine
enough that the fraction means something for a 10' field.

An online provider also has a *footprint* (where the archive has data at all): all sky, or a band of
declination (Pan-STARRS north of -30 deg, SkyMapper south of +2 deg), built with :func:`dec_band`.
"""
from __future__ import annotations

from functools import lru_cache

import astropy.units as u
import numpy as np
from mocpy import MOC

from .healpix import ORDER

#: Resolution of the MOC of a field when testing it against a survey.
FIELD_ORDER = 10


def empty() -> MOC:
    return MOC.new_empty(ORDER)


def from_pixels(pixels, order: int = ORDER) -> MOC:
    """The MOC of a set of nested HEALPix pixels at ``order``."""
    pix = np.unique(np.asarray(pixels, dtype=np.uint64))
    if pix.size == 0:
        return MOC.new_empty(order)
    return MOC.from_healpix_cells(pix, np.full(pix.size, order, dtype=np.uint8), order)


def to_text(moc: MOC) -> str:
    return moc.serialize(format="str") if not moc.empty() else ""


@lru_cache(maxsize=256)
def from_text(text: str) -> MOC:
    """The MOC of a stored ASCII serialisation ("" is empty). Cached: records repeat on every query."""
    if not text or not text.strip():
        return empty()
    return MOC.from_str(text)


def cone(ra_deg: float, dec_deg: float, radius_deg: float) -> MOC:
    return MOC.from_cone(lon=float(ra_deg) * u.deg, lat=float(dec_deg) * u.deg, radius=float(radius_deg) * u.deg,
                         max_depth=FIELD_ORDER)


def all_sky() -> MOC:
    return MOC.from_str("0/0-11")


def dec_band(dec_min: float = -90.0, dec_max: float = 90.0, order: int = 7) -> MOC:
    """The sky between two declinations (degrees), at ``order``: the footprint of a survey limited in
    declination. Cells crossing a limit are included (a field near the edge is partial, not outside)."""
    if dec_min <= -90.0 and dec_max >= 90.0:
        return all_sky()
    from astropy.coordinates import Latitude, Longitude, SkyCoord

    lo, hi = max(dec_min, -90.0), min(dec_max, 90.0)
    return MOC.from_zone(SkyCoord(Longitude([0.0, 360.0 - 1e-9] * u.deg), Latitude([lo, hi] * u.deg)),
                         max_depth=order)


def fraction(field: MOC, coverage: MOC) -> float:
    """The fraction (0..1) of ``field``'s area inside ``coverage``."""
    if field.empty() or coverage.empty():
        return 0.0
    inside = field.intersection(coverage)
    if inside.empty():
        return 0.0
    return float(min(1.0, inside.sky_fraction / field.sky_fraction))


def pixels(moc: MOC, order: int = ORDER) -> np.ndarray:
    """The nested pixels at ``order`` that a MOC touches (coarser cells are split, finer ones rounded up)."""
    if moc.empty():
        return np.zeros(0, dtype=np.int64)
    degraded = moc.degrade_to_order(order) if moc.max_order > order else moc
    ranges = degraded.to_depth29_ranges
    shift = np.uint64(2 * (29 - order))
    out = [np.arange(int(lo >> shift), int(hi >> shift), dtype=np.int64) for lo, hi in ranges]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def sky_percent(moc: MOC) -> float:
    return 0.0 if moc.empty() else 100.0 * float(moc.sky_fraction)


__all__ = ["FIELD_ORDER", "all_sky", "cone", "dec_band", "empty", "fraction", "from_pixels", "from_text",
           "pixels", "sky_percent", "to_text"]
