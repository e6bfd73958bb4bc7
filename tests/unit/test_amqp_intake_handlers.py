"""Ingest's AMQP upload intake (``upload.submitted.v1``) with fakes of its ports: the upload is
accepted at once and answered on ``reply_to`` when its outcome arrives (or with its status URL after the
wait); a refused upload is answered at once with the reason and the HTTP status; a failure that is not
a refusal fails the delivery so it comes again."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from services.ingest.amqp_intake import AmqpIntake
from services.ingest.answers import CALIBRATION_FAILED
from services.ingest.deps import IngestDeps
from services.ingest.errors import Conflict, NotFound
from services.ingest.results import ResultWaiters
from services.ingest.settings import IngestSettings
from services.ingest.usecases.uploads import Accepted
from shared.contracts import REGISTRY

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
OBSERVATION = "8d3f1c2b4a5e6f708192a3b4c5d6e7f8"  # the calibrated sample's
CORRELATION = "c0ffee00c0ffee00c0ffee00c0ffee00"
PUBLIC = "https://cpcs.example.org"
FIELDS = {"hashtag": "secret-token", "EventID": "ivo://Gaia16aye", "MJD": "57400.5", "expTime": "60",
          "matchDist": "2.5", "forceFilter": "APASS/r", "filename": "night1.cat", "comment": b"clear sky"}


def sample(key: str, **changes):
    return REGISTRY[key].model_validate(json.loads((SAMPLES / f"{key}.json").read_text()) | changes)


class FakeUploads:
    """In memory, the method of ``AcceptUpload``: each file once per event (``Conflict`` after), or the
    refusal or failure the test sets."""

    def __init__(self):
        self.requests: list[tuple] = []
        self.taken: dict[tuple[bytes, str], int] = {}
        self.refusal: Exception | None = None

    async def accept(self, req, correlation_id=None):
        self.requests.append((req, correlation_id))
        if self.refusal is not None:
            raise self.refusal
        key = (req.data, req.event_ivorn)
        if key in self.taken and not req.dry_run:
            raise Conflict(f"this file was already uploaded for {req.event_ivorn} as point {self.taken[key]}")
        followup_id = None if req.dry_run else self.taken.setdefault(key, 42)
        return Accepted(observation_id=OBSERVATION, followup_id=followup_id, correlation_id=correlation_id,
                        dry_run=req.dry_run)


class FakeBroker:
    """The ``Reply`` port: the answers, in order, as (queue, JSON, correlation id)."""

    def __init__(self):
        self.replies: asyncio.Queue = asyncio.Queue()

    async def reply(self, reply_to, body, *, correlation_id):
        await self.replies.put((reply_to, json.loads(body), correlation_id))

    async def next_reply(self):
        return await asyncio.wait_for(self.replies.get(), 10)  # a bound on a hang, not a pause


class Delivery:
    def __init__(self, body: bytes = b"catalogue bytes", headers: dict | None = None, *,
                 correlation_id: str | None = CORRELATION, reply_to: str | None = "amq.gen-answers"):
        self.body, self.correlation_id, self.reply_to = body, correlation_id, reply_to
        self.headers = FIELDS if headers is None else headers


class Intake:
    """The intake over the fakes; the waiters are ingest's own (in memory), resolved as its reply
    queue resolves them."""

    def __init__(self, *, upload_wait_s: float = 30.0, uploads: FakeUploads | None = None):
        self.uploads, self.broker, self.waiters = uploads or FakeUploads(), FakeBroker(), ResultWaiters()
        settings = IngestSettings(public_url=PUBLIC, upload_wait_s=upload_wait_s)
        deps = IngestDeps(settings=settings, store=None, uploads=self.uploads, waiters=self.waiters, publish=None)
        self.intake = AmqpIntake(deps, self.broker)


async def test_an_upload_is_accepted_with_its_fields_and_answered_when_it_is_calibrated():
    intake = Intake()
    await intake.intake.on_submission(Delivery())
    [(req, correlation_id)] = intake.uploads.requests
    assert correlation_id == CORRELATION and req.data == b"catalogue bytes" and req.token == "secret-token"
    assert (req.event_ivorn, req.mjd, req.exptime_s, req.match_radius_arcsec) == ("ivo://Gaia16aye", 57400.5,
                                                                                  60.0, 2.5)
    assert (req.force_filter, req.filename, req.comment, req.dry_run) == ("APASS/r", "night1.cat", "clear sky",
                                                                          False)
    assert intake.broker.replies.empty()  # nothing is answered before the outcome
    await intake.waiters.on_result(sample("observation.calibrated.v1", correlation_id=CORRELATION))
    queue, answer, correlation_id = await intake.broker.next_reply()
    assert (queue, correlation_id) == ("amq.gen-answers", CORRELATION)
    assert answer["followup_id"] == 42 and answer["observation_id"] == OBSERVATION and answer["mag"] is not None
    assert answer["image_link"] == f"{PUBLIC}/plots/{OBSERVATION}.png"
    assert answer["status_url"] == f"{PUBLIC}/api/v1/observations/{OBSERVATION}"


async def test_a_failed_calibration_is_answered_with_its_reason_and_the_status_of_a_refusal():
    intake = Intake()
    await intake.intake.on_submission(Delivery(correlation_id="beefbeefbeefbeefbeefbeefbeefbeef"))
    await intake.waiters.on_result(sample("observation.failed.v1"))
    _, answer, correlation_id = await intake.broker.next_reply()
    assert correlation_id == "beefbeefbeefbeefbeefbeefbeefbeef"
    assert answer == {"error": "no reference stars matched within 2.0 arcsec", "status": CALIBRATION_FAILED,
                      "observation_id": "9e4f2d3c5b6a7f8091a2b3c4d5e6f708"}


async def test_an_outcome_slower_than_the_wait_is_answered_with_the_status_url():
    intake = Intake(upload_wait_s=0.0)
    await intake.intake.on_submission(Delivery())
    _, answer, _ = await intake.broker.next_reply()
    assert answer == {"status": "processing", "observation_id": OBSERVATION, "followup_id": 42,
                      "status_url": f"{PUBLIC}/api/v1/observations/{OBSERVATION}"}
    await intake.waiters.on_result(sample("observation.calibrated.v1", correlation_id=CORRELATION))  # too late
    assert intake.broker.replies.empty()


async def test_a_message_without_correlation_id_gets_one_for_the_pipeline_and_the_answer():
    intake = Intake(upload_wait_s=0.0)
    await intake.intake.on_submission(Delivery(correlation_id=None))
    [(_, correlation_id)] = intake.uploads.requests
    _, _, answered_as = await intake.broker.next_reply()
    assert correlation_id and len(correlation_id) == 32 and answered_as == correlation_id


async def test_a_refused_upload_is_answered_at_once_with_the_reason_and_waits_for_nothing():
    intake = Intake()
    intake.uploads.refusal = NotFound("unknown event ivo://Gaia16aye: add it first with /cgi/newevent")
    await intake.intake.on_submission(Delivery())
    _, answer, correlation_id = await intake.broker.next_reply()
    assert answer == {"error": "unknown event ivo://Gaia16aye: add it first with /cgi/newevent", "status": 404}
    assert correlation_id == CORRELATION
    await intake.waiters.on_result(sample("observation.calibrated.v1", correlation_id=CORRELATION))
    assert intake.broker.replies.empty()  # nobody was left waiting for it


@pytest.mark.parametrize(("delivery", "reason"), [
    (Delivery(headers={k: v for k, v in FIELDS.items() if k != "EventID"}), "EventID is missing"),
    (Delivery(headers=FIELDS | {"MJD": "yesterday"}), "MJD"),
    (Delivery(headers=FIELDS | {"forceFilter": "r band"}), "forceFilter must be"),
    (Delivery(body=b""), "put its bytes in the body or give catalogue_url"),
], ids=["no event", "bad MJD", "bad filter", "no catalogue"])
async def test_malformed_fields_are_answered_with_the_reason_before_anything_is_accepted(delivery, reason):
    intake = Intake()
    await intake.intake.on_submission(delivery)
    _, answer, _ = await intake.broker.next_reply()
    assert answer["status"] == 400 and reason in answer["error"]
    assert intake.uploads.requests == []


async def test_a_refusal_without_reply_to_is_dropped_quietly():
    intake = Intake()
    intake.uploads.refusal = NotFound("unknown event")
    await intake.intake.on_submission(Delivery(reply_to=None))  # acknowledged: no error, nobody to answer
    assert intake.broker.replies.empty() and len(intake.uploads.requests) == 1


async def test_a_failure_that_is_no_refusal_fails_the_delivery_and_leaves_no_waiter():
    intake = Intake()
    intake.uploads.refusal = ConnectionError("the database went away")
    with pytest.raises(ConnectionError):  # not acknowledged: retried, then dead-lettered
        await intake.intake.on_submission(Delivery())
    assert intake.broker.replies.empty()
    with pytest.raises(KeyError):  # the correlation id is no longer awaited
        await intake.waiters.wait(CORRELATION, 0.0)


async def test_a_message_delivered_again_to_a_new_process_is_answered_with_the_point_it_made():
    uploads = FakeUploads()
    first = Intake(upload_wait_s=0.0, uploads=uploads)
    await first.intake.on_submission(Delivery())
    await first.broker.next_reply()
    again = Intake(uploads=uploads)  # the process stopped before acknowledging; another one takes it
    await again.intake.on_submission(Delivery())
    _, answer, correlation_id = await again.broker.next_reply()
    assert answer == {"error": "this file was already uploaded for ivo://Gaia16aye as point 42", "status": 409}
    assert correlation_id == CORRELATION and len(uploads.requests) == 2


async def test_closing_the_intake_stops_the_answers_still_waiting():
    intake = Intake()
    await intake.intake.on_submission(Delivery())
    waiting = list(intake.intake._tasks)
    assert len(waiting) == 1
    await intake.intake.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting[0]
    assert intake.broker.replies.empty()


async def test_the_same_message_sent_twice_at_once_still_answers_the_first_with_its_outcome():
    intake = Intake()
    await intake.intake.on_submission(Delivery())
    await intake.intake.on_submission(Delivery())  # the same bytes and correlation id again, while waiting
    _, refused, _ = await intake.broker.next_reply()
    assert refused["status"] == 409 and "point 42" in refused["error"]
    await intake.waiters.on_result(sample("observation.calibrated.v1", correlation_id=CORRELATION))
    _, answer, correlation_id = await intake.broker.next_reply()
    assert answer["followup_id"] == 42 and answer["mag"] is not None and correlation_id == CORRELATION
