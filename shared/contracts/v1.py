"""Version 1 of the message contracts. Minor changes only add optional fields."""
from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, model_validator

from shared.contracts.base import Message, Part

_Part = Part


def _from_base64(value: object) -> object:
    """Bytes as JSON carries them (base64 text); bytes given as bytes are taken as they are."""
    if isinstance(value, str):
        try:
            return binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ValueError(f"not base64: {exc}") from None
    return value


#: Bytes in a message: base64 text in JSON, bytes in Python.
InlineBytes = Annotated[bytes, BeforeValidator(_from_base64),
                        PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str,
                                        when_used="json")]


class EventRef(_Part):
    ivorn: str
    ra_deg: float = Field(ge=0, lt=360)
    dec_deg: float = Field(ge=-90, le=90)


class ObservatoryRef(_Part):
    id: int
    name: str


class FieldCircle(_Part):
    """The circle holding a catalogue's stars, centre and radius in degrees (``shared.footprint.enclosing_circle``)."""

    ra_deg: float = Field(ge=0, le=360)
    dec_deg: float = Field(ge=-90, le=90)
    radius_deg: float = Field(ge=0, le=180)


class UploadReceivedV1(Message):
    """An observer's catalogue arrived and its bytes are stored; calibrate it."""

    routing_key = "upload.received.v1"
    observation_id: str
    followup_id: int | None = None  # None for a dry run
    correlation_id: str
    dry_run: bool = False
    event: EventRef
    observatory: ObservatoryRef
    file_id: str  # the stored bytes' id in ``bucket``; empty when the bytes travel inline
    # "inline": a dry run's catalogue carried in ``inline_data`` (nothing of it is stored)
    bucket: Literal["uploads", "scratch", "inline"] = "uploads"
    filename: str = "catalogue"
    sha256: str
    mjd: float
    exptime_s: float | None = None
    match_radius_arcsec: float | None = Field(default=None, gt=0, le=60)
    force_filter: str = "no"
    declared_filter: str | None = None
    observatory_filters: list[str] | None = None  # the observatory's filter list, a hint for the band
    comment: str = ""
    no_plot: bool = False
    # the field of the stars as ingest read them: calibration fetches its references while it reads
    # them (None: it reads first, as for an image's measured catalogue)
    field: FieldCircle | None = None
    # the bytes themselves (base64 in JSON), when ``bucket`` is "inline"
    inline_data: InlineBytes | None = None

    @model_validator(mode="after")
    def _inline_bytes_travel_with_their_bucket(self) -> UploadReceivedV1:
        if (self.bucket == "inline") != (self.inline_data is not None):
            raise ValueError('inline_data is given with bucket "inline", and only then')
        return self


class CalibrationSummary(_Part):
    """What the calibration produced; the fields of the CPCS answer come from here."""

    status: Literal["calibrated", "limit", "failed"]
    reason: str | None = None
    survey: str | None = None
    band: str | None = None
    filter: str | None = None
    mode: Literal["AUTO", "FORCED"] = "AUTO"
    mag: float | None = None
    mag_err: float | None = None
    zp_err: float | None = None
    calib_err: float | None = None
    total_err: float | None = None
    is_limit: bool = False
    limit_sigma: float | None = None
    zeropoint: float | None = None
    zeropoint_err: float | None = None
    scatter: float | None = None
    outlier_fraction: float | None = None
    npoints: int = 0
    ra_deg: float | None = None
    dec_deg: float | None = None
    match_radius_arcsec: float | None = None
    n_catalogue_stars: int = 0
    limit_err: float | None = None
    colour_err: float | None = None
    colour_note: str | None = None  # e.g. why a colour term was dropped (slope at its bound)
    colour: str | None = None
    colour_slope: float | None = None
    colour_slope_err: float | None = None
    target_colour: float | None = None
    target_colour_source: Literal["reference", "assumed field median"] | None = None
    match_radius_method: Literal["user", "auto", "default"] | None = None
    declared_filter_source: str | None = None
    inferred_filter: str | None = None
    refcat_version: str | None = None
    small_sample_factor: float | None = None


class ObservationCalibratedV1(Message):
    """A calibration finished with a magnitude or a limit (stored unless a dry run)."""

    routing_key = "observation.calibrated.v1"
    observation_id: str
    followup_id: int | None = None
    correlation_id: str
    dry_run: bool = False
    event: EventRef
    observatory: ObservatoryRef
    mjd: float
    result: CalibrationSummary
    algorithm_version: str
    params_hash: str
    refcat_versions: dict[str, str] = {}
    # the stored input it was computed from (the upload's claim check), so that ingest, its owner,
    # can delete a dry run's scratch copy once the outcome is known
    file_id: str | None = None
    bucket: Literal["uploads", "scratch"] | None = None


