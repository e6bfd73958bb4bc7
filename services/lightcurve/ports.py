"""What lightcurve's point handler needs from outside (``services.lightcurve.store.LightcurveStore``
is the adapter; the unit tests use a fake)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from shared.contracts import EventRef


class EventNotes(Protocol):
    """Lightcurve's copy of the events: an event known only from a point is noted (never overwritten)."""

    async def note(self, ref: EventRef) -> None: ...


class PointStore(Protocol):
    """The calibrated points, keyed by follow-up id, and the ids deleted."""

    @property
    def copies(self) -> EventNotes: ...

    async def upsert_point(self, doc: dict) -> None: ...

    async def delete_point(self, followup_id: int) -> None: ...

    async def was_deleted(self, followup_id: int) -> bool: ...
