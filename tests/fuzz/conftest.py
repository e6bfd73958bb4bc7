"""One live stack for the fuzz stage's tests (every service a process, the demo loaded)."""
from __future__ import annotations

import pytest

from tests.fuzz.stack import live_stack


@pytest.fixture(scope="module")
async def stack(mongo_url, amqp_url, tmp_path_factory):
    import uuid

    name = "fz" + uuid.uuid4().hex[:10]
    async with live_stack(mongo_url, amqp_url, name, tmp_path_factory.mktemp("fuzz")) as running:
        yield running
