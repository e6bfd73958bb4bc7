"""Import: which incoming stars are already stored (the same star twice within a small radius).

Pure: positions in, masks out; :mod:`shared.refcat.import_session` reads the stored blocks.
"""
from __future__ import annotations

import numpy as np

from .healpix import pixels_of


def pixels_near(ra_deg: np.ndarray, dec_deg: np.ndarray, tol_deg: float) -> np.ndarray:
    """The pixels of the positions and of the points ``tol_deg`` north, south, east and west of them
    (a star beside a pixel border may have its stored twin in the neighbouring pixel)."""
    cos_d = np.maximum(np.cos(np.radians(dec_deg)), 1e-6)
    d_ra = np.minimum(tol_deg / cos_d, 180.0)
    parts = [pixels_of(ra_deg, dec_deg),
             pixels_of(np.mod(ra_deg + d_ra, 360.0), dec_deg), pixels_of(np.mod(ra_deg - d_ra, 360.0), dec_deg),
             pixels_of(ra_deg, np.clip(dec_deg + tol_deg, -90.0, 90.0)),
             pixels_of(ra_deg, np.clip(dec_deg - tol_deg, -90.0, 90.0))]
    return np.unique(np.concatenate(parts))


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Unit vectors (x, y, z) on the sphere of the positions, one row per star."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def near_positions(ra_deg: np.ndarray, dec_deg: np.ndarray, good: np.ndarray, stored_ra_deg: np.ndarray,
                   stored_dec_deg: np.ndarray, tol_deg: float) -> np.ndarray:
    """Per incoming star: True when a stored star lies within ``tol_deg`` (False where ``good`` is False,
    i.e. for positions that are not usable)."""
    from scipy.spatial import cKDTree

    out = np.zeros(ra_deg.size, dtype=bool)
    if stored_ra_deg.size == 0:
        return out
    tree = cKDTree(unit_vectors(stored_ra_deg, stored_dec_deg))
    chord = 2.0 * np.sin(np.radians(tol_deg) / 2.0)
    idx = np.flatnonzero(good)
    dist, _ = tree.query(unit_vectors(ra_deg[idx], dec_deg[idx]), k=1, distance_upper_bound=chord)
    out[idx] = np.isfinite(dist)
    return out


__all__ = ["near_positions", "pixels_near", "unit_vectors"]
