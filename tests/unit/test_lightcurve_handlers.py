"""Lightcurve's handlers with fakes of their ports: a calibrated point joins its event's curve once
however often it is delivered, a recalibration replaces it, a deleted point leaves and stays away; the
event copies keep the highest revision; an alert's own points are stored once per packet, band and epoch.
A result or deletion for an observation ingest never announced, or naming another follow-up id, event or
observatory than announced, is refused."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from services.lightcurve.alerts import AlertPoints
from services.lightcurve.handlers import PointKeeper
from services.lightcurve.observations import Announcements, NotAnnounced, record
from shared.contracts import (
    REGISTRY,
    AlertPhotometryReceivedV1,
    AlertPhotometryStoredV1,
    EventRef,
    LightcurveUpdatedV1,
    ObservationCalibratedV1,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
EVENT = "ivo://Gaia16aye"


def sample(key: str, **changes):
    return REGISTRY[key].model_validate(json.loads((SAMPLES / f"{key}.json").read_text()) | changes)


class FakeEventNotes:
    def __init__(self):
        self.noted: list[EventRef] = []

    async def note(self, ref: EventRef) -> None:
        self.noted.append(ref)


class FakePointStore:
    """In memory, the methods of ``PointStore``."""

    def __init__(self):
        self.points: dict[int, dict] = {}
        self.deleted: set[int] = set()
        self.upserts = 0
        self._copies = FakeEventNotes()

    @property
    def copies(self) -> FakeEventNotes:
        return self._copies

    async def upsert_point(self, doc: dict) -> None:
        self.upserts += 1
        self.points[doc["_id"]] = copy.deepcopy(doc)

    async def delete_point(self, followup_id: int) -> None:
        self.deleted.add(followup_id)
        self.points.pop(followup_id, None)

    async def was_deleted(self, followup_id: int) -> bool:
        return followup_id in self.deleted


class FakeAnnouncementStore:
    """In memory, the methods of ``AnnouncementStore``."""

    def __init__(self):
        self.records: dict[str, dict] = {}

    async def announce(self, doc: dict) -> None:
        self.records[doc["_id"]] = copy.deepcopy(doc)

    async def announced(self, observation_id: str) -> dict | None:
        return self.records.get(observation_id)


def keeper_of(store: FakePointStore, *announced: ObservationCalibratedV1) -> PointKeeper:
    """A keeper to which ingest announced the observations of these messages (as its upload.received.v1)."""
    records = FakeAnnouncementStore()
    for message in announced:
        upload = sample("upload.received.v1", observation_id=message.observation_id, followup_id=message.followup_id,
                        event=message.event, observatory=message.observatory, dry_run=False)
        records.records[message.observation_id] = record(upload)
    return PointKeeper(store, Announcements(records))


def calibrated(**changes) -> ObservationCalibratedV1:
    return sample("observation.calibrated.v1", **changes)


def without_stored_at(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "stored_at"}


async def test_a_calibrated_point_joins_its_event_and_the_event_is_noted():
    store = FakePointStore()
    message = calibrated()
    [update] = await keeper_of(store, message).on_observation_calibrated(message)
    assert update == LightcurveUpdatedV1(event_ivorn=EVENT, followup_id=42, action="stored",
                                         message_id=update.message_id, occurred_at=update.occurred_at)
    point = store.points[42]
    assert (point["observation_id"], point["event_ivorn"], point["mag"], point["mag_err"], point["filter"]) == \
        (message.observation_id, EVENT, 17.012, 0.021, "r")
    assert (point["observatory"], point["params_hash"], point["is_limit"]) == ("Demo 0.6 m", "3e1f0c9a7b2d4e6f", False)
    assert store.copies.noted == [message.event]  # the curve answers before the event's own message


async def test_a_point_delivered_again_is_stored_once_with_the_same_values():
    store = FakePointStore()
    message = calibrated()
    keeper = keeper_of(store, message)
    [first] = await keeper.on_observation_calibrated(message)
    stored = copy.deepcopy(store.points)
    [again] = await keeper.on_observation_calibrated(message)
    assert list(store.points) == [42] and without_stored_at(store.points[42]) == without_stored_at(stored[42])
    assert (again.followup_id, again.action) == (first.followup_id, first.action)


async def test_a_recalibrated_point_replaces_the_old_one():
    store = FakePointStore()
    keeper = keeper_of(store, calibrated())
    await keeper.on_observation_calibrated(calibrated())
    raw = json.loads((SAMPLES / "observation.calibrated.v1.json").read_text())
    raw["result"] |= {"mag": 17.05, "zeropoint": -24.95}
    await keeper.on_observation_calibrated(ObservationCalibratedV1.model_validate(raw | {"params_hash": "0" * 16}))
    assert list(store.points) == [42]
    assert (store.points[42]["mag"], store.points[42]["params_hash"]) == (17.05, "0" * 16)


async def test_a_limit_is_stored_without_a_magnitude_error():
    store = FakePointStore()
    raw = json.loads((SAMPLES / "observation.calibrated.v1.json").read_text())
    raw["result"] |= {"status": "limit", "is_limit": True, "mag": 19.8, "mag_err": None, "limit_sigma": 5.0}
    await keeper_of(store, calibrated()).on_observation_calibrated(ObservationCalibratedV1.model_validate(raw))
    assert (store.points[42]["is_limit"], store.points[42]["mag_err"], store.points[42]["limit_sigma"]) == \
        (True, None, 5.0)


async def test_a_dry_run_or_a_point_without_followup_id_is_not_a_point_of_the_curve():
    store = FakePointStore()
    keeper = keeper_of(store)
    assert await keeper.on_observation_calibrated(calibrated(dry_run=True, followup_id=None)) == []
    assert await keeper.on_observation_calibrated(calibrated(followup_id=None)) == []
    assert store.points == {} and store.upserts == 0 and store.copies.noted == []


async def test_a_deleted_point_is_removed_and_a_late_calibration_cannot_bring_it_back():
    store = FakePointStore()
    keeper = keeper_of(store, calibrated(), calibrated(followup_id=43, observation_id="1" * 32))
    await keeper.on_observation_calibrated(calibrated())
    await keeper.on_observation_calibrated(calibrated(followup_id=43, observation_id="1" * 32))
    deleted = sample("observation.deleted.v1")
    [removed] = await keeper.on_observation_deleted(deleted)
    assert (removed.event_ivorn, removed.followup_id, removed.action) == (EVENT, 42, "removed")
    assert list(store.points) == [43]
    [again] = await keeper.on_observation_deleted(deleted)  # delivered again: the same answer, no error
    assert again.action == "removed" and list(store.points) == [43]
    upserts = store.upserts
    assert await keeper.on_observation_calibrated(calibrated()) == []  # a recalibration still in flight
    assert list(store.points) == [43] and store.upserts == upserts


async def test_deleting_a_point_the_curve_never_had_is_remembered():
    store = FakePointStore()
    keeper = keeper_of(store, calibrated(followup_id=99))
    [removed] = await keeper.on_observation_deleted(sample("observation.deleted.v1", followup_id=99))
    assert removed.action == "removed" and store.deleted == {99}
    assert await keeper.on_observation_calibrated(calibrated(followup_id=99)) == []  # its calibration came late
    assert store.points == {}


async def test_a_result_for_an_observation_never_announced_is_refused_and_nothing_is_stored():
    store = FakePointStore()
    keeper = keeper_of(store)  # ingest announced nothing
    with pytest.raises(NotAnnounced, match="never announced by ingest"):
        await keeper.on_observation_calibrated(calibrated())
    with pytest.raises(NotAnnounced, match="never announced by ingest"):
        await keeper.on_observation_deleted(sample("observation.deleted.v1"))
    assert store.points == {} and store.deleted == set() and store.copies.noted == []


@pytest.mark.parametrize(("changes", "reason"), [
    ({"followup_id": 4242}, "is follow-up 42, not 4242"),
    ({"event": {"ivorn": "ivo://nowhere", "ra_deg": 1.0, "dec_deg": 2.0}}, "not to the unknown event ivo://nowhere"),
    ({"observatory": {"id": 666, "name": "elsewhere"}}, "not 666"),
])
async def test_a_result_naming_another_followup_event_or_observatory_than_announced_is_dead_lettered(changes, reason):
    from shared.errors import PermanentError

    store = FakePointStore()
    keeper = keeper_of(store, calibrated())
    with pytest.raises(PermanentError, match=reason):
        await keeper.on_observation_calibrated(calibrated(**changes))
    assert store.points == {} and store.copies.noted == []


async def test_a_deletion_naming_another_event_than_announced_removes_nothing():
    from shared.errors import PermanentError

    store = FakePointStore()
    keeper = keeper_of(store, calibrated())
    await keeper.on_observation_calibrated(calibrated())
    with pytest.raises(PermanentError, match="unknown event"):
        await keeper.on_observation_deleted(sample("observation.deleted.v1", event_ivorn="ivo://nowhere"))
    assert list(store.points) == [42] and store.deleted == set()


async def test_ingests_announcements_are_kept_but_not_a_dry_runs():
    records = FakeAnnouncementStore()
    announcements = Announcements(records)
    upload = sample("upload.received.v1", dry_run=False, followup_id=7)
    await announcements.on_announcement(upload)
    await announcements.on_announcement(sample("upload.received.v1", dry_run=True, followup_id=None,
                                               observation_id="2" * 32))
    assert list(records.records) == [upload.observation_id]
    kept = records.records[upload.observation_id]
    assert (kept["followup_id"], kept["event_ivorn"], kept["observatory_id"], kept["announced_by"]) == \
        (7, upload.event.ivorn, upload.observatory.id, "upload.received.v1")


async def test_a_result_agreeing_with_an_announcement_this_process_kept_is_taken_without_reading_it_back():
    from shared.errors import PermanentError

    records = FakeAnnouncementStore()
    reads = []
    announced = records.announced

    async def counted(observation_id):
        reads.append(observation_id)
        return await announced(observation_id)

    records.announced = counted
    announcements = Announcements(records)
    upload = sample("upload.received.v1", dry_run=False, followup_id=7)
    await announcements.on_announcement(upload)
    ids = {"observation_id": upload.observation_id, "event_ivorn": upload.event.ivorn}
    await announcements.check("observation.calibrated.v1", followup_id=7, observatory_id=upload.observatory.id, **ids)
    assert reads == []  # remembered: no read
    # one that disagrees is judged by the stored record, which another process may have replaced
    records.records[upload.observation_id]["followup_id"] = 8
    await announcements.check("observation.calibrated.v1", followup_id=8, **ids)
    with pytest.raises(PermanentError, match="is follow-up 8, not 9"):
        await announcements.check("observation.calibrated.v1", followup_id=9, **ids)
    assert reads == [upload.observation_id] * 2


# ---------------------------------------------------------------- the copy of the events, by revision


class FakeEventCopyStore:
    """In memory, the methods of ``EventCopyStore``: copies written by compare-and-set on revision."""

    def __init__(self):
        self.events: dict[str, dict] = {}
        self.aliases: dict[str, str] = {}
        self.lose_races = 0  # how many compare-and-sets lose to another writer first

    async def find_revision(self, ivorn):
        doc = self.events.get(ivorn)
        return None if doc is None else {"_id": ivorn, **({"revision": doc["revision"]} if "revision" in doc else {})}

    async def insert(self, doc):
        if doc["_id"] in self.events:
            return False
        self.events[doc["_id"]] = copy.deepcopy(doc)
        return True

    async def replace_at(self, doc, revision):
        if self.lose_races:
            self.lose_races -= 1
            return False
        if self.events.get(doc["_id"], {}).get("revision") != revision:
            return False
        self.events[doc["_id"]] = copy.deepcopy(doc)
        return True

    async def hold_aliases(self, ivorn, aliases):
        for alias in aliases:
            if alias != ivorn:
                self.aliases.setdefault(alias, ivorn)


def created(**changes):
    """The first message of the event the ``event.updated.v1`` sample updates."""
    return sample("event.created.v1", **{"ivorn": "ivo://SWIFT_655721", "alert_id": 7,
                                         "aliases": ["ivo://SWIFT_655721", "SWIFT_655721"]} | changes)


def updated(**changes):
    return sample("event.updated.v1", **changes)


async def test_event_copies_keep_the_highest_revision_whatever_the_order_of_the_messages():
    from services.lightcurve.events import EventCopyKeeper

    store = FakeEventCopyStore()
    keeper = EventCopyKeeper(store)
    newer, older = updated(revision=3, n_packets=3), created(revision=1, n_packets=1)
    assert newer.ivorn == older.ivorn
    [first] = await keeper.on_event_message(newer)
    [late] = await keeper.on_event_message(older)  # a late event.created.v1 cannot undo the update
    assert (first.applied, late.applied, late.revision) == (True, False, 1)
    assert (store.events[newer.ivorn]["revision"], store.events[newer.ivorn]["n_packets"]) == (3, 3)
    [again] = await keeper.on_event_message(newer)  # the same revision again writes the same values
    assert again.applied and store.events[newer.ivorn]["n_packets"] == 3 and list(store.events) == [newer.ivorn]


async def test_an_event_message_replaces_the_minimal_copy_a_point_left():
    from services.lightcurve.events import EventCopyKeeper, minimal_projection

    store = FakeEventCopyStore()
    message = created()
    store.events[message.ivorn] = minimal_projection(EventRef(ivorn=message.ivorn, ra_deg=1.0, dec_deg=2.0))
    [stored] = await EventCopyKeeper(store).on_event_message(message)
    event = store.events[message.ivorn]
    assert stored.applied and (event["alert_id"], event["revision"]) == (message.alert_id, message.revision)
    assert all(store.aliases[a] == message.ivorn for a in message.aliases if a != message.ivorn)


async def test_an_event_copy_that_keeps_changing_is_retried_then_a_transient_error():
    import pytest

    from services.lightcurve.events import EventCopyKeeper
    from shared.errors import TransientError

    store = FakeEventCopyStore()
    keeper = EventCopyKeeper(store)
    await keeper.on_event_message(created(revision=1))
    store.lose_races = 2  # two other writers first: the third try applies
    [stored] = await keeper.on_event_message(updated(revision=2))
    assert stored.applied and store.events[stored.event_ivorn]["revision"] == 2
    store.lose_races = 1000
    with pytest.raises(TransientError, match="kept changing"):
        await keeper.on_event_message(updated(revision=3))
    assert store.events[stored.event_ivorn]["revision"] == 2


# ------------------------------------------------------------------------------ the alert's own points


class FakeAlertPointStore:
    """In memory, the method of ``AlertPointStore``: points replaced by ``_id``."""

    def __init__(self, *, fail_after: int | None = None):
        self.points: dict[str, dict] = {}
        self.writes, self.fail_after = 0, fail_after

    async def replace_alert_point(self, doc):
        if self.fail_after is not None and self.writes >= self.fail_after:
            raise ConnectionError("the database went away")
        self.writes += 1
        self.points[doc["_id"]] = copy.deepcopy(doc)


ALERT_EVENT, ALERT_PACKET = "ivo://Gaia16aac", "ivo://gaia.cam.uk/alerts#Gaia16aac"


def alert_photometry(**changes) -> AlertPhotometryReceivedV1:
    return sample("alert.photometry.received.v1", **changes)


TWO_POINTS = [{"mjd": 57403.32708, "mag": 17.32, "mag_err": 0.05, "band": "G"},
              {"mjd": 57403.32708, "mag": 19.5, "band": "BP", "is_limit": True}]


async def test_an_alerts_points_are_stored_with_their_values_and_announced_by_id():
    store = FakeAlertPointStore()
    [stored] = await AlertPoints(store).on_alert_photometry_received(alert_photometry(points=TWO_POINTS))
    ids = [f"{ALERT_PACKET}|G|57403.327080", f"{ALERT_PACKET}|BP|57403.327080"]
    assert isinstance(stored, AlertPhotometryStoredV1) and stored.point_ids == ids
    assert stored.event_ivorn == ALERT_EVENT and stored.packet_ivorn == ALERT_PACKET
    g, bp = (without_stored_at(store.points[i]) for i in ids)
    assert g == {"_id": ids[0], "event_ivorn": ALERT_EVENT, "packet_ivorn": ALERT_PACKET, "survey": "Gaia",
                 "mjd": 57403.32708, "mag": 17.32, "mag_err": 0.05, "filter": "G", "is_limit": False}
    assert bp["is_limit"] and bp["mag"] == 19.5 and bp["mag_err"] is None and bp["filter"] == "BP"


async def test_an_alert_delivered_again_replaces_its_own_points_and_adds_none():
    store = FakeAlertPointStore()
    points = AlertPoints(store)
    [first] = await points.on_alert_photometry_received(alert_photometry(points=TWO_POINTS))
    before = {k: without_stored_at(v) for k, v in store.points.items()}
    [again] = await points.on_alert_photometry_received(alert_photometry(points=TWO_POINTS))
    assert again.point_ids == first.point_ids and set(store.points) == set(first.point_ids)
    assert {k: without_stored_at(v) for k, v in store.points.items()} == before


async def test_another_packet_or_epoch_of_the_same_event_is_another_point():
    store = FakeAlertPointStore()
    points = AlertPoints(store)
    await points.on_alert_photometry_received(alert_photometry())
    await points.on_alert_photometry_received(alert_photometry(packet_ivorn=ALERT_PACKET + "-2"))
    await points.on_alert_photometry_received(alert_photometry(
        points=[{"mjd": 57404.5, "mag": 17.1, "band": "G"}]))
    assert len(store.points) == 3 and {p["event_ivorn"] for p in store.points.values()} == {ALERT_EVENT}


async def test_a_store_failure_announces_nothing_and_the_redelivery_completes_the_same_points():
    store = FakeAlertPointStore(fail_after=1)
    points = AlertPoints(store)
    with pytest.raises(ConnectionError):  # not acknowledged: the delivery comes again
        await points.on_alert_photometry_received(alert_photometry(points=TWO_POINTS))
    assert len(store.points) == 1
    store.fail_after = None
    [stored] = await points.on_alert_photometry_received(alert_photometry(points=TWO_POINTS))
    assert set(store.points) == set(stored.point_ids) and len(stored.point_ids) == 2
