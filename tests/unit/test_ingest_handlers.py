"""Ingest's message handlers with fakes of their ports: the status of each observation
(``observation.calibrated.v1``/``observation.failed.v1``, with a dry run's scratch copy deleted) and
the VOEvent intake (``voevent.received.v1`` and the HTTP path's ``receive``)."""
from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymongo.errors import DuplicateKeyError

from services.ingest.handlers import StatusRecorder
from services.ingest.usecases.recalibrations import Recalibrations
from services.ingest.voevents.events import aliases_of, history_entry, new_event
from services.ingest.voevents.intake import VoeventIntake
from services.ingest.voevents.packet import parse_packet
from services.ingest.voevents.policy import VoeventPolicy
from shared.contracts import (
    REGISTRY,
    AlertPhotometryReceivedV1,
    EventCreatedV1,
    EventUpdatedV1,
    ObservationCalibratedV1,
    ObservationFailedV1,
    VoeventProcessedV1,
)
from shared.errors import PermanentError, TransientError
from tests.support.voevents import synthetic_packet

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
OBSERVATION = "8d3f1c2b4a5e6f708192a3b4c5d6e7f8"  # the samples' observation
DRY_RUN = "9e4f2d3c5b6a7f8091a2b3c4d5e6f708"
SCRATCH_ID, OTHER_SCRATCH_ID = "65f0c1a2b3c4d5e6f7a8b9c1", "65f0c1a2b3c4d5e6f7a8b9c9"
UPLOAD_ID = "6550a1b2c3d4e5f601234567"


def sample(key: str, **changes):
    return REGISTRY[key].model_validate(json.loads((SAMPLES / f"{key}.json").read_text()) | changes)


# ------------------------------------------------------------------------------ the status handler


class FakeStatusStore:
    """In memory, the methods of ``StatusStore``: observations, reservations and the scratch bucket."""

    def __init__(self):
        self.observations: dict[str, dict] = {OBSERVATION: {"_id": OBSERVATION, "status": "processing"}}
        self.reservations: dict[str, str] = {"sha:ivo://Gaia16aye": OBSERVATION}  # key -> observation id
        self.scratch: dict[str, bytes] = {SCRATCH_ID: b"dry run bytes", OTHER_SCRATCH_ID: b"another dry run"}
        self.uploads: dict[str, bytes] = {UPLOAD_ID: b"kept bytes"}
        self.deleted: list[tuple[str, bool]] = []
        self.purges = 0

    async def record_outcome(self, observation_id, status, result, reason):
        doc = self.observations.get(observation_id)
        if doc is None:  # a dry run (or a deleted point) has no observation to update
            return None
        doc.update(status=status, result=copy.deepcopy(result), reason=reason)
        return copy.deepcopy(doc)

    async def release_upload(self, observation_id):
        self.reservations = {k: v for k, v in self.reservations.items() if v != observation_id}

    async def delete_bytes(self, file_id, *, scratch=False):
        self.deleted.append((file_id, scratch))
        (self.scratch if scratch else self.uploads).pop(file_id, None)  # gone already: no error

    async def purge_stale_scratch(self):
        self.purges += 1
        return 0


def calibrated(**changes) -> ObservationCalibratedV1:
    return sample("observation.calibrated.v1", **{"file_id": UPLOAD_ID, "bucket": "uploads"} | changes)


def failed(**changes) -> ObservationFailedV1:
    return sample("observation.failed.v1", **changes)


async def test_a_calibrated_point_gets_its_status_and_its_bytes_stay():
    store = FakeStatusStore()
    message = calibrated()
    await StatusRecorder(store).on_observation_calibrated(message)
    doc = store.observations[OBSERVATION]
    assert doc["status"] == message.result.status and doc["result"]["mag"] == message.result.mag
    assert doc["reason"] is None
    assert store.deleted == [] and store.purges == 0 and UPLOAD_ID in store.uploads
    assert store.reservations == {"sha:ivo://Gaia16aye": OBSERVATION}  # a stored point keeps its bytes reserved


