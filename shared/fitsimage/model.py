"""The in-memory form of an uploaded image and of its standardised header."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray


class ImageRefused(ValueError):
    """An image the server cannot use; ``str(err)`` (also ``err.reason``) is a sentence for the observer."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageFrame:
    """One science image read from a FITS file.

    Attributes
    ----------
    data : numpy.ndarray
        2-D float32 pixel values (BSCALE/BZERO applied); NaN where a pixel has no value.
    header : astropy.io.fits.Header
        The chosen HDU's header, with the primary header's keywords that it lacks (observation
        keywords often sit in the primary header of a multi-extension file).
    hdu_index : int
        Index of the chosen HDU in the file.
    extname : str
        Its EXTNAME ("PRIMARY" for the primary HDU).
    compression : str
        How the file was packed: "none", "gzip", "bzip2" or "tile" (fpack ``.fz``).
    notes : tuple of str
        What the reader had to decide (extension chosen, pixels without value...).
    """

    data: NDArray[np.float32]
    header: fits.Header
    hdu_index: int = 0
    extname: str = "PRIMARY"
    compression: str = "none"
    notes: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return (int(self.data.shape[0]), int(self.data.shape[1]))


@dataclass(frozen=True)
class ObservationHeader:
    """The internal record of an observation, whatever keywords its camera wrote.

    Every value is None when unknown; ``sources`` tells, per attribute, where the value came from
    (``"header MJD-OBS"``, ``"observatory record"``, ``"upload"``, ``"computed ..."``) and ``notes``
    what was ignored or doubtful.
    """

    mjd_start: float | None = None
    mjd_mid: float | None = None
    exptime_s: float | None = None
    filter_raw: str | None = None
    filter: str | None = None  # normalised: u g r i z y, U B V R I, J H K Ks, G, clear; None if unknown
    site_name: str | None = None
    site_lon_deg: float | None = None  # east positive
    site_lat_deg: float | None = None
    site_alt_m: float | None = None
    telescope: str | None = None
    instrument: str | None = None
    observer: str | None = None
    object_name: str | None = None
    image_type: str | None = None
    gain_e_per_adu: float | None = None
    read_noise_e: float | None = None
    saturation_adu: float | None = None
    pixel_scale_arcsec: float | None = None
    binning: tuple[int, int] | None = None
    pointing_ra_deg: float | None = None
    pointing_dec_deg: float | None = None
    wcs_centre_ra_deg: float | None = None
    wcs_centre_dec_deg: float | None = None
    has_celestial_wcs: bool = False
    airmass: float | None = None
    bunit: str | None = None
    naxis: tuple[int, int] | None = None  # (nx, ny)
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain types, for storing with the observation."""
        out = asdict(self)
        out["binning"] = None if self.binning is None else list(self.binning)
        out["naxis"] = None if self.naxis is None else list(self.naxis)
        out["notes"] = list(self.notes)
        return out
