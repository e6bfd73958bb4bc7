"""Lightcurve's point handler with a fake of its port: a calibrated point joins its event's curve once
however often it is delivered, a recalibration replaces it, a deleted point leaves and stays away."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from shared.contracts import REGISTRY, EventRef, LightcurveUpdatedV1, ObservationCalibratedV1
from services.lightcurve.handlers import PointKeeper

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


def calibrated(**changes) -> ObservationCalibratedV1:
    return sample("observation.calibrated.v1", **changes)


def without_stored_at(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "stored_at"}


async def test_a_calibrated_point_joins_its_event_and_the_event_is_noted():
    store = FakePointStore()
    message = calibrated()
    [update] = await PointKeeper(store).on_observation_calibrated(message)
    assert update == LightcurveUpdatedV1(event_ivorn=EVENT, followup_id=42, action="stored",
                                         message_id=update.message_id, occurred_at=update.occurred_at)
    point = store.points[42]
    assert (point["observation_id"], point["event_ivorn"], point["mag"], point["mag_err"], point["filter"]) == \
        (message.observation_id, EVENT, 17.012, 0.021, "r")
    assert (point["observatory"], point["params_hash"], point["is_limit"]) == ("Demo 0.6 m", "3e1f0c9a7b2d4e6f", False)
    assert store.copies.noted == [message.event]  # the curve answers before the event's own message


async def test_a_point_delivered_again_is_stored_once_with_the_same_values():
    store = FakePointStore()
    keeper = PointKeeper(store)
    message = calibrated()
    [first] = await keeper.on_observation_calibrated(message)
    stored = copy.deepcopy(store.points)
    [again] = await keeper.on_observation_calibrated(message)
    assert list(store.points) == [42] and without_stored_at(store.points[42]) == without_stored_at(stored[42])
    assert (again.followup_id, again.action) == (first.followup_id, first.action)


async def test_a_recalibrated_point_replaces_the_old_one():
    store = FakePointStore()
    keeper = PointKeeper(store)
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
    await PointKeeper(store).on_observation_calibrated(ObservationCalibratedV1.model_validate(raw))
    assert (store.points[42]["is_limit"], store.points[42]["mag_err"], store.points[42]["limit_sigma"]) == \
        (True, None, 5.0)


async def test_a_dry_run_or_a_point_without_followup_id_is_not_a_point_of_the_curve():
    store = FakePointStore()
    keeper = PointKeeper(store)
    assert await keeper.on_observation_calibrated(calibrated(dry_run=True, followup_id=None)) == []
    assert await keeper.on_observation_calibrated(calibrated(followup_id=None)) == []
    assert store.points == {} and store.upserts == 0 and store.copies.noted == []


async def test_a_deleted_point_is_removed_and_a_late_calibration_cannot_bring_it_back():
    store = FakePointStore()
    keeper = PointKeeper(store)
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
    keeper = PointKeeper(store)
    [removed] = await keeper.on_observation_deleted(sample("observation.deleted.v1", followup_id=99))
    assert removed.action == "removed" and store.deleted == {99}
    assert await keeper.on_observation_calibrated(calibrated(followup_id=99)) == []  # its calibration came late
    assert store.points == {}
