"""Contracts of recalibration: re-running stored uploads with the current (or changed) parameters."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contracts.base import Message
from shared.contracts.v1 import CalibrationSummary, EventRef, ObservatoryRef

ParamValue = float | int | bool | str


class RecalibrationRequestedV1(Message):
    """Calibrate a stored upload again; the previous calibration is kept as history."""

    routing_key = "recalibration.requested.v1"
    recalibration_id: str
    observation_id: str
    followup_id: int
    correlation_id: str
    dry_run: bool = True
    event: EventRef
    observatory: ObservatoryRef
    file_id: str
    filename: str = "catalogue"
    mjd: float
    exptime_s: float | None = None
    match_radius_arcsec: float | None = Field(default=None, gt=0, le=60)
    force_filter: str = "no"
    declared_filter: str | None = None
    observatory_filters: list[str] | None = None  # as at the upload, so the compatible bands stay the same
    param_overrides: dict[str, ParamValue] = {}
    reason: str = ""


class RecalibrationDoneV1(Message):
    """One observation's recalibration finished: previewed (dry run), applied, or failed (kept as it was)."""

    routing_key = "recalibration.done.v1"
    recalibration_id: str
    observation_id: str
    followup_id: int
    dry_run: bool
    outcome: Literal["previewed", "applied", "failed"]
    reason: str | None = None
    before: CalibrationSummary | None = None
    after: CalibrationSummary | None = None
    params_hash: str | None = None