async def test_a_failed_calibration_records_the_reason_and_frees_the_file_for_another_upload():
    store = FakeStatusStore()
    message = failed(observation_id=OBSERVATION, dry_run=False, followup_id=42, file_id=UPLOAD_ID, bucket="uploads")
    recorder = StatusRecorder(store)
    await recorder.on_observation_failed(message)
    await recorder.on_observation_failed(message)  # delivered again: the same state, no error
    assert store.observations[OBSERVATION] | {"result": None} == {"_id": OBSERVATION, "status": "failed",
                                                                 "result": None, "reason": message.reason}
    assert store.reservations == {} and store.deleted == [] and UPLOAD_ID in store.uploads


async def test_the_outcome_of_a_dry_run_deletes_its_scratch_copy_and_nothing_else():
    store = FakeStatusStore()
    recorder = StatusRecorder(store)
    await recorder.on_observation_calibrated(calibrated(observation_id=DRY_RUN, dry_run=True, followup_id=None,
                                                        file_id=SCRATCH_ID, bucket="scratch"))
    assert store.deleted == [(SCRATCH_ID, True)] and store.purges == 1
    assert set(store.scratch) == {OTHER_SCRATCH_ID} and store.observations[OBSERVATION]["status"] == "processing"


async def test_a_dry_run_outcome_delivered_again_deletes_only_its_own_copy_and_is_no_error():
    store = FakeStatusStore()
    recorder = StatusRecorder(store)
    message = failed(file_id=SCRATCH_ID, bucket="scratch")  # the sample is a dry run's failure
    await recorder.on_observation_failed(message)
    assert store.deleted == [(SCRATCH_ID, True)]
    await recorder.on_observation_failed(message)
    # each delivery asks once for its own copy; the second finds it gone (as the waiting upload's
    # answer does too): deleting is idempotent, nothing else is touched
    assert store.deleted == [(SCRATCH_ID, True)] * 2 and set(store.scratch) == {OTHER_SCRATCH_ID}
    assert store.observations[OBSERVATION]["status"] == "processing"  # a dry run has no observation


async def test_a_dry_run_outcome_that_names_no_scratch_copy_deletes_nothing_but_still_purges():
    store = FakeStatusStore()
    recorder = StatusRecorder(store)
    await recorder.on_observation_calibrated(calibrated(observation_id=DRY_RUN, dry_run=True, followup_id=None,
                                                        file_id=UPLOAD_ID, bucket="uploads"))
    await recorder.on_observation_failed(failed(file_id=None, bucket=None))  # an image that failed early
    assert store.deleted == [] and store.purges == 2 and UPLOAD_ID in store.uploads


async def test_an_outcome_for_an_unknown_observation_changes_nothing():
    store = FakeStatusStore()
    await StatusRecorder(store).on_observation_calibrated(calibrated(observation_id="f" * 32))
    assert set(store.observations) == {OBSERVATION} and store.observations[OBSERVATION]["status"] == "processing"


# ------------------------------------------------------------------------------ the VOEvent intake


