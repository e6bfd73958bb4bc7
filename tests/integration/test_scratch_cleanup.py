"""A dry run's scratch copy is ingest's: deleted when the outcome is known; a redelivered upload is
answered from the stored calibration without it."""
import json
from pathlib import Path

import pytest

from services.calibration.handlers import CalibrationDeps, Calibrator
from services.calibration.store import CalibrationStore
from services.ingest.handlers import StatusRecorder
from services.ingest.store import SCRATCH_KEEP, IngestStore
from shared.contracts import ObservationCalibratedV1, ObservationFailedV1, UploadReceivedV1

pytestmark = pytest.mark.integration
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"


def sample(key: str, **changes):
    raw = json.loads((SAMPLES / f"{key}.json").read_text()) | changes
    from shared.contracts import REGISTRY

    return REGISTRY[key].model_validate(raw)


async def test_the_outcome_of_a_dry_run_deletes_its_scratch_copy_and_nothing_else(mongo_db):
    store = IngestStore(mongo_db)
    recorder = StatusRecorder(store)
    dry = await store.put_bytes(b"dry", "a.cat", "0" * 64, scratch=True)
    failed = await store.put_bytes(b"failed", "b.cat", "1" * 64, scratch=True)
    kept = await store.put_bytes(b"kept", "c.cat", "2" * 64, scratch=False)
    await recorder.on_observation_calibrated(sample("observation.calibrated.v1", dry_run=False, followup_id=7,
                                                    file_id=kept, bucket="uploads"))
    await recorder.on_observation_calibrated(sample("observation.calibrated.v1", dry_run=True, followup_id=None,
                                                    file_id=dry, bucket="scratch"))
    await recorder.on_observation_failed(sample("observation.failed.v1", file_id=failed, bucket="scratch"))
    assert await store.get_bytes(dry, scratch=True) is None
    assert await store.get_bytes(failed, scratch=True) is None
    assert await store.get_bytes(kept) == b"kept"
    # delivered again: nothing left to delete, no error
    await recorder.on_observation_failed(sample("observation.failed.v1", file_id=failed, bucket="scratch"))


async def test_scratch_copies_no_outcome_named_are_purged_after_a_day(mongo_db):
    store = IngestStore(mongo_db)
    old = await store.put_bytes(b"old", "a.fits", "3" * 64, scratch=True)
    fresh = await store.put_bytes(b"fresh", "b.fits", "4" * 64, scratch=True)
    from bson import ObjectId

    def stored_at(file_id):
        return mongo_db["scratch.files"].find_one({"_id": ObjectId(file_id)})

    old_at, fresh_at = [(await stored_at(f))["metadata"]["stored_at_unix"] for f in (old, fresh)]
    assert old_at < fresh_at
    one_day_later = old_at + SCRATCH_KEEP.total_seconds() + (fresh_at - old_at) / 2
    assert await store.purge_stale_scratch(now_unix=old_at + SCRATCH_KEEP.total_seconds() / 2) == 0
    assert await store.purge_stale_scratch(now_unix=one_day_later) == 1
    assert await store.get_bytes(old, scratch=True) is None and await store.get_bytes(fresh, scratch=True) == b"fresh"


async def test_an_upload_delivered_again_after_its_scratch_copy_is_gone_gets_the_stored_answer(mongo_db):
    upload: UploadReceivedV1 = sample("upload.received.v1", dry_run=True, bucket="scratch", followup_id=None,
                                      file_id="65f0c1a2b3c4d5e6f7a8b9c2", no_plot=True)
    answer = sample("observation.calibrated.v1", observation_id=upload.observation_id, dry_run=True,
                    followup_id=None, file_id=upload.file_id, bucket="scratch")
    store = CalibrationStore(mongo_db)
    await store.save({"_id": upload.observation_id, "followup_id": None, "event_ivorn": upload.event.ivorn,
                      "dry_run": True, "outcome": answer.routing_key,
                      "message": {"routing_key": answer.routing_key, "body": answer.model_dump(mode="json")},
                      "result": {"status": "calibrated"}}, dry_run=True)
    calibrator = Calibrator(CalibrationDeps(store=store, refcat=None, executor=None))
    assert await store.upload_bytes(upload.file_id, "scratch") is None
    [again] = await calibrator.on_upload_received(upload)
    assert isinstance(again, ObservationCalibratedV1) and again == answer
    assert not isinstance(again, ObservationFailedV1)
