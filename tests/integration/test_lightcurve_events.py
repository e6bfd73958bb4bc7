"""Lightcurve's own copy of the events: order and repetition of messages, points before their event,
aliases, and filling an empty copy from ingest's replay (``cpcs republish-events``)."""
import asyncio
from datetime import UTC, datetime

import pytest

from services.ingest.event_messages import republish_all
from services.lightcurve.events import EventCopies
from shared.contracts import EventCreatedV1, EventRef, EventUpdatedV1
from tests.support.system import running_system, settings_for
from tests.support.voevents import wait_count

pytestmark = pytest.mark.integration
PUBLISHED = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)


def created(**changes) -> EventCreatedV1:
    values = {"ivorn": "ivo://SWIFT_1", "ra_deg": 10.0, "dec_deg": -5.0, "source": "voevent", "alert_id": 3,
              "name": "SWIFT_1", "published": PUBLISHED, "error_radius_deg": 0.05, "n_packets": 1, "revision": 1,
              "target_usable": False, "no_target_reason": "error circle 3 arcmin",
              "aliases": ["ivo://SWIFT_1", "SWIFT_1", "ivo://gcn/BAT_1"]}
    return EventCreatedV1(**values | changes)


def updated(**changes) -> EventUpdatedV1:
    values = {"ivorn": "ivo://SWIFT_1", "packet_ivorn": "ivo://gcn/XRT_1", "ra_deg": 10.01, "dec_deg": -5.01,
              "error_radius_deg": 0.001, "position_changed": True, "target_usable": True, "n_packets": 2,
              "alert_id": 3, "name": "SWIFT_1", "published": PUBLISHED, "source": "voevent", "revision": 2,
              "aliases": ["ivo://SWIFT_1", "SWIFT_1", "ivo://gcn/BAT_1", "ivo://gcn/XRT_1"]}
    return EventUpdatedV1(**values | changes)


async def test_a_late_created_message_does_not_undo_the_update_and_repeats_change_nothing(mongo_db):
    copies = EventCopies(mongo_db)
    [first] = await copies.on_event_message(updated())
    [late] = await copies.on_event_message(created())
    assert (first.applied, first.revision, late.applied) == (True, 2, False)
    [again] = await copies.on_event_message(updated())
    assert again.applied
    event = await copies.find(ivorn="ivo://SWIFT_1")
    assert (event["ra_deg"], event["error_radius_deg"], event["target_usable"], event["n_packets"]) == \
        (10.01, 0.001, True, 2)
    for alias in ("SWIFT_1", "ivo://gcn/BAT_1", "ivo://gcn/XRT_1"):  # the aliases of both messages
        assert (await copies.find(ivorn=alias))["_id"] == "ivo://SWIFT_1"
    assert (await copies.find(alert_id=3))["_id"] == "ivo://SWIFT_1"
    assert await copies.count() == 1


async def test_a_point_before_its_event_leaves_a_minimal_copy_that_the_event_replaces(mongo_db):
    copies = EventCopies(mongo_db)
    await copies.note(EventRef(ivorn="ivo://SWIFT_1", ra_deg=10.0, dec_deg=-5.0))
    minimal = await copies.find(ivorn="ivo://SWIFT_1")
    assert (minimal["ra_deg"], minimal["alert_id"], minimal["revision"]) == (10.0, None, -1)
    assert await copies.newest_first(offset=0, limit=10) == []  # not listed before its own message
    await copies.on_event_message(created())
    await copies.note(EventRef(ivorn="ivo://SWIFT_1", ra_deg=11.0, dec_deg=-6.0))  # another point: no change
    event = await copies.find(ivorn="ivo://SWIFT_1")
    assert (event["ra_deg"], event["alert_id"], event["name"]) == (10.0, 3, "SWIFT_1")
    assert [e["_id"] for e in await copies.newest_first(offset=0, limit=10)] == ["ivo://SWIFT_1"]
    assert event["published"].replace(tzinfo=UTC) == PUBLISHED  # this test's client reads naive UTC


