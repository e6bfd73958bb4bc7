"""Events added by hand (CPCS /cgi/newevent, REST POST /api/v1/events) and the list of events."""
from __future__ import annotations

from services.ingest.errors import InvalidInput
from services.ingest.event_messages import event_created
from services.ingest.store import IngestStore


def coordinate(raw, name: str, low: float, high: float) -> float:
    """A coordinate in decimal degrees within [low, high], or ``InvalidInput`` with the reason."""
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise InvalidInput(f"{name} must be in decimal degrees, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low:g} and {high:g} degrees, got {raw!r}")
    return value


def checked_event(ivorn, ra, dec) -> tuple[str, float, float]:
    """An event's IVORN and position as every intake accepts them, or ``InvalidInput`` with the reason."""
    ivorn = str(ivorn or "").strip()
    if not ivorn.startswith("ivo://") or len(ivorn) < 7:
        raise InvalidInput(f"the event id must be an IVORN such as ivo://Gaia16aye, got {ivorn!r}")
    ra_deg = coordinate(ra, "ra", 0, 360) % 360.0
    dec_deg = coordinate(dec, "dec", -90, 90)
    if ra_deg == 0 and dec_deg == 0:
        raise InvalidInput("ra=0, dec=0 is not a usable position for an event")
    return ivorn, ra_deg, dec_deg


async def create_event(store: IngestStore, publish, *, ivorn, ra, dec, url: str, source: str) -> tuple[dict, bool]:
    """The event (created, or the one already known by that IVORN) and whether it was created; a new
    event is announced with ``event.created.v1``."""
    ivorn, ra_deg, dec_deg = checked_event(ivorn, ra, dec)
    event, created = await store.create_event(ivorn, ra_deg, dec_deg, url, source)
    if created:
        await publish(event_created(event))
    return event, created


async def list_events(store: IngestStore, *, offset: int, limit: int) -> list[dict]:
    return await store.list_events(offset=max(0, offset), limit=min(1000, max(1, limit)))
