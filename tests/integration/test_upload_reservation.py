"""The (bytes, event) reservation of a stored upload is never left behind by a failure after it
(real database; the ingest store is the real one with one step made to fail, as an outage would)."""
import time

import pytest

from services.demo import DEMO_EVENT, DEMO_MJD, demo_field
from services.ingest.answers import http_status
from services.ingest.errors import Conflict, Unavailable
from services.ingest.outbox import OutboxRelay
from services.ingest.store import INDEXES, ORPHAN_CLAIM_AGE_S, IngestStore
from services.ingest.usecases.uploads import UploadRequest, Uploads
from shared.db import ensure_indexes

pytestmark = pytest.mark.integration


class FailingOnce(IngestStore):
    """The real store, whose observation insert fails once (the database went away at that moment)."""

    failures = 1

    async def insert_observation(self, doc):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unavailable (injected)")
        return await super().insert_observation(doc)


@pytest.fixture
async def seeded(mongo_db):
    store = IngestStore(mongo_db)
    await ensure_indexes(mongo_db, INDEXES)
    field = demo_field()
    await store.create_event(DEMO_EVENT, field.truth["target_ra_deg"], field.truth["target_dec_deg"], "", "test")
    observatory = await store.create_observatory("Test Obs", 16.9, 52.4)
    await store.add_token("Tok_" + "1" * 32, observatory_id=observatory["_id"], user="t")
    return mongo_db, field.catalogue_text.encode()


def request(data: bytes) -> UploadRequest:
    return UploadRequest(data=data, filename="t.cat", event_ivorn=DEMO_EVENT, token="Tok_" + "1" * 32,
                         mjd=DEMO_MJD, exptime_s=1.0, match_radius_arcsec=2.0)


async def test_a_failure_after_the_reservation_frees_the_file_and_stores_nothing(seeded):
    db, data = seeded
    published = []

    async def publish(message, correlation_id=None):
        published.append(message)

    store = FailingOnce(db)
    with pytest.raises(Unavailable) as outage:
        await Uploads(store, publish, max_bytes=10**8).accept(request(data))
    assert http_status(outage.value) == 503 and outage.value.extra["retry_after_s"] > 0
    assert "send the upload again" in str(outage.value)
    assert await db.upload_hashes.count_documents({}) == 0
    assert await db.observations.count_documents({}) == 0
    assert await db["uploads.files"].find({}).to_list(None) == []
    assert published == []
    accepted = await Uploads(store, publish, max_bytes=10**8).accept(request(data))  # not 409
    assert accepted.followup_id is not None and len(published) == 1
    with pytest.raises(Conflict) as refused:
        await Uploads(store, publish, max_bytes=10**8).accept(request(data))
    assert http_status(refused.value) == 409 and f"point {accepted.followup_id}" in str(refused.value)


async def test_a_reservation_left_by_an_earlier_crash_is_taken_over(seeded):
    db, data = seeded
    import hashlib

    key = f"{hashlib.sha256(data).hexdigest()}:{DEMO_EVENT}"
    await db.upload_hashes.insert_one({"_id": key, "observation_id": "gone", "followup_id": 999,
                                       "claimed_at_unix": time.time() - ORPHAN_CLAIM_AGE_S - 1})

    async def publish(message, correlation_id=None):
        pass

    accepted = await Uploads(IngestStore(db), publish, max_bytes=10**8).accept(request(data))
    assert accepted.followup_id != 999
    claim = await db.upload_hashes.find_one({"_id": key})
    assert claim["observation_id"] == accepted.observation_id


async def test_a_fresh_reservation_with_nothing_behind_it_asks_to_try_again_not_409(seeded):
    """Today's defect (seen in the chaos bench: ingest killed between the reservation and the observation):
    the retried upload was answered 409 naming a point that never existed, and the upload was lost. A
    reservation with no observation behind it yet is a 503 with Retry-After; once it is old enough, the
    retry takes it over and stores the point."""
    db, data = seeded
    import hashlib

    key = f"{hashlib.sha256(data).hexdigest()}:{DEMO_EVENT}"
    await db.upload_hashes.insert_one({"_id": key, "observation_id": "in-flight", "followup_id": 998,
                                       "claimed_at_unix": time.time() - 30})
    published = []

    async def publish(message, correlation_id=None):
        published.append(message)

    uploads = Uploads(IngestStore(db), publish, max_bytes=10**8)
    with pytest.raises(Unavailable) as busy:
        await uploads.accept(request(data))
    wait_s = busy.value.extra["retry_after_s"]
    assert http_status(busy.value) == 503 and ORPHAN_CLAIM_AGE_S - 31 <= wait_s <= ORPHAN_CLAIM_AGE_S - 29
    assert "still being stored" in str(busy.value) and "998" not in str(busy.value)
    assert await db.observations.count_documents({}) == 0 and published == []
    assert (await db.upload_hashes.find_one({"_id": key}))["observation_id"] == "in-flight"  # respected
    await db.upload_hashes.update_one({"_id": key}, {"$set": {"claimed_at_unix": time.time() - wait_s - 31}})
    accepted = await uploads.accept(request(data))  # the retry after Retry-After
    assert accepted.followup_id != 998 and [m.observation_id for m in published] == [accepted.observation_id]