class FakeEventStore:
    """In memory, the methods of ``EventStore``: events unique by ``_id``, aliases first come first
    held, the counter of new events' numeric ids."""

    def __init__(self):
        self.events: dict[str, dict] = {}
        self.aliases: dict[str, str] = {}
        self.replaced, self.conflict = 0, False
        self.alert_ids = 0
        self.counter_down = False  # the counter cannot be reached
        self.racing: dict | None = None  # an event another delivery inserts just before this one

    async def next_alert_id(self):
        if self.counter_down:
            raise ConnectionError("the database went away")
        self.alert_ids += 1
        return self.alert_ids

    async def get_event(self, event_id):
        return copy.deepcopy(self.events.get(event_id))

    async def events_known_as(self, names):
        return {n: self.aliases[n] for n in names if n in self.aliases} | {n: n for n in names if n in self.events}

    async def insert_event(self, doc):
        if self.racing is not None:
            racing, self.racing = self.racing, None
            self.events[racing["_id"]] = copy.deepcopy(racing)
        if doc["_id"] in self.events:
            raise DuplicateKeyError(f"E11000 duplicate key: {doc['_id']}")
        self.events[doc["_id"]] = copy.deepcopy(doc)

    async def replace_event(self, doc, *, revision):
        stored = self.events.get(doc["_id"])
        if self.conflict or stored is None or stored.get("revision") != revision:
            return False  # changed by another delivery meanwhile
        self.replaced += 1
        self.events[doc["_id"]] = copy.deepcopy(doc)
        return True

    async def add_aliases(self, event_id, aliases):
        held = {}
        for alias in aliases:
            if alias == event_id:
                continue
            owner = self.aliases.setdefault(alias, event_id)
            if owner != event_id:
                held[alias] = owner
        return held


class FakePacketLog:
    def __init__(self):
        self.records: dict[str, dict] = {}

    async def get(self, ivorn):
        return copy.deepcopy(self.records.get(ivorn))

    async def record(self, ivorn, *, outcome, reason, event, via):
        self.records[ivorn] = {"_id": ivorn, "outcome": outcome, "reason": reason, "event": event, "via": via,
                               "done": True}


class FakePublisher:
    def __init__(self):
        self.sent: list = []

    async def __call__(self, message, *, correlation_id=None):
        self.sent.append(message)

    def keys(self) -> list[str]:
        return [m.routing_key for m in self.sent]


class Delivery:
    def __init__(self, body: bytes, headers: dict | None = None):
        self.body, self.headers = body, headers


FIRST = synthetic_packet(1)
SECOND = FIRST.replace(b'#Synth000001-1"', b'#Synth000001-2"').replace(b"<Error2Radius>0.0001",
                                                                        b"<Error2Radius>0.00005")
EVENT = "ivo://Synth000001"


class Intake:
    def __init__(self, *, policy: VoeventPolicy | None = None, known: bool = True):
        self.store, self.log, self.publish = FakeEventStore(), FakePacketLog(), FakePublisher()
        self.intake = VoeventIntake(self.store, self.log, self.publish, policy or VoeventPolicy(),
                                    max_packet_bytes=64 * 1024)
        if known:  # the event exists from its first packet
            packet = parse_packet(FIRST)
            entry = history_entry(packet, VoeventPolicy(), via="amqp", received_at=datetime(2019, 3, 1, tzinfo=UTC))
            doc = new_event(packet, entry, alert_id=1, now=datetime(2019, 3, 1, tzinfo=UTC))
            self.store.events[doc["_id"]] = doc
            for alias in aliases_of(packet):
                self.store.aliases.setdefault(alias, doc["_id"])
            self.log.records[packet.ivorn] = {"_id": packet.ivorn, "outcome": "created", "event": doc["_id"],
                                              "done": True}


async def test_a_packet_of_a_known_event_updates_it_publishes_the_update_and_its_photometry():
    intake = Intake()
    outcome = await intake.intake.receive(SECOND, via="http")
    assert outcome.outcome == "updated" and outcome.event["_id"] == EVENT and not outcome.event_created
    event = intake.store.events[EVENT]
    assert event["revision"] == 2 and len(event["history"]) == 2 and event["error_radius_deg"] == 0.00005
    update, photometry, processed = intake.publish.sent
    assert isinstance(update, EventUpdatedV1) and update.revision == 2 and update.position_changed
    assert isinstance(photometry, AlertPhotometryReceivedV1) and photometry.points[0].mag == 17.5
    assert isinstance(processed, VoeventProcessedV1) and processed.outcome == "updated" and processed.via == "http"
    assert intake.log.records["ivo://cpcs.test/alerts#Synth000001-2"]["outcome"] == "updated"
    assert intake.store.aliases["ivo://cpcs.test/alerts#Synth000001-2"] == EVENT


