"""The live hub: every page open on an event hears that event's changes, and only those; a closing
server ends every stream."""
from __future__ import annotations

from services.ingest.web.live import QUEUE_SIZE, LiveHub
from shared.contracts import AlertPhotometryStoredV1, LightcurveUpdatedV1


async def test_changes_reach_the_pages_of_their_event_only():
    hub = LiveHub()
    first, second, other = hub.listen("ivo://A"), hub.listen("ivo://A"), hub.listen("ivo://B")
    assert await hub.on_lightcurve_updated(LightcurveUpdatedV1(event_ivorn="ivo://A", followup_id=7,
                                                               action="removed")) == []
    assert first.get_nowait() == second.get_nowait() == {"action": "removed", "followup_id": 7}
    assert other.empty()
    await hub.on_alert_points_stored(AlertPhotometryStoredV1(event_ivorn="ivo://B", packet_ivorn="ivo://B#1",
                                                             point_ids=["x", "y"]))
    assert other.get_nowait() == {"action": "stored", "alert_points": 2} and first.empty()
    hub.leave("ivo://A", first)
    hub.tell("ivo://A", {"n": 1})
    assert first.empty() and second.get_nowait() == {"n": 1} and hub.listening("ivo://A") == 1


async def test_a_page_that_lags_is_not_blocking_and_closing_ends_every_stream():
    hub = LiveHub()
    slow = hub.listen("ivo://A")
    for n in range(QUEUE_SIZE + 5):
        hub.tell("ivo://A", {"n": n})  # never waits for the page
    assert slow.full()
    hub.close()
    items = [slow.get_nowait() for _ in range(slow.qsize())]
    assert items[-1] is None and hub.closed
