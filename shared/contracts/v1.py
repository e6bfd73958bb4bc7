"""Version 1 of the message contracts. Minor changes only add optional fields."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.contracts.base import Message, Part


_Part = Part


class EventRef(_Part):
    ivorn: str
    ra_deg: float = Field(ge=0, lt=360)
    dec_deg: float = Field(ge=-90, le=90)


class ObservatoryRef(_Part):
    id: int
    name: str


class UploadReceivedV1(Message):
    """An observer's catalogue arrived and its bytes are stored; calibrate it."""

    routing_key = "upload.received.v1"
    observation_id: str
    followup_id: int | None = None  # None for a dry run
    correlation_id: str
    dry_run: bool = False
    event: EventRef
    observatory: ObservatoryRef
    file_id: str
    bucket: Literal["uploads", "scratch"] = "uploads"
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


class ImageReceivedV1(UploadReceivedV1):
    """A reduced FITS image arrived (bytes stored); solve its astrometry."""

    routing_key = "image.received.v1"
    extension: int | str | None = None  # the science HDU, when the observer named it


class ImageSolvedV1(ImageReceivedV1):
    """The image has a WCS checked against the reference stars; measure it."""

    routing_key = "image.solved.v1"
    wcs_header: dict[str, float | int | str | bool] = {}
    astrometry: dict = {}  # rms_arcsec, n_stars, method, header_wcs verdict, sip_degree...
    observation: dict = {}  # the standardised header record


class CatalogueMeasuredV1(UploadReceivedV1):
    """Photometry of an image: a catalogue like an uploaded one, plus forced photometry at the event."""

    routing_key = "catalogue.measured.v1"
    catalogue_file_id: str
    target: dict = {}  # forced photometry: flux, flux_err, snr, detected, limit_mag_inst, limit_sigma
    image_metadata: dict = {}  # fwhm_arcsec, background, limiting magnitude, airmass...
