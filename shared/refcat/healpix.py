"""The sky grid the reference-catalogue store is indexed on: HEALPix, nested scheme, one fixed order.

Why NSIDE = 256 (order 8, pixels of ~13.7 arcmin, 0.0524 deg², 786 432 pixels on the sky):

* Calibration cones are the field of view of 0.4–2 m telescopes: 5–30 arcmin in radius. A 10' cone touches
  about 6–12 pixels (a few runs of consecutive numbers: a few range queries on the hp index), and the
  area fetched but trimmed away stays within a few times the cone (order 7, 27' pixels, would fetch
  about four times more for small fields; order 9/10 would multiply documents and `$in` lists by 4–16
  for no gain at these radii).
* Documents stay small: even in the Galactic plane (1e5–1e6 Gaia stars per deg²) a pixel holds
  5k–50k stars, which the store splits into blocks of at most BLOCK_ROWS rows; an all-sky APASS
  (61 M stars) is about 80 stars per pixel, i.e. under a million block documents.

The MongoDB side stores only the integer pixel number (`hp`), so the same layout works on real MongoDB
and on nx-27017 without any geospatial operator.
"""
from __future__ import annotations

from functools import lru_cache

import astropy.units as u
import numpy as np
from astropy.coordinates import angular_separation
from astropy_healpix import HEALPix

ORDER = 8
NSIDE = 2**ORDER  # 256


@lru_cache(maxsize=1)
def grid() -> HEALPix:
    return HEALPix(nside=NSIDE, order="nested")


def pixels_of(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """The nested pixel index of every position (int64)."""
    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    return np.asarray(grid().lonlat_to_healpix(ra * u.deg, dec * u.deg), dtype=np.int64)


def cone_pixels(ra_deg: float, dec_deg: float, radius_deg: float) -> list[int]:
    """Every pixel that overlaps (even partially) the cone, sorted, as plain ints for a query."""
    pix = grid().cone_search_lonlat(float(ra_deg) * u.deg, float(dec_deg) * u.deg, float(radius_deg) * u.deg)
    return sorted(int(p) for p in np.unique(pix))


def separation_deg(ra_deg: float, dec_deg: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Angular distance (degrees) of every (ra, dec) from one point (Vincenty formula, as SkyCoord uses)."""
    sep = angular_separation(
        np.radians(float(ra_deg)), np.radians(float(dec_deg)),
        np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float)),
    )
    return np.degrees(np.asarray(sep, dtype=float))


def pixel_ranges(pixels: list[int], *, max_gap: int = 2) -> list[tuple[int, int]]:
    """Sorted pixels as inclusive (first, last) runs; runs separated by at most ``max_gap`` missing
    pixels are merged (a few extra blocks fetched cost less than another query).

    Cones are fetched range by range (``hp: {$gte, $lte}``) because in the nested scheme a cone is a
    few runs of consecutive pixels, and because a range on an indexed field is the one form every
    MongoDB-protocol server turns into an index search: nx-27017 evaluates ``$in`` through SQLite
    ``json_each`` (a full scan of every block of every survey) and ``$or`` in Python.
    """
    runs: list[tuple[int, int]] = []
    for p in sorted(set(int(x) for x in pixels)):
        if runs and p - runs[-1][1] <= max_gap + 1:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    return runs
