"""Reference stars of one survey around a field, as handed to the calibration science."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReferenceStars:
    """Stars of one survey: positions and, per band, magnitudes and errors (NaN where missing)."""

    survey: str  # name used in filter strings, e.g. "APASS", "GaiaDR2", "GaiaSP"
    version: str
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    mags: dict[str, np.ndarray]  # band -> magnitude
    mag_errs: dict[str, np.ndarray]  # band -> magnitude error

    def __len__(self) -> int:
        return int(self.ra_deg.size)
