"""Reference stars of one survey around a field, as handed to the calibration science."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReferenceStars:
    """Stars of one survey: positions and, per band, magnitudes and errors (NaN where missing).

    ``derived`` names the bands computed from other bands of the survey through a published
    transformation (see :mod:`shared.refcat.derived`) rather than measured. ``epoch`` is the epoch
    (Julian year) of ``ra_deg``/``dec_deg``: the catalogue's own, or the observation epoch the store
    propagated them to; None when the catalogue has no epoch. ``pmra``/``pmdec`` (mas/yr, pmra is
    mu_alpha* = mu_alpha cos(dec)) are given when the survey has proper motions, else None.
    """

    survey: str  # name used in filter strings, e.g. "APASS", "GaiaDR2", "GaiaSP"
    version: str
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    mags: dict[str, np.ndarray]  # band -> magnitude
    mag_errs: dict[str, np.ndarray]  # band -> magnitude error
    derived: frozenset[str] = frozenset()
    epoch: float | None = None
    pmra: np.ndarray | None = None
    pmdec: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ra_deg.size)
