"""What calibration's handlers need from outside, as the methods they call.

``services.calibration.store.CalibrationStore`` is the store, ``shared.refcat.providers.ReferenceSource``
the reference catalogue; the unit tests give the handlers fakes of these ports.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shared.refcat.query import QueryResult


class InputBytes(Protocol):
    """The bytes to calibrate: an upload (ingest's ``uploads``/``scratch``) or a measured catalogue."""

    async def upload_bytes(self, file_id: str, bucket: str, sha256: str | None = None) -> bytes | None: ...

    async def catalogue_bytes(self, file_id: str) -> bytes | None: ...


class Calibrations(Protocol):
    """The current calibration of each observation, keyed by its id."""

    async def find(self, observation_id: str) -> dict[str, Any] | None: ...

    async def save(self, doc: dict[str, Any], *, dry_run: bool, first: bool = False) -> None: ...

    async def delete(self, observation_id: str) -> None: ...

    async def purge_expired_dry_runs(self) -> int: ...


class CalibrationHistory(Protocol):
    """Recalibrations: the current calibration replaced (the old one kept), or a failed attempt."""

    async def replace_current(self, doc: dict[str, Any], *, reason: str) -> None: ...

    async def record_attempt(self, observation_id: str, recalibration_id: str, result: dict[str, Any]) -> None: ...


class Plots(Protocol):
    async def find_with_stars(self, observation_id: str) -> dict[str, Any] | None: ...

    async def has_plot(self, observation_id: str) -> bool: ...

    async def save_plot(self, observation_id: str, png: bytes) -> None: ...


class CalibrationStorage(InputBytes, Calibrations, CalibrationHistory, Plots, Protocol):
    """Everything calibration keeps or reads, as one object (``CalibrationStore``)."""


class ReferenceCone(Protocol):
    """Reference stars around a field, with each survey's coverage."""

    async def cone(self, ra_deg: float, dec_deg: float, radius_deg: float, *,
                   epoch_jyear: float | None = None) -> QueryResult: ...