async def test_a_point_of_an_event_this_process_saw_copied_reads_nothing(mongo_url, unique_name):
    from pymongo import AsyncMongoClient

    from tests.integration.test_gridfs_writes import Commands
    commands = Commands()
    client = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000, event_listeners=[commands])
    try:
        copies = EventCopies(client[unique_name])
        await copies.note(EventRef(ivorn="ivo://SWIFT_1", ra_deg=10.0, dec_deg=-5.0))
        assert commands.names == ["find", "insert"]
        await copies.note(EventRef(ivorn="ivo://SWIFT_1", ra_deg=10.0, dec_deg=-5.0))
        await copies.on_event_message(created(ivorn="ivo://SWIFT_2", aliases=[]))
        commands.names.clear()
        await copies.note(EventRef(ivorn="ivo://SWIFT_2", ra_deg=10.0, dec_deg=-5.0))  # copied from its message
        assert commands.names == []
        other = EventCopies(client[unique_name])  # another process finds the copy and inserts nothing
        await other.note(EventRef(ivorn="ivo://SWIFT_1", ra_deg=10.0, dec_deg=-5.0))
        assert commands.names == ["find"] and await copies.count() == 2
    finally:
        await client.drop_database(unique_name)
        await client.close()


async def test_an_alias_stays_with_the_event_that_held_it_first(mongo_db):
    copies = EventCopies(mongo_db)
    await copies.on_event_message(created())
    await copies.on_event_message(created(ivorn="ivo://Other", alert_id=4, aliases=["ivo://Other", "SWIFT_1"]))
    assert (await copies.find(ivorn="SWIFT_1"))["_id"] == "ivo://SWIFT_1"


async def test_an_empty_copy_is_filled_from_ingest_replaying_its_events(mongo_url, amqp_url, unique_name):
    settings = settings_for(mongo_url, amqp_url, unique_name)
    async with running_system(settings, services=("ingest", "lightcurve")) as system:
        from pymongo import AsyncMongoClient

        from services.ingest.store import IngestStore

        client = AsyncMongoClient(mongo_url, tz_aware=True)
        try:
            db = client[unique_name]
            store = IngestStore(db)
            for n in range(3):  # events stored before the lightcurve service kept its own copy
                await store.create_event(f"ivo://Old{n}", 20.0 + n, 1.0, "", "manual")
            url = f"http://127.0.0.1:{settings.lightcurve_port}"
            async with system.http.get(f"{url}/list_of_alerts", params={"format": "json"}) as response:
                assert await response.json() == []
            assert await republish_all(settings) == 3
            await wait_count(system.probe, "lightcurve.event.stored.v1", 3)
            async with system.http.get(f"{url}/list_of_alerts", params={"format": "json"}) as response:
                rows = await response.json()
            events = await db.events.find({}).sort("alert_id", -1).to_list(None)
            assert rows == [{"id": e["alert_id"], "ivorn": e["_id"], "published": e["published"].isoformat(),
                             "ra": e["ra_deg"], "dec": e["dec_deg"], "nfollowup": 0} for e in events]
            assert await republish_all(settings) == 3  # a second replay changes nothing
            await wait_count(system.probe, "lightcurve.event.stored.v1", 6)
            assert await db.lightcurve_events.count_documents({}) == 3
        finally:
            await client.close()


async def test_a_stored_point_of_an_unseen_event_still_has_a_light_curve(mongo_db):
    import json
    from pathlib import Path

    from services.lightcurve.handlers import PointKeeper
    from services.lightcurve.observations import Announcements, ObservationRecords
    from services.lightcurve.store import LightcurveStore
    from services.lightcurve.views import cpcs_columns
    from shared.contracts import ObservationCalibratedV1

    def read_sample() -> str:
        return (Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
                / "observation.calibrated.v1.json").read_text()

    raw = json.loads(await asyncio.to_thread(read_sample))
    store = LightcurveStore(mongo_db)
    announcements = Announcements(ObservationRecords(mongo_db))
    await ObservationRecords(mongo_db).announce({"_id": raw["observation_id"], "followup_id": raw["followup_id"],
                                                 "event_ivorn": raw["event"]["ivorn"],
                                                 "observatory_id": raw["observatory"]["id"]})
    [stored] = await PointKeeper(store, announcements).on_observation_calibrated(
        ObservationCalibratedV1.model_validate(raw))
    event = await store.event(ivorn=raw["event"]["ivorn"])
    assert stored.action == "stored" and event["ra_deg"] == raw["event"]["ra_deg"]
    assert cpcs_columns(event["_id"], await store.points_of(event["_id"]))["id"] == [raw["followup_id"]]
