"""What the photometry science returns."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from astropy.table import Table

from shared.catalogue.model import StarTable

__all__ = ["DEFAULT_PARAMS", "FLAGS", "ForcedPhotometry", "PhotometryParams", "PhotometryResult"]

#: Bit flags of the ``sources`` table.
FLAGS = {"saturated": 1, "blended": 2, "edge": 4, "cosmic_ray": 8, "bad_psf_fit": 16, "target": 32, "poor_fit": 64}


@dataclass(frozen=True)
class PhotometryParams:
    """Tunables of :func:`measure` (units in the names)."""

    detection_sigma: float = 5.0  # matched-filter S/N (noise of the smoothed frame)
    n_pixels: int = 5
    limit_sigma: float = 5.0  # forced photometry: detected at or above, else an n-sigma limit
    aperture_fwhm: float = 1.5  # aperture radius in FWHM
    aperture_correction_fwhm: float = 4.0  # radius of the "total" aperture of the correction
    aperture_correction_stars: int = 100  # the brightest isolated stars that measure the correction
    stamp_fwhm: float = 1.5  # half-size of the PSF-fit stamp in FWHM
    blend_fwhm: float = 2.0  # a neighbour closer than this is a blend
    target_clear_radius_arcsec: float = 3.0  # no other catalogue row within max(this, 2 FWHM) of the target
    saturation_fraction: float = 0.9  # flag a star whose peak reaches this fraction of saturation
    max_psf_stars: int = 25
    poor_fit_chi2_ratio: float = 3.0  # flag a reduced chi-square above this times that of stars of similar S/N
    method: str = "psf"  # "psf" or "aperture": which flux becomes the catalogue magnitude

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (provenance)."""
        return asdict(self)


#: The defaults, shared by every function that takes ``params`` (frozen, so safe as an argument default).
DEFAULT_PARAMS = PhotometryParams()


@dataclass(frozen=True)
class ForcedPhotometry:
    """PSF photometry at a fixed sky position (the event), and what it says.

    ``detected`` is ``snr >= limit_sigma``. ``limit_mag_inst`` is the instrumental magnitude of
    ``limit_sigma`` times the flux error from the local background noise; the calibrated limit is
    ``limit_mag_inst - zeropoint``.
    """

    ra_deg: float
    dec_deg: float
    x_px: float | None
    y_px: float | None
    in_frame: bool
    flux_adu: float | None
    flux_err_adu: float | None
    snr: float | None
    detected: bool
    mag_inst: float | None
    mag_err: float | None
    limit_sigma: float
    limit_mag_inst: float | None
    aperture_flux_adu: float | None = None
    aperture_flux_err_adu: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain types."""
        return asdict(self)


@dataclass(frozen=True)
class PhotometryResult:
    """Outcome of :func:`measure`.

    ``status`` is ``"measured"`` or ``"failed"`` (``reason`` says why). ``stars`` has the schema of an
    uploaded catalogue and goes to the calibration unchanged (``file_format="IMAGE"``, ``mag`` =
    -2.5 log10(flux / exptime)); it holds the target row only when the target is detected, so the
    calibration measures it or, if absent, gives a limit (replace its value by
    ``target.limit_mag_inst - zeropoint``: a limit from the noise at the event). ``sources`` has every
    detection with pixel and sky positions, PSF and aperture fluxes, errors and flags (see
    :data:`FLAGS`). ``metadata`` is what to store with the observation.
    """

    status: str
    reason: str | None
    stars: StarTable | None
    target: ForcedPhotometry | None
    sources: Table | None
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain types without the tables (store ``sources`` as a FITS table beside it)."""

        def clean(v: object) -> object:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return {
            "status": self.status, "reason": self.reason,
            "target": None if self.target is None else {k: clean(v) for k, v in self.target.to_dict().items()},
            "metadata": {k: clean(v) for k, v in self.metadata.items()},
            "n_catalogue_stars": 0 if self.stars is None else len(self.stars),
            "n_sources": 0 if self.sources is None else len(self.sources),
            "notes": list(self.notes), "timings_s": dict(self.timings_s), "params": dict(self.params),
        }
