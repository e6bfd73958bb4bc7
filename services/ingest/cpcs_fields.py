"""Reading the original CPCS form fields (``EventID``, ``MJD``, ``expTime``, ``matchDist``, ...) into an
upload request; the CPCS form, the REST upload and the AMQP intake all send these names."""
from __future__ import annotations

import re
from collections.abc import Mapping

from services.ingest.checks import MAX_EXPOSURE_S
from services.ingest.errors import InvalidInput
from services.ingest.usecases.uploads import UploadRequest

_FILTER_RE = re.compile(r"^(no|[A-Za-z0-9_.+-]+/[A-Za-z0-9_'+-]+)$")
_TRUE = {"1", "true", "yes", "on", "y", "t"}


def flag(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def _number(fields: Mapping[str, str], name: str, *, positive: bool = False,
            upper: float | None = None) -> float | None:
    raw = (fields.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"{name} must be a finite number, got {raw!r}")
    if positive and value <= 0:
        raise InvalidInput(f"{name} must be positive, got {raw!r}")
    if upper is not None and value > upper:
        raise InvalidInput(f"{name} must be at most {upper:g}, got {raw!r}")
    return value


def request_from_fields(fields: Mapping[str, str], data: bytes, filename: str, token: str) -> UploadRequest:
    """Build a request from the original CPCS field names, refusing malformed values with a reason."""
    ivorn = (fields.get("EventID") or "").strip()
    if not ivorn:
        raise InvalidInput("EventID is missing: give the IVORN of the event, e.g. ivo://Gaia16aye")
    force_filter = (fields.get("forceFilter") or "no").strip() or "no"
    if not _FILTER_RE.match(force_filter):
        raise InvalidInput(f"forceFilter must be 'no', 'SURVEY/band', 'any/band' or 'SURVEY/any', "
                           f"got {force_filter!r}")
    return UploadRequest(
        data=data, filename=filename or "catalogue", event_ivorn=ivorn, token=token,
        mjd=_number(fields, "MJD"), exptime_s=_number(fields, "expTime", positive=True, upper=MAX_EXPOSURE_S),
        match_radius_arcsec=_number(fields, "matchDist", positive=True, upper=60),
        force_filter=force_filter, dry_run=flag(fields.get("dryRun")), no_plot=flag(fields.get("noPlot")),
        comment=(fields.get("comment") or "")[:2000],
        declared_filter=(fields.get("filter") or "").strip() or None)