async def test_the_same_packet_delivered_again_is_a_duplicate_that_changes_and_publishes_nothing_else():
    intake = Intake()
    await intake.intake.on_delivery(Delivery(SECOND))
    event, sent = copy.deepcopy(intake.store.events[EVENT]), len(intake.publish.sent)
    await intake.intake.on_delivery(Delivery(SECOND, {"x-cpcs-via": "vtp"}))
    assert intake.store.events[EVENT] == event and intake.store.replaced == 1
    [processed] = intake.publish.sent[sent:]
    assert processed.outcome == "duplicate" and processed.via == "vtp" and EVENT in processed.reason
    assert intake.log.records["ivo://cpcs.test/alerts#Synth000001-2"]["via"] == "amqp"  # the first record stays


async def test_a_packet_merged_but_not_yet_recorded_sends_its_photometry_again_and_is_recorded():
    intake = Intake()
    await intake.intake.receive(SECOND, via="amqp")
    del intake.log.records["ivo://cpcs.test/alerts#Synth000001-2"]  # the process stopped before recording it
    sent = len(intake.publish.sent)
    outcome = await intake.intake.receive(SECOND, via="amqp")
    assert outcome.outcome == "duplicate" and intake.store.replaced == 1
    assert intake.publish.keys()[sent:] == ["alert.photometry.received.v1", "voevent.processed.v1"]
    assert intake.log.records["ivo://cpcs.test/alerts#Synth000001-2"]["outcome"] == "duplicate"
    sent = len(intake.publish.sent)
    await intake.intake.receive(SECOND, via="amqp")  # now the record answers: no photometry sent again
    assert intake.publish.keys()[sent:] == ["voevent.processed.v1"]


async def test_a_role_not_taken_is_ignored_with_the_reason_and_touches_no_event():
    intake = Intake()
    outcome = await intake.intake.receive(synthetic_packet(1, role="test").replace(b"-1\"", b"-3\""), via="amqp")
    assert outcome.outcome == "ignored" and "CPCS_VOEVENT_ROLES" in outcome.reason
    assert intake.store.events[EVENT]["revision"] == 1 and intake.publish.keys() == ["voevent.processed.v1"]


async def test_an_unreadable_packet_is_refused_over_http_and_dead_lettered_over_amqp():
    intake = Intake()
    # the HTTP path gets the refusal with the reason (its status is the HTTP adapter's to choose)
    with pytest.raises(Exception, match="not a VOEvent packet we can read") as refused:
        await intake.intake.receive(b"<html>not a packet</html>", via="http")
    assert not isinstance(refused.value, (PermanentError, TransientError))
    with pytest.raises(Exception, match="the limit is 64 KiB"):
        await intake.intake.receive(b" " * (64 * 1024 + 1), via="http")
    with pytest.raises(PermanentError, match="not a VOEvent packet"):  # AMQP: dead-lettered with the reason
        await intake.intake.on_delivery(Delivery(b"\x00\x01"))
    assert intake.publish.sent == [] and set(intake.log.records) == {"ivo://cpcs.test/alerts#Synth000001-1"}


async def test_an_event_that_keeps_changing_under_the_intake_is_a_transient_error():
    intake = Intake()
    intake.store.conflict = True  # every compare-and-set loses
    with pytest.raises(TransientError, match="kept changing"):
        await intake.intake.receive(SECOND, via="amqp")
    assert intake.store.events[EVENT]["revision"] == 1 and intake.publish.sent == []
    assert "ivo://cpcs.test/alerts#Synth000001-2" not in intake.log.records  # retried later, not a duplicate


# ------------------------------------------------------------------------------ a new event from a packet


