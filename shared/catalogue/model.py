"""The in-memory form of an observer's catalogue, whatever file it came from."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class CatalogueError(ValueError):
    """A catalogue that cannot be calibrated; ``str(err)`` is a sentence for the observer."""


@dataclass(frozen=True)
class StarTable:
    """Cleaned rows of an uploaded catalogue: sky positions and instrumental magnitudes.

    All arrays have the same length and contain finite values only.
    """

    ra_deg: np.ndarray
    dec_deg: np.ndarray
    mag: np.ndarray
    mag_err: np.ndarray
    file_format: str  # "ASCII_HEAD", "FITS", "FITS_LDAC"
    mag_column: str  # e.g. "MAG_AUTO", "MAG_APER[0]", "FLUX_AUTO"
    n_input: int  # rows in the file before cleaning
    n_dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows dropped
    header: dict[str, object] = field(default_factory=dict)  # FILTER, EXPTIME, MJD-OBS, DATE-OBS... when present

    def __len__(self) -> int:
        return int(self.ra_deg.size)