class ObservationFailedV1(Message):
    """The observation could not be calibrated; ``reason`` is a sentence for the observer."""

    routing_key = "observation.failed.v1"
    observation_id: str
    followup_id: int | None = None
    correlation_id: str
    dry_run: bool = False
    event_ivorn: str
    stage: Literal["ingest", "astrometry", "photometry", "calibration"]
    reason: str
    result: CalibrationSummary | None = None
    file_id: str | None = None  # the stored input, as in ObservationCalibratedV1
    bucket: Literal["uploads", "scratch"] | None = None


class ObservationDeletedV1(Message):
    """A point was deleted by its owner or an admin; every service drops what it holds."""

    routing_key = "observation.deleted.v1"
    observation_id: str
    followup_id: int
    event_ivorn: str
    deleted_by: str


class LightcurveUpdatedV1(Message):
    """A point joined or left an event's light curve (published by the lightcurve service)."""

    routing_key = "lightcurve.updated.v1"
    event_ivorn: str
    followup_id: int
    action: Literal["stored", "removed"]


class PlotRenderedV1(Message):
    """The calibration plot of an observation is stored and can be served."""

    routing_key = "plot.rendered.v1"
    observation_id: str
    status: Literal["calibrated", "limit", "failed"]


class PlotRequestedV1(Message):
    """Someone wants the calibration plot of an observation: calibration draws it unless it is stored,
    and answers ``plot.rendered.v1``, or ``plot.declined.v1`` when it keeps no calibration of that id.

    Calibration asks for it itself when an upload wants its plot at once (``no_plot`` False); a plot
    nobody asked for is drawn on its first request (lightcurve's ``/plots/{observation}.png``)."""

    routing_key = "plot.requested.v1"
    observation_id: str


class PlotDeclinedV1(Message):
    """No plot can be drawn for an observation (no calibration of it is kept), with the reason."""

    routing_key = "plot.declined.v1"
    observation_id: str
    reason: str


class EventCreatedV1(Message):
    """A new event (transient) is known.

    Created by hand, ``ra_deg``/``dec_deg`` are always given. Created by an alert packet, they are
    None when the packet gave no position, and ``target_usable`` is False (with the reason) when the
    position cannot serve as a photometry target (none, 0,0, or an error circle too wide).
    """

    routing_key = "event.created.v1"
    ivorn: str
    ra_deg: float | None
    dec_deg: float | None
    url: str = ""
    source: str = "manual"
    target_usable: bool = True
    no_target_reason: str | None = None
    aliases: list[str] = []
    # the rest of what readers of events show (the light curve pages, /list_of_alerts); ingest may
    # publish this message again for a known event (replay), with the event as it is then
    alert_id: int | None = None  # the CPCS numeric id
    name: str | None = None
    published: datetime | None = None
    error_radius_deg: float | None = None
    n_packets: int = 0  # alert packets merged into the event so far
    revision: int = 0  # grows with every change of the event: readers keep the highest they saw


class ObservationRecord(_Part):
    """The standardised header of an image (``shared.fitsimage.ObservationHeader``, field for field).

    ingest standardises the header once, with the observatory record, and sends it on; the image
    services use it as sent. Every value is None when unknown; ``sources`` tells, per field, where the
    value came from and ``notes`` what was ignored or doubtful.
    """

    mjd_start: float | None = None
    mjd_mid: float | None = None
    exptime_s: float | None = None
    filter_raw: str | None = None
    filter: str | None = None
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
    sources: dict[str, str] = {}
    notes: list[str] = []


class SolveTry(_Part):
    """One try of the astrometric solver: a pixel-scale range around a centre, and what came of it."""

    scale_low_arcsec: float
    scale_high_arcsec: float
    centre: str  # "the event position", "the header pointing"
    centre_ra_deg: float
    centre_dec_deg: float
    cone_radius_deg: float
    wide: bool = False
    time_limit_s: float
    outcome: str | None = None  # "solved", the reason it failed, or why it was not tried


class AstrometrySummary(_Part):
    """How the WCS of an image was found and how good it is (the WCS itself is ``wcs_header``)."""

    status: Literal["solved", "failed"] = "solved"
    reason: str | None = None
    method: str | None = None  # "astrometry.net", "header WCS", "header WCS (shifted by 3.2 arcsec)"
    rms_arcsec: float | None = None
    n_stars: int = 0  # stars the fit used
    n_sources: int = 0
    n_references: int = 0
    sip_degree: int | None = None
    pixel_scale_arcsec: float | None = None
    rotation_deg: float | None = None
    flipped: bool | None = None
    centre_ra_deg: float | None = None
    centre_dec_deg: float | None = None
    header_wcs: Literal["absent", "unusable", "stale", "verified", "corrected"] = "absent"
    header_wcs_offset_arcsec: float | None = None  # how far the header WCS centre was from the solution
    timings_s: dict[str, float] = {}
    notes: list[str] = []
    params: dict[str, bool | int | float | list[float]] = {}
    attempts: list[SolveTry] = []