def first_event(alert_id: int) -> dict:
    """The event the first packet makes, as another delivery of it would have stored it."""
    packet = parse_packet(FIRST)
    entry = history_entry(packet, VoeventPolicy(), via="amqp", received_at=datetime(2019, 3, 1, tzinfo=UTC))
    return new_event(packet, entry, alert_id=alert_id, now=datetime(2019, 3, 1, tzinfo=UTC))


async def test_the_first_packet_of_a_transient_creates_its_event_with_the_next_alert_id():
    intake = Intake(known=False)
    intake.store.alert_ids = 41  # ids already given to other events
    outcome = await intake.intake.receive(FIRST, via="amqp")
    assert outcome.outcome == "created" and outcome.event_created and EVENT in outcome.reason
    event = intake.store.events[EVENT]
    assert event["alert_id"] == 42 and event["revision"] == 1 and event["target_usable"]
    assert len(event["history"]) == 1 and event["error_radius_deg"] == 0.0001
    created, photometry, processed = intake.publish.sent
    assert isinstance(created, EventCreatedV1) and created.ivorn == EVENT and created.alert_id == 42
    assert created.revision == 1 and created.target_usable
    assert isinstance(photometry, AlertPhotometryReceivedV1) and photometry.event_ivorn == EVENT
    assert isinstance(processed, VoeventProcessedV1) and processed.outcome == "created"
    assert processed.event_ivorn == EVENT and processed.target_usable
    assert intake.log.records["ivo://cpcs.test/alerts#Synth000001-1"]["outcome"] == "created"
    assert intake.store.aliases["ivo://cpcs.test/alerts#Synth000001-1"] == EVENT


async def test_the_first_packet_delivered_again_creates_nothing_and_takes_no_new_id():
    intake = Intake(known=False)
    await intake.intake.on_delivery(Delivery(FIRST))
    event, sent = copy.deepcopy(intake.store.events[EVENT]), len(intake.publish.sent)
    outcome = await intake.intake.receive(FIRST, via="amqp")
    assert outcome.outcome == "duplicate" and not outcome.event_created
    assert intake.store.events == {EVENT: event} and intake.store.alert_ids == 1
    assert intake.publish.keys()[sent:] == ["voevent.processed.v1"]


async def test_a_packet_without_a_usable_position_makes_an_event_recorded_without_target():
    intake = Intake(known=False)
    outcome = await intake.intake.receive(synthetic_packet(1, error_deg=1.0), via="amqp")
    assert outcome.outcome == "recorded_without_target" and outcome.event_created
    event = intake.store.events[EVENT]
    assert event["alert_id"] == 1 and not event["target_usable"] and event["no_target_reason"]
    created = intake.publish.sent[0]
    assert isinstance(created, EventCreatedV1) and not created.target_usable
    assert intake.publish.sent[-1].target_usable is False


async def test_an_event_created_meanwhile_by_another_delivery_is_joined_not_created_twice():
    intake = Intake(known=False)
    intake.store.racing = first_event(alert_id=7)  # inserted between our look-up and our insert
    outcome = await intake.intake.receive(FIRST, via="amqp")
    assert outcome.outcome == "duplicate" and not outcome.event_created
    assert intake.store.events[EVENT]["alert_id"] == 7 and list(intake.store.events) == [EVENT]
    # the other delivery announces the event; this one resends only the photometry, stored idempotently
    assert intake.publish.keys() == ["alert.photometry.received.v1", "voevent.processed.v1"]
    assert intake.log.records["ivo://cpcs.test/alerts#Synth000001-1"]["event"] == EVENT


async def test_a_counter_out_of_reach_fails_the_delivery_before_anything_is_stored_or_sent():
    intake = Intake(known=False)
    intake.store.counter_down = True
    with pytest.raises(ConnectionError):  # not a refusal: the delivery is retried
        await intake.intake.on_delivery(Delivery(FIRST))
    assert intake.store.events == {} and intake.publish.sent == [] and intake.log.records == {}
    intake.store.counter_down = False
    assert (await intake.intake.receive(FIRST, via="amqp")).outcome == "created"


