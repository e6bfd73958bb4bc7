"""One-to-one positional cross-matching on the sky.

Pure numpy/scipy: positions become unit vectors, a KD-tree finds nearest neighbours in both
directions, and only mutual nearest neighbours within the radius are kept. This replaces the
original server's many-to-many SQL match, in which one reference star could be paired with every
catalogue star near it (blends counted twice, close pairs swapped).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

__all__ = ["angular_separation_arcsec", "match_one_to_one", "unit_vectors"]

_ARCSEC_PER_RAD = 180.0 / np.pi * 3600.0


def unit_vectors(ra_deg: ArrayLike, dec_deg: ArrayLike) -> NDArray[np.float64]:
    """Cartesian unit vectors of sky positions.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Right ascension and declination in degrees (same length).

    Returns
    -------
    numpy.ndarray
        Array of shape ``(n, 3)``.
    """
    ra = np.deg2rad(np.asarray(ra_deg, dtype=float))
    dec = np.deg2rad(np.asarray(dec_deg, dtype=float))
    cos_dec = np.cos(dec)
    return np.column_stack((cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec))).reshape(-1, 3)


def angular_separation_arcsec(
    ra1_deg: ArrayLike, dec1_deg: ArrayLike, ra2_deg: ArrayLike, dec2_deg: ArrayLike
) -> NDArray[np.float64]:
    """Great-circle separation in arcseconds (Vincenty formula, exact at all separations).

    Parameters
    ----------
    ra1_deg, dec1_deg, ra2_deg, dec2_deg : array_like or float
        Positions in degrees; broadcast against each other.

    Returns
    -------
    numpy.ndarray
        Separations in arcseconds, same broadcast shape as the inputs.
    """
    ra1, dec1, ra2, dec2 = (np.deg2rad(np.asarray(x, dtype=float)) for x in (ra1_deg, dec1_deg, ra2_deg, dec2_deg))
    dra = ra2 - ra1
    s1, c1 = np.sin(dec1), np.cos(dec1)
    s2, c2 = np.sin(dec2), np.cos(dec2)
    num1 = c2 * np.sin(dra)
    num2 = c1 * s2 - s1 * c2 * np.cos(dra)
    den = s1 * s2 + c1 * c2 * np.cos(dra)
    sep: NDArray[np.float64] = np.arctan2(np.hypot(num1, num2), den) * _ARCSEC_PER_RAD
    return sep


def match_one_to_one(
    ra1_deg: ArrayLike,
    dec1_deg: ArrayLike,
    ra2_deg: ArrayLike,
    dec2_deg: ArrayLike,
    radius_arcsec: float,
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """Match two lists of sky positions one-to-one: mutual nearest neighbours within a radius.

    A pair ``(i, j)`` is returned when position ``j`` of list 2 is the nearest neighbour of
    position ``i`` of list 1, *and* ``i`` is the nearest neighbour of ``j``, and their separation is
    at most ``radius_arcsec``. Every index therefore appears at most once: when two catalogue stars
    lie near one reference star, only the nearer one is matched (the other is left unmatched rather
    than paired with the wrong star). Wrap-around at RA = 0/360 deg and the poles are handled
    because the search runs on 3-D unit vectors.

    Parameters
    ----------
    ra1_deg, dec1_deg : array_like
        Positions of list 1 in degrees.
    ra2_deg, dec2_deg : array_like
        Positions of list 2 in degrees.
    radius_arcsec : float
        Maximum separation in arcseconds (inclusive).

    Returns
    -------
    idx1 : numpy.ndarray of int
        Indices into list 1, sorted ascending.
    idx2 : numpy.ndarray of int
        Matching indices into list 2.
    sep_arcsec : numpy.ndarray of float
        Separations of the pairs in arcseconds.

    Notes
    -----
    Empty inputs, a non-positive or non-finite radius and non-finite positions never raise: such
    positions are simply never matched and empty arrays are returned when nothing matches.
    Exact ties for the nearest neighbour are resolved by the KD-tree deterministically.
    """
    ra1 = np.atleast_1d(np.asarray(ra1_deg, dtype=float))
    dec1 = np.atleast_1d(np.asarray(dec1_deg, dtype=float))
    ra2 = np.atleast_1d(np.asarray(ra2_deg, dtype=float))
    dec2 = np.atleast_1d(np.asarray(dec2_deg, dtype=float))
    if ra1.shape != dec1.shape or ra2.shape != dec2.shape:
        raise ValueError("RA and Dec arrays must have the same length")
    empty = (np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float64))
    radius = float(radius_arcsec)
    if not np.isfinite(radius) or radius < 0.0:
        return empty
    ok1 = np.flatnonzero(np.isfinite(ra1) & np.isfinite(dec1))
    ok2 = np.flatnonzero(np.isfinite(ra2) & np.isfinite(dec2))
    if ok1.size == 0 or ok2.size == 0:
        return empty

    v1 = unit_vectors(ra1[ok1], dec1[ok1])
    v2 = unit_vectors(ra2[ok2], dec2[ok2])
    # chord length of the radius, padded so that rounding never loses a pair at the edge;
    # the exact separation is applied below
    chord = 2.0 * np.sin(min(radius / _ARCSEC_PER_RAD, np.pi) / 2.0) * (1.0 + 1e-9) + 1e-15
    tree1 = cKDTree(v1)
    tree2 = cKDTree(v2)
    # for each of list 1 its nearest in list 2, and the other way round (k=1: one index per point)
    nn12: NDArray[np.intp] = np.asarray(tree2.query(v1, k=1, distance_upper_bound=chord)[1])
    nn21: NDArray[np.intp] = np.asarray(tree1.query(v2, k=1, distance_upper_bound=chord)[1])
    n2 = v2.shape[0]
    has12 = nn12 < n2
    cand1 = np.flatnonzero(has12)
    cand2 = nn12[cand1]
    mutual = nn21[cand2] == cand1
    i1 = ok1[cand1[mutual]]
    i2 = ok2[cand2[mutual]]
    if i1.size == 0:
        return empty
    sep = angular_separation_arcsec(ra1[i1], dec1[i1], ra2[i2], dec2[i2])
    keep = sep <= radius
    order = np.argsort(i1[keep], kind="stable")
    return (
        i1[keep][order].astype(np.intp),
        i2[keep][order].astype(np.intp),
        np.asarray(sep[keep][order], dtype=np.float64),
    )