class ForcedTarget(_Part):
    """PSF photometry at the event position (``ForcedPhotometry`` of the photometry science).

    ``detected`` is ``snr >= limit_sigma``; ``limit_mag_inst`` is the instrumental magnitude of
    ``limit_sigma`` times the flux error from the local noise (the calibrated limit is it minus the
    zero point).
    """

    ra_deg: float
    dec_deg: float
    x_px: float | None = None
    y_px: float | None = None
    in_frame: bool
    flux_adu: float | None = None
    flux_err_adu: float | None = None
    snr: float | None = None
    detected: bool
    mag_inst: float | None = None
    mag_err: float | None = None
    limit_sigma: float
    limit_mag_inst: float | None = None
    aperture_flux_adu: float | None = None
    aperture_flux_err_adu: float | None = None
    reason: str | None = None


class ImageMetadata(_Part):
    """What photometry measured on the whole image (seeing, background, depth) and its astrometry."""

    fwhm_px: float | None = None
    fwhm_arcsec: float | None = None
    psf_model: str | None = None
    psf_alpha_px: float | None = None
    psf_beta: float | None = None
    psf_stars: int | None = None
    background_adu: float | None = None
    background_rms_adu: float | None = None
    limiting_mag_inst_5sigma: float | None = None
    airmass: float | None = None
    exptime_s: float | None = None
    gain_e_per_adu: float | None = None
    saturation_adu: float | None = None
    pixel_scale_arcsec: float | None = None
    method: Literal["psf", "aperture"] | None = None  # which flux became the catalogue magnitude
    aperture_radius_px: float | None = None
    aperture_correction_mag: float | None = None
    aperture_correction_err_mag: float | None = None
    n_detected: int | None = None
    n_catalogue: int | None = None
    n_saturated: int | None = None
    n_blended: int | None = None
    target_clear_radius_arcsec: float | None = None  # no other catalogue star closer to the event
    mjd_mid: float | None = None
    filter: str | None = None
    astrometry: AstrometrySummary | None = None


class ImageReceivedV1(UploadReceivedV1):
    """A reduced FITS image arrived (bytes stored); solve its astrometry.

    ``observation`` is the header as ingest standardised it (None from an older ingest: the image
    services then standardise it themselves, without the observatory record, and log that).
    """

    routing_key = "image.received.v1"
    extension: int | str | None = None  # the science HDU, when the observer named it
    observation: ObservationRecord | None = None


class ImageSolvedV1(ImageReceivedV1):
    """The image has a WCS checked against the reference stars; measure it."""

    routing_key = "image.solved.v1"
    wcs_header: dict[str, float | int | str | bool] = {}
    astrometry: AstrometrySummary | None = None


class CatalogueMeasuredV1(UploadReceivedV1):
    """Photometry of an image: a catalogue like an uploaded one, plus forced photometry at the event."""

    routing_key = "catalogue.measured.v1"
    catalogue_file_id: str
    target: ForcedTarget | None = None  # None when the image gave no forced photometry
    image_metadata: ImageMetadata = ImageMetadata()


class ImageProduct(_Part):
    """One downloadable product of an image, stored in photometry's GridFS bucket ``products``."""

    kind: Literal["catalogue_ascii", "catalogue_ldac", "wcs_header", "cutout_png", "cutout_fits"]
    file_id: str
    filename: str  # e.g. "catalogue.cat"
    content_type: str
    size_bytes: int = Field(ge=0)


class ImageQuality(_Part):
    """What the result page shows of an image: astrometric rms, matched stars, seeing, depth."""

    astrometry_rms_arcsec: float | None = None
    astrometry_n_stars: int | None = None  # reference stars the WCS fit used
    fwhm_arcsec: float | None = None
    fwhm_px: float | None = None
    limiting_mag_inst_5sigma: float | None = None  # minus the calibration's zero point: the calibrated limit
    n_detected: int | None = None  # rows of the catalogue products (every star measured)
    cutout_size_px: int | None = None  # the cutout's side in image pixels
    target_x_px: float | None = None  # the event in the frame (0-based pixels)
    target_y_px: float | None = None


class ImageProductsV1(Message):
    """Photometry stored the products of an image (claim checks in its bucket ``products``).

    Ingest keeps the ids with the observation and serves them to the observer; a dry run's products
    are deleted by photometry after ``expires_at``.
    """

    routing_key = "image.products.v1"
    observation_id: str
    followup_id: int | None = None
    correlation_id: str
    dry_run: bool = False
    event_ivorn: str
    observatory: ObservatoryRef
    bucket: Literal["products"] = "products"
    products: list[ImageProduct] = []
    quality: ImageQuality = ImageQuality()
    expires_at: datetime | None = None  # dry runs only
