"""Message contracts: one registry from routing key to model, golden samples beside it.

Versioning rule. The routing key carries the major version (``observation.calibrated.v1``).

* Within a major version a contract only grows: new fields are optional (they have a default), and
  readers ignore fields they do not know (``extra="ignore"`` in ``base.CONTRACT_CONFIG``), so an older
  reader keeps working when a newer publisher adds a field; the unknown field is dropped on reading
  and not published on by that reader.
* A breaking change (a field removed or renamed, a type changed or narrowed, a new required field)
  is a new routing key ``<name>.v2`` with its own model and golden sample
  (``samples/<name>.v2.json``). While both versions are published, both stay in the registry and both
  samples are tested; consumers bind the version they read.
* A message that misses a required field or has a wrong type does not match its contract: it is
  dead-lettered with the reason (``shared.messaging.decode``).

``tests/contract/test_golden_samples.py`` checks the rule: every sample of every version validates,
an unknown field is ignored and not re-emitted, and the required fields of each published version
are the ones recorded in ``tests/contract/required_fields.json``.
"""
from __future__ import annotations

from shared.contracts.alerts import (
    AlertPhotometryReceivedV1,
    AlertPhotometryStoredV1,
    AlertPoint,
    EventUpdatedV1,
    LightcurveEventStoredV1,
    VoeventFeedChangedV1,
    VoeventProcessedV1,
)
from shared.contracts.base import Message
from shared.contracts.recalibration import RecalibrationDoneV1, RecalibrationRequestedV1
from shared.contracts.v1 import (
    AstrometrySummary,
    CalibrationSummary,
    CatalogueMeasuredV1,
    EventCreatedV1,
    EventRef,
    FieldCircle,
    ForcedTarget,
    ImageMetadata,
    ImageProduct,
    ImageProductsV1,
    ImageQuality,
    ImageReceivedV1,
    ImageSolvedV1,
    LightcurveUpdatedV1,
    ObservationCalibratedV1,
    ObservationDeletedV1,
    ObservationFailedV1,
    ObservationRecord,
    ObservatoryRef,
    PlotDeclinedV1,
    PlotRenderedV1,
    PlotRequestedV1,
    SolveTry,
    UploadReceivedV1,
)

REGISTRY: dict[str, type[Message]] = {
    model.routing_key: model
    for model in (
        UploadReceivedV1,
        ObservationCalibratedV1,
        ObservationFailedV1,
        ObservationDeletedV1,
        LightcurveUpdatedV1,
        PlotRenderedV1,
        PlotRequestedV1,
        PlotDeclinedV1,
        EventCreatedV1,
        EventUpdatedV1,
        LightcurveEventStoredV1,
        VoeventProcessedV1,
        AlertPhotometryReceivedV1,
        AlertPhotometryStoredV1,
        VoeventFeedChangedV1,
        ImageReceivedV1,
        ImageSolvedV1,
        CatalogueMeasuredV1,
        ImageProductsV1,
        RecalibrationRequestedV1,
        RecalibrationDoneV1,
    )
}

__all__ = [
    "EventUpdatedV1", "VoeventProcessedV1", "AlertPoint", "AlertPhotometryReceivedV1", "AlertPhotometryStoredV1",
    "VoeventFeedChangedV1", "LightcurveEventStoredV1",
    "REGISTRY", "Message", "EventRef", "FieldCircle", "ObservatoryRef", "CalibrationSummary", "UploadReceivedV1",
    "ObservationCalibratedV1", "ObservationFailedV1", "ObservationDeletedV1", "EventCreatedV1",
    "ImageReceivedV1", "ImageSolvedV1", "CatalogueMeasuredV1", "ObservationRecord", "AstrometrySummary", "SolveTry",
    "ForcedTarget", "ImageMetadata", "RecalibrationRequestedV1", "RecalibrationDoneV1", "LightcurveUpdatedV1",
    "PlotRenderedV1", "PlotRequestedV1", "PlotDeclinedV1", "ImageProduct", "ImageProductsV1", "ImageQuality",
]
