"""A gzip bomb sent to the running ingest (real database and broker) is refused with a sentence naming the
unpacked limit, and nothing is stored or published."""
from __future__ import annotations

import zlib

import pytest

from shared import unpacking
from tests.support.flows import demo_system, post_upload

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path, monkeypatch):
    monkeypatch.setenv("CPCS_MAX_UNPACKED_MB", "16")
    before = unpacking.max_unpacked_bytes()
    try:
        async with demo_system(mongo_url, amqp_url, unique_name, tmp_path, services=("ingest",)) as running:
            yield running
    finally:
        unpacking.set_max_unpacked_bytes(before)  # the limit is the process's: give the next test its own


async def test_a_gzip_bomb_upload_is_refused_with_the_limit_and_nothing_is_stored(system):
    packer = zlib.compressobj(1, wbits=31)
    zeros = b"\0" * (1 << 24)
    bomb = b"".join(packer.compress(zeros) for _ in range(8)) + packer.flush()  # 0.6 MB, 134 MB unpacked
    assert unpacking.max_unpacked_bytes() == 16_000_000
    status, body = await post_upload(system, system.demo, bomb, dryRun=0)
    assert status == 400, body
    assert "unpacks to more than 16 MB, the largest this server accepts" in body
    assert system.probe.count("upload.received.v1") == 0 and system.probe.count("image.received.v1") == 0
