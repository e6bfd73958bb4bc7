"""The in-memory form of an observer's catalogue, whatever file it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray


class CatalogueError(ValueError):
    """A catalogue that cannot be calibrated; ``str(err)`` is a sentence for the observer."""


@dataclass(frozen=True)
class StarTable:
    """Cleaned rows of an uploaded catalogue: sky positions and instrumental magnitudes.

    All arrays have the same length and contain finite values only.
    """

    ra_deg: NDArray[np.float64]
    dec_deg: NDArray[np.float64]
    mag: NDArray[np.float64]
    mag_err: NDArray[np.float64]
    file_format: str  # "ASCII_HEAD", "FITS", "FITS_LDAC"
    mag_column: str  # e.g. "MAG_AUTO", "MAG_APER[0]", "FLUX_AUTO"
    n_input: int  # rows in the file before cleaning
    n_dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows dropped
    header: dict[str, object] = field(default_factory=dict)  # FILTER, EXPTIME, MJD-OBS, DATE-OBS... when present
    exptime_s: float | None = None  # exposure time that divided the fluxes; None when magnitudes were read
    exptime_source: str = ""  # where exptime_s came from: "argument", "header EXPTIME", "assumed 1 s"...
    n_ra_wrapped: int = 0  # kept rows whose RA was given in [-180, 0) and moved to [180, 360)

    def __len__(self) -> int:
        return int(self.ra_deg.size)


#: Upper-case column name -> float64 values, (n,) or (n, k) for vector columns.
Columns = dict[str, NDArray[np.float64]]


class RawTable(NamedTuple):
    """The columns of a catalogue file before any choice or cleaning (internal to the readers)."""

    columns: Columns
    header: dict[str, object]  # image keywords found in the file
    n_input: int  # data rows in the file, including the unreadable ones
    n_dropped: dict[str, int]  # rows the file reader already had to drop, by reason
