"""What ingest's message handlers need from outside, as the methods they call.

``services.ingest.store.IngestStore`` is the store, ``services.ingest.voevents.log.PacketLog`` the
packet log, ``shared.messaging.Broker.publish`` the publisher and ``Broker.reply`` the replier,
``services.ingest.usecases.uploads.Uploads`` the upload use case and ``services.ingest.results.ResultWaiters``
the waiters of outcomes; the unit tests use fakes.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from services.ingest.usecases.uploads import Accepted, UploadRequest
    from shared.contracts import Message, ObservationCalibratedV1, ObservationFailedV1


class Publish(Protocol):
    """Publish one message (returns once the broker confirmed it)."""

    async def __call__(self, message: Message, *, correlation_id: str | None = None) -> None: ...


class OutcomeRecords(Protocol):
    """Each observation's status, and the ``(sha256, event)`` reservation of its bytes."""

    async def record_outcome(self, observation_id: str, status: str, result: dict[str, Any] | None,
                             reason: str | None) -> None: ...

    async def release_upload(self, observation_id: str) -> None: ...


class ScratchBytes(Protocol):
    """The ``scratch`` bucket of dry runs' bytes."""

    async def delete_bytes(self, file_id: str, *, scratch: bool = False) -> None: ...

    async def purge_stale_scratch(self) -> int: ...


class StatusStore(OutcomeRecords, ScratchBytes, Protocol):
    """What the status handler keeps: outcomes and scratch copies (``IngestStore``)."""


class ProductRecords(Protocol):
    """The products of images (claim checks into photometry's ``products``), kept per observation."""

    async def find_observation(self, observation_id: str) -> dict[str, Any] | None: ...

    async def record_products(self, doc: dict[str, Any]) -> None: ...

    async def purge_expired_products(self) -> int: ...


class EventStore(Protocol):
    """The events, their aliases and the counter of their numeric ids."""

    async def next_alert_id(self) -> int: ...

    async def get_event(self, event_id: str) -> dict[str, Any] | None: ...

    async def events_known_as(self, names: list[str]) -> dict[str, str]: ...

    async def insert_event(self, doc: dict[str, Any]) -> None: ...

    async def replace_event(self, doc: dict[str, Any], *, revision: int | None) -> bool: ...

    async def add_aliases(self, event_id: str, aliases: list[str]) -> dict[str, str]: ...


class PacketRecords(Protocol):
    """The outcome of every packet handled, keyed by its IVORN."""

    async def get(self, ivorn: str) -> dict[str, Any] | None: ...

    async def record(self, ivorn: str, *, outcome: str, reason: str, event: str | None, via: str) -> None: ...


class RawDelivery(Protocol):
    """An AMQP delivery as the raw intake sees it."""

    @property
    def headers(self) -> Mapping[str, Any] | None: ...

    @property
    def body(self) -> bytes: ...


class RecalibrationResults(Protocol):
    """One result per (recalibration, observation): a result delivered again replaces its own."""

    async def put_recalibration_result(self, doc: dict[str, Any]) -> None: ...


class AcceptUpload(Protocol):
    """The upload use case: check, store and send one upload on its way (or raise an ``IngestError``)."""

    async def accept(self, req: UploadRequest, correlation_id: str | None = None) -> Accepted: ...


class OutcomeWaiters(Protocol):
    """Who waits for which correlation id's outcome (``None`` after the timeout)."""

    def expect(self, correlation_id: str) -> bool: ...

    async def wait(self, correlation_id: str,
                   timeout_s: float) -> ObservationCalibratedV1 | ObservationFailedV1 | None: ...

    def forget(self, correlation_id: str) -> None: ...


class Reply(Protocol):
    """Send an answer straight to a caller's queue."""

    async def reply(self, reply_to: str, body: bytes, *, correlation_id: str | None) -> None: ...


class UploadDelivery(RawDelivery, Protocol):
    """An AMQP upload as the intake sees it: the bytes, the CPCS fields in headers, where to answer."""

    @property
    def correlation_id(self) -> str | None: ...

    @property
    def reply_to(self) -> str | None: ...
