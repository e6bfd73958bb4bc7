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

__all__ = ["MutualNeighbours", "SkyTree", "angular_separation_arcsec", "match_one_to_one", "unit_vectors"]

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


class SkyTree:
    """A KD-tree of sky positions (on unit vectors), built once and shared by every match of the list.

    Non-finite positions are left out (``rows`` are the indices of the others).
    """

    def __init__(self, ra_deg: ArrayLike, dec_deg: ArrayLike) -> None:
        ra = np.atleast_1d(np.asarray(ra_deg, dtype=float))
        dec = np.atleast_1d(np.asarray(dec_deg, dtype=float))
        if ra.shape != dec.shape:
            raise ValueError("RA and Dec arrays must have the same length")
        self.ra, self.dec = ra, dec
        self.rows: NDArray[np.intp] = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
        self.vectors = unit_vectors(ra[self.rows], dec[self.rows])
        self.tree = cKDTree(self.vectors) if self.rows.size else None


def _chord(radius_arcsec: float) -> float:
    """Chord length of a radius, padded so that rounding never loses a pair at the edge (the exact
    separation is applied afterwards)."""
    return float(2.0 * np.sin(min(radius_arcsec / _ARCSEC_PER_RAD, np.pi) / 2.0) * (1.0 + 1e-9) + 1e-15)


class MutualNeighbours:
    """Nearest neighbours both ways between two lists within ``reach_arcsec``, found once.

    The one-to-one match at any radius up to the reach follows from them (:meth:`match`): a
    nearest neighbour within the radius is the nearest neighbour within the reach, if that is
    within the radius. Each position of list 2 also keeps its second nearest in list 1, so the
    match without one star of list 1 (the target, never a calibrator) is the match of the list
    without it.
    """

    def __init__(self, one: SkyTree, two: SkyTree, reach_arcsec: float) -> None:
        self.one, self.two = one, two
        reach = float(reach_arcsec)
        self.reach = reach if np.isfinite(reach) and reach >= 0.0 else -1.0
        self._empty = self.reach < 0.0 or one.tree is None or two.tree is None
        if self._empty:
            return
        assert one.tree is not None and two.tree is not None
        chord = _chord(self.reach)
        # for each of list 1 its nearest in list 2; for each of list 2 its two nearest in list 1
        self.nn12: NDArray[np.intp] = np.asarray(two.tree.query(one.vectors, k=1, distance_upper_bound=chord)[1])
        nn21 = np.asarray(one.tree.query(two.vectors, k=2, distance_upper_bound=chord)[1]).reshape(-1, 2)
        self.nn21: NDArray[np.intp] = nn21

    def match(self, radius_arcsec: float, *, exclude: int | None = None
              ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
        """The one-to-one match within ``radius_arcsec`` (at most the reach), as :func:`match_one_to_one`
        returns it; ``exclude``: a row of list 1 that takes no part (as if it were not in the list)."""
        empty = (np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float64))
        radius = float(radius_arcsec)
        if not np.isfinite(radius) or radius < 0.0 or self._empty:
            return empty
        if radius > self.reach * (1.0 + 1e-12):
            raise ValueError(f"radius {radius} arcsec is beyond the reach of {self.reach} arcsec")
        one, two = self.one, self.two
        n1, n2 = one.rows.size, two.rows.size
        nn21 = self.nn21[:, 0]
        has12 = self.nn12 < n2
        if exclude is not None:
            hit = np.flatnonzero(one.rows == exclude)
            if hit.size:
                gone = int(hit[0])
                nn21 = np.where(nn21 == gone, self.nn21[:, 1], nn21)
                has12 = has12.copy()
                has12[gone] = False
        cand1 = np.flatnonzero(has12)
        cand2 = self.nn12[cand1]
        back = nn21[cand2]
        mutual = (back < n1) & (back == cand1)
        i1 = one.rows[cand1[mutual]]
        i2 = two.rows[cand2[mutual]]
        if i1.size == 0:
            return empty
        sep = angular_separation_arcsec(one.ra[i1], one.dec[i1], two.ra[i2], two.dec[i2])
        keep = sep <= radius
        order = np.argsort(i1[keep], kind="stable")
        return (
            i1[keep][order].astype(np.intp),
            i2[keep][order].astype(np.intp),
            np.asarray(sep[keep][order], dtype=np.float64),
        )


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
    because the search runs on 3-D unit vectors. (To match one list against several, or one pair
    of lists at several radii, build :class:`SkyTree` and :class:`MutualNeighbours` once.)

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
    one, two = SkyTree(ra1_deg, dec1_deg), SkyTree(ra2_deg, dec2_deg)
    return MutualNeighbours(one, two, radius_arcsec).match(radius_arcsec)
