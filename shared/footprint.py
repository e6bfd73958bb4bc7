"""The sky footprint of a catalogue or a frame, and how far a position lies outside it.

A catalogue's footprint is the convex hull of its stars in the gnomonic (tangent-plane) projection
about their mean direction; a frame's is the quadrilateral of its four corners. ``outside_arcsec``
is 0 for a position inside and otherwise the angular distance (small-angle, in the tangent plane)
to the nearest edge, so that a caller can allow a margin such as the matching radius.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from shared.refcat.healpix import separation_deg as separations_deg

_ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
#: Beyond this a gnomonic projection distorts too much: such "footprints" are judged by the nearest star.
_MAX_PROJECTED_RADIUS_DEG = 60.0


@dataclass(frozen=True)
class Footprint:
    """A region of sky: its centre, the radius of the circle about the centre holding it, its hull."""

    centre_ra_deg: float
    centre_dec_deg: float
    radius_deg: float
    hull_xy: np.ndarray  # (k, 2) tangent-plane vertices in radians, counter-clockwise; k < 3: points only

    def outside_arcsec(self, ra_deg: float, dec_deg: float) -> float:
        """0 inside the footprint, else the distance to it (arcsec)."""
        if self.radius_deg > _MAX_PROJECTED_RADIUS_DEG:
            return 0.0
        sep = separation_deg(self.centre_ra_deg, self.centre_dec_deg, ra_deg, dec_deg)
        if sep > self.radius_deg + 1.0:  # far away: the projection would stretch the distance
            return (sep - self.radius_deg) * 3600.0
        p = _project(self.centre_ra_deg, self.centre_dec_deg, np.array([ra_deg]), np.array([dec_deg]))[0]
        return _distance_to_polygon(p, self.hull_xy) * _ARCSEC_PER_RAD

    def centre_distance_deg(self, ra_deg: float, dec_deg: float) -> float:
        return separation_deg(self.centre_ra_deg, self.centre_dec_deg, ra_deg, dec_deg)


def separation_deg(ra1_deg: float, dec1_deg: float, ra2_deg: float, dec2_deg: float) -> float:
    """Great-circle distance of two positions (the reference store's Vincenty formula)."""
    return float(separations_deg(ra1_deg, dec1_deg, np.array([ra2_deg]), np.array([dec2_deg]))[0])


def enclosing_circle(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[float, float, float]:
    """Centre (RA, Dec) and radius in degrees of the circle about the positions' mean direction that holds
    them all: the field whose reference stars a calibration fetches (ingest names it in the upload's message,
    calibration checks the stars it reads lie in it)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    xyz = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    centre = xyz.mean(axis=1)
    centre /= np.linalg.norm(centre)
    centre_ra = float(np.degrees(np.arctan2(centre[1], centre[0])) % 360.0)
    centre_dec = float(np.degrees(np.arcsin(np.clip(centre[2], -1, 1))))
    radius = float(np.degrees(np.arccos(np.clip((centre @ xyz).min(), -1, 1))))
    return centre_ra, centre_dec, radius


def circle_holds(outer: tuple[float, float, float], inner: tuple[float, float, float],
                 tolerance_deg: float = 1e-7) -> bool:
    """Whether the circle ``inner`` (centre RA, Dec, radius in degrees) lies within ``outer``."""
    return separation_deg(outer[0], outer[1], inner[0], inner[1]) + inner[2] <= outer[2] + tolerance_deg


def catalogue_footprint(ra_deg: np.ndarray, dec_deg: np.ndarray) -> Footprint:
    """The footprint of a set of sky positions (at least one)."""
    ra, dec = np.radians(np.asarray(ra_deg, float)), np.radians(np.asarray(dec_deg, float))
    v = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]).sum(axis=1)
    norm = float(np.linalg.norm(v))
    if norm < 1e-9 * ra.size:  # positions spread evenly over the sky: no meaningful centre
        return Footprint(0.0, 0.0, 180.0, np.zeros((0, 2)))
    c_ra = math.degrees(math.atan2(v[1], v[0])) % 360.0
    c_dec = math.degrees(math.asin(max(-1.0, min(1.0, v[2] / norm))))
    radius = float(separations_deg(c_ra, c_dec, np.degrees(ra), np.degrees(dec)).max())
    if radius > _MAX_PROJECTED_RADIUS_DEG:
        return Footprint(c_ra, c_dec, radius, np.zeros((0, 2)))
    xy = _project(c_ra, c_dec, np.degrees(ra), np.degrees(dec))
    return Footprint(c_ra, c_dec, radius, _hull(xy))


def frame_footprint(corners_ra_deg, corners_dec_deg) -> Footprint:
    """The footprint of a frame from its four corners (any order)."""
    return catalogue_footprint(np.asarray(corners_ra_deg, float), np.asarray(corners_dec_deg, float))


def describe_angle(angle_deg: float) -> str:
    """An angle in the unit a person reads most easily: 70.2 deg, 12.3 arcmin, 4.1 arcsec."""
    if angle_deg >= 1.0:
        return f"{angle_deg:.1f} deg"
    if angle_deg * 60.0 >= 1.0:
        return f"{angle_deg * 60.0:.1f} arcmin"
    return f"{angle_deg * 3600.0:.1f} arcsec"


def _project(c_ra_deg: float, c_dec_deg: float, ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Gnomonic projection about (c_ra, c_dec), radians; positions must lie in the same hemisphere."""
    a0, d0 = math.radians(c_ra_deg), math.radians(c_dec_deg)
    a, d = np.radians(ra_deg), np.radians(dec_deg)
    cos_c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(a - a0)
    x = np.cos(d) * np.sin(a - a0) / cos_c
    y = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(a - a0)) / cos_c
    return np.column_stack([x, y])


def _unique_rows(xy: np.ndarray) -> np.ndarray:
    """The distinct rows of an (n, 2) array, sorted by x then y (``np.unique(xy, axis=0)`` without its
    byte-wise row view, which takes most of the hull's time for a few thousand stars)."""
    rows = xy[np.lexsort((xy[:, 1], xy[:, 0]))]
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    return rows[keep]


def _hull(xy: np.ndarray) -> np.ndarray:
    unique = _unique_rows(np.round(xy, 12))
    if len(unique) < 3:
        return unique
    try:
        hull = ConvexHull(unique)
    except QhullError:  # collinear stars: the footprint is the set of points itself
        return unique
    return unique[hull.vertices]  # counter-clockwise for 2-D hulls


def _distance_to_polygon(p: np.ndarray, poly: np.ndarray) -> float:
    if len(poly) == 0:
        return 0.0
    if len(poly) < 3:
        return float(np.min(np.hypot(*(poly - p).T)))
    a, b = poly, np.roll(poly, -1, axis=0)
    edge = b - a
    cross = edge[:, 0] * (p[1] - a[:, 1]) - edge[:, 1] * (p[0] - a[:, 0])
    if np.all(cross >= 0.0):  # left of every counter-clockwise edge: inside
        return 0.0
    t = np.clip(((p - a) * edge).sum(axis=1) / np.maximum((edge * edge).sum(axis=1), 1e-300), 0.0, 1.0)
    nearest = a + t[:, None] * edge
    return float(np.min(np.hypot(*(nearest - p).T)))
