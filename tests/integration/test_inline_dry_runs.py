"""A catalogue's dry run stores nothing of the file: its bytes travel to calibration in the message. A stored
upload and a dry run over the size for a message keep their bytes in GridFS."""
import dataclasses

import pytest

from services.ingest.usecases import uploads as uploads_module
from services.ingest.usecases.uploads import Uploads
from tests.integration.test_upload_reservation import request, seeded  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration


async def _files(db, bucket: str) -> int:
    return len(await db[f"{bucket}.files"].find({}, {"_id": 1}).to_list(None))


async def test_a_catalogue_dry_run_travels_inline_and_stores_no_bytes(seeded, monkeypatch):  # noqa: F811
    db, data = seeded
    published = []

    async def publish(message, correlation_id=None):
        published.append(message)

    uploads = Uploads(uploads_module.IngestStore(db), publish, max_bytes=10**8)
    dry = dataclasses.replace(request(data), dry_run=True)
    await uploads.accept(dry)
    [message] = published
    assert (message.bucket, message.file_id, message.inline_data) == ("inline", "", data)
    assert await _files(db, "scratch") == 0 and await _files(db, "uploads") == 0

    monkeypatch.setattr(uploads_module, "INLINE_DRY_RUN_MAX_BYTES", len(data) - 1)  # too large for a message
    await uploads.accept(dry)
    assert (published[-1].bucket, published[-1].inline_data) == ("scratch", None) and await _files(db, "scratch") == 1

    await uploads.accept(request(data))  # stored: its bytes are kept, the message names them
    assert (published[-1].bucket, published[-1].inline_data) == ("uploads", None) and await _files(db, "uploads") == 1