async def test_a_fresh_reservation_of_a_stored_observation_is_409_naming_its_point(seeded):
    db, data = seeded
    published = []

    async def publish(message, correlation_id=None):
        published.append(message)

    uploads = Uploads(IngestStore(db), publish, max_bytes=10**8)
    first = await uploads.accept(request(data))
    with pytest.raises(Conflict) as refused:
        await uploads.accept(request(data))
    assert http_status(refused.value) == 409 and f"point {first.followup_id}" in str(refused.value)
    assert refused.value.extra["followup_id"] == first.followup_id and len(published) == 1


class LostAnswer(IngestStore):
    """The real store, whose observation insert is done but its answer lost (the connection dropped after the
    write), and whose next write fails too (the database is still away)."""

    async def insert_observation(self, doc):
        await super().insert_observation(doc)
        self.down = True
        raise ConnectionError("connection reset after the write (injected)")

    async def delete_observation(self, observation_id):
        if getattr(self, "down", False):
            raise ConnectionError("database unavailable (injected)")
        return await super().delete_observation(observation_id)


async def test_a_write_whose_answer_was_lost_is_kept_whole_and_published_by_the_relay(seeded):
    """Today's defect: the reservation was left pointing at an observation whose message never went out
    (refused 409 for ever, the point never calibrated). Now the observation keeps its message and the relay
    sends it: the reservation always names a point that comes."""
    db, data = seeded
    published = []

    async def publish(message, correlation_id=None):
        published.append((message, correlation_id))

    with pytest.raises(Unavailable):
        await Uploads(LostAnswer(db), publish, max_bytes=10**8).accept(request(data))
    stored = await db.observations.find_one({})
    assert stored is not None and stored["outbox_pending"] is True and published == []
    claim = await db.upload_hashes.find_one({})
    assert claim["observation_id"] == stored["_id"]
    assert await IngestStore(db).get_bytes(stored["file_id"]) == data  # the bytes stay with it
    assert await OutboxRelay(IngestStore(db), publish).relay(fresh_s=0) == 1
    message, correlation_id = published[0]
    assert message.observation_id == stored["_id"] and message.file_id == stored["file_id"]
    after = await db.observations.find_one({"_id": stored["_id"]})
    assert after["outbox_pending"] is False and after["outbox"] == []
    assert await OutboxRelay(IngestStore(db), publish).relay(fresh_s=0) == 0  # cleared: sent once
    with pytest.raises(Conflict) as refused:
        await Uploads(IngestStore(db), publish, max_bytes=10**8).accept(request(data))
    assert f"point {stored['followup_id']}" in str(refused.value)


async def test_an_upload_stored_while_the_broker_is_away_is_accepted_and_relayed(seeded):
    db, data = seeded
    published = []
    broker_up = False

    async def publish(message, correlation_id=None):
        if not broker_up:
            raise ConnectionRefusedError("broker down (injected)")
        published.append(message)

    accepted = await Uploads(IngestStore(db), publish, max_bytes=10**8).accept(request(data))
    assert accepted.published is False and accepted.followup_id is not None
    relay = OutboxRelay(IngestStore(db), publish)
    with pytest.raises(ConnectionRefusedError):
        await relay.relay(fresh_s=0)
    assert (await db.observations.find_one({"_id": accepted.observation_id}))["outbox_pending"] is True
    broker_up = True
    assert await relay.relay(fresh_s=0) == 1
    assert [m.observation_id for m in published] == [accepted.observation_id]


async def test_a_dry_run_with_the_broker_away_is_unavailable_and_leaves_nothing(seeded):
    db, data = seeded

    async def publish(message, correlation_id=None):
        raise ConnectionRefusedError("broker down (injected)")

    dry = UploadRequest(**{**request(data).__dict__, "dry_run": True})
    with pytest.raises(Unavailable) as outage:
        await Uploads(IngestStore(db), publish, max_bytes=10**8).accept(dry)
    assert http_status(outage.value) == 503
    assert await db["scratch.files"].find({}).to_list(None) == []
    assert await db.observations.count_documents({}) == 0


async def test_the_reconciler_redrives_an_observation_without_an_outcome(seeded):
    db, data = seeded
    published = []

    async def publish(message, correlation_id=None):
        published.append(message)

    accepted = await Uploads(IngestStore(db), publish, max_bytes=10**8).accept(request(data))
    relay = OutboxRelay(IngestStore(db), publish, reconcile_after_s=300)
    assert await relay.reconcile() == 0  # too early
    later = time.time() + 301
    assert await relay.reconcile(now_unix=later) == 1
    assert [m.observation_id for m in published] == [accepted.observation_id] * 2
    assert await relay.reconcile(now_unix=later + 1) == 0  # re-driven just now
    await IngestStore(db).record_outcome(accepted.observation_id, "calibrated", {}, None)
    assert await relay.reconcile(now_unix=later + 1000) == 0  # final: left alone
    doc = await db.observations.find_one({"_id": accepted.observation_id})
    assert doc["redrives"] == 1