# ------------------------------------------------------------------------------ recalibration results


class FakeRecalibrationResults:
    """In memory, the method of ``RecalibrationResults``: results replaced by ``_id``."""

    def __init__(self):
        self.results: dict[str, dict] = {}
        self.down = False

    async def put_recalibration_result(self, doc):
        if self.down:
            raise ConnectionError("the database went away")
        self.results[doc["_id"]] = copy.deepcopy(doc)


def recalibration_done(**changes):
    return sample("recalibration.done.v1", **changes)


RECALIBRATION = "r5e1c0a9b8d7f6e5d4c3b2a190817263"  # the sample's


def recalibrations(store) -> Recalibrations:
    async def no_publishing(message, *, correlation_id=None):
        raise AssertionError(f"a result publishes nothing, got {message.routing_key}")

    return Recalibrations(store, no_publishing)


async def test_a_recalibration_result_is_kept_under_its_recalibration_and_point():
    store = FakeRecalibrationResults()
    assert await recalibrations(store).on_recalibration_done(recalibration_done()) is None
    [(key, doc)] = store.results.items()
    assert key == f"{RECALIBRATION}:{OBSERVATION}" and doc["recalibration_id"] == RECALIBRATION
    assert doc["outcome"] == "applied" and doc["followup_id"] == 42 and doc["params_hash"] == "9a8b7c6d5e4f3a2b"
    assert doc["before"]["mag"] == 17.012 and doc["after"]["mag"] == 17.015 and doc["after"]["filter"] == "APASS/r"


async def test_a_result_delivered_again_replaces_itself_and_another_recalibration_keeps_its_own():
    store = FakeRecalibrationResults()
    handler = recalibrations(store)
    await handler.on_recalibration_done(recalibration_done())
    first = copy.deepcopy(store.results)
    await handler.on_recalibration_done(recalibration_done())
    assert store.results == first  # the same message: the same document, still one
    await handler.on_recalibration_done(recalibration_done(recalibration_id="another", outcome="previewed",
                                                           dry_run=True))
    assert set(store.results) == {f"{RECALIBRATION}:{OBSERVATION}", f"another:{OBSERVATION}"}
    assert store.results[f"{RECALIBRATION}:{OBSERVATION}"]["outcome"] == "applied"


async def test_a_failed_recalibration_is_kept_with_its_reason_and_no_after():
    store = FakeRecalibrationResults()
    await recalibrations(store).on_recalibration_done(recalibration_done(
        outcome="failed", reason="no reference stars in the field", after=None, params_hash=None))
    doc = store.results[f"{RECALIBRATION}:{OBSERVATION}"]
    assert doc["outcome"] == "failed" and doc["reason"] == "no reference stars in the field"
    assert doc["after"] is None and doc["before"]["mag"] == 17.012


async def test_a_store_failure_fails_the_delivery_so_the_result_comes_again():
    store = FakeRecalibrationResults()
    store.down = True
    with pytest.raises(ConnectionError):
        await recalibrations(store).on_recalibration_done(recalibration_done())
    assert store.results == {}


async def test_a_dry_run_outcome_writes_no_status_and_frees_no_reservation():
    store = FakeStatusStore()
    writes = []
    record, release = store.record_outcome, store.release_upload

    async def recorded(*args):
        writes.append("status")
        return await record(*args)

    async def released(observation_id):
        writes.append("release")
        return await release(observation_id)

    store.record_outcome, store.release_upload = recorded, released
    recorder = StatusRecorder(store)
    await recorder.on_observation_calibrated(calibrated(observation_id=DRY_RUN, dry_run=True, followup_id=None,
                                                        file_id=None, bucket=None))
    await recorder.on_observation_failed(failed(file_id=None, bucket=None))  # the sample is a dry run's
    assert writes == [] and store.purges == 2
    await recorder.on_observation_failed(failed(observation_id=OBSERVATION, dry_run=False, followup_id=42))
    assert writes == ["status", "release"]
