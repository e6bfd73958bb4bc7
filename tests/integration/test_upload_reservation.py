"""The (bytes, event) reservation of a stored upload is never left behind by a failure after it
(real database; the ingest store is the real one with one step made to fail, as an outage would)."""
import time

import pytest

from services.demo import DEMO_EVENT, DEMO_MJD, demo_field
from services.ingest.store import INDEXES, ORPHAN_CLAIM_AGE_S, IngestStore
from services.ingest.uploads import UploadRefused, UploadRequest, Uploads
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
    with pytest.raises(ConnectionError):
        await Uploads(store, publish, max_bytes=10**8).accept(request(data))
    assert await db.upload_hashes.count_documents({}) == 0
    assert await db.observations.count_documents({}) == 0
    assert await db["uploads.files"].find({}).to_list(None) == []
    assert published == []
    accepted = await Uploads(store, publish, max_bytes=10**8).accept(request(data))  # not 409
    assert accepted.followup_id is not None and len(published) == 1
    with pytest.raises(UploadRefused) as refused:
        await Uploads(store, publish, max_bytes=10**8).accept(request(data))
    assert refused.value.status == 409 and f"point {accepted.followup_id}" in str(refused.value)


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


async def test_a_fresh_reservation_of_an_upload_in_flight_is_respected(seeded):
    db, data = seeded
    import hashlib

    key = f"{hashlib.sha256(data).hexdigest()}:{DEMO_EVENT}"
    await db.upload_hashes.insert_one({"_id": key, "observation_id": "in-flight", "followup_id": 998,
                                       "claimed_at_unix": time.time()})

    async def publish(message, correlation_id=None):
        pass

    with pytest.raises(UploadRefused) as refused:
        await Uploads(IngestStore(db), publish, max_bytes=10**8).accept(request(data))
    assert refused.value.status == 409 and "point 998" in str(refused.value)
