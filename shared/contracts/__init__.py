"""Message contracts: one registry from routing key to model, golden samples beside it."""
from __future__ import annotations

from shared.contracts.alerts import (
    AlertPhotometryReceivedV1,
    AlertPhotometryStoredV1,
    AlertPoint,
    EventUpdatedV1,
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
    ForcedTarget,
    ImageMetadata,
    ImageReceivedV1,
    ImageSolvedV1,
    LightcurveUpdatedV1,
    ObservationCalibratedV1,
    PlotRenderedV1,
    ObservationDeletedV1,
    ObservationFailedV1,
    ObservationRecord,
    ObservatoryRef,
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
        EventCreatedV1,
        EventUpdatedV1,
        VoeventProcessedV1,
        AlertPhotometryReceivedV1,
        AlertPhotometryStoredV1,
        VoeventFeedChangedV1,
        ImageReceivedV1,
        ImageSolvedV1,
        CatalogueMeasuredV1,
        RecalibrationRequestedV1,
        RecalibrationDoneV1,
    )
}

__all__ = [
    "EventUpdatedV1", "VoeventProcessedV1", "AlertPoint", "AlertPhotometryReceivedV1", "AlertPhotometryStoredV1",
    "VoeventFeedChangedV1",
    "REGISTRY", "Message", "EventRef", "ObservatoryRef", "CalibrationSummary", "UploadReceivedV1",
    "ObservationCalibratedV1", "ObservationFailedV1", "ObservationDeletedV1", "EventCreatedV1",
    "ImageReceivedV1", "ImageSolvedV1", "CatalogueMeasuredV1", "ObservationRecord", "AstrometrySummary", "SolveTry",
    "ForcedTarget", "ImageMetadata", "RecalibrationRequestedV1", "RecalibrationDoneV1", "LightcurveUpdatedV1", "PlotRenderedV1",
]
