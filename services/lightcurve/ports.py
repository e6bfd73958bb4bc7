"""What lightcurve's handlers need from outside: ``services.lightcurve.store.LightcurveStore``,
``services.lightcurve.events.EventCopies``, ``services.lightcurve.alerts.AlertPointCollection`` and
``services.lightcurve.observations.ObservationRecords`` are the adapters; the unit tests use fakes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shared.contracts import EventRef


class EventNotes(Protocol):
    """Lightcurve's copy of the events: an event known only from a point is noted (never overwritten)."""

    async def note(self, ref: EventRef) -> None: ...


class PointStore(Protocol):
    """The calibrated points, keyed by follow-up id, and the ids deleted."""

    @property
    def copies(self) -> EventNotes: ...

    async def upsert_point(self, doc: dict[str, Any]) -> None: ...

    async def delete_point(self, followup_id: int) -> None: ...

    async def was_deleted(self, followup_id: int) -> bool: ...


class EventCopyStore(Protocol):
    """Lightcurve's copies of the events, keyed by IVORN, written by compare-and-set on ``revision``,
    and the aliases that find them (first come, first held)."""

    async def find_revision(self, ivorn: str) -> dict[str, Any] | None: ...

    async def insert(self, doc: dict[str, Any]) -> bool: ...

    async def replace_at(self, doc: dict[str, Any], revision: int | None) -> bool: ...

    async def hold_aliases(self, ivorn: str, aliases: list[str]) -> None: ...


class AlertPointStore(Protocol):
    """The alert stream's own points, keyed by id (packet, band, epoch): a point stored again replaces itself."""

    async def replace_alert_point(self, doc: dict[str, Any]) -> None: ...


class AnnouncementStore(Protocol):
    """The observations ingest announced, keyed by observation id (``services.lightcurve.observations``)."""

    async def announce(self, doc: dict[str, Any]) -> None: ...

    async def announced(self, observation_id: str) -> dict[str, Any] | None: ...
