"""The broker goes away under a running ingest (a RabbitMQ node of the test's own; the shared one is never
stopped): a dry run is refused 503 with Retry-After, a stored upload is accepted into the outbox (202) and
calibrated once the broker is back, one point on the curve; /readyz says not ready meanwhile."""
import asyncio
import time
from pathlib import Path

import pytest

from tests.support.flows import cpcs_form, post_upload, seed_demo
from tests.support.system import running_system, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker():
    from tests.support.rabbit_node import RabbitNode

    node = RabbitNode()
    node.start()
    yield node
    node.stop()


async def poll(what, check, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_uploads_while_the_broker_is_down_are_503_or_kept_and_sent_after(own_broker, mongo_url, unique_name,
                                                                               tmp_path):
    settings = settings_for(mongo_url, own_broker.url, unique_name)
    async with running_system(settings) as running:
        demo = await seed_demo(settings, tmp_path, running.probe)
        catalogue = await asyncio.to_thread(Path(demo["catalogue"]).read_bytes)
        db = running.started["ingest"].store.db
        ingest_broker = running.started["ingest"].broker

        await asyncio.to_thread(own_broker.stop_app)
        await ingest_broker.wait_disconnected(timeout_s=30)
        async with running.http.get(f"{running.url}/readyz") as response:
            assert response.status == 503 and (await response.json())["broker"] == "not connected"

        async with running.http.post(f"{running.url}/cgi/upload", data=cpcs_form(demo, catalogue)) as response:
            body = await response.text()
            assert response.status == 503, body
            assert int(response.headers["Retry-After"]) >= 1
            assert "message broker is not reachable" in body
        assert await db["scratch.files"].find({}).to_list(None) == []

        status, body = await post_upload(running, demo, catalogue, dryRun="0")
        assert status == 202, body
        (stored,) = await db.observations.find({}).to_list(None)
        assert stored["status"] == "received" and stored["outbox_pending"] is True

        await asyncio.to_thread(own_broker.start_app)
        await ingest_broker.wait_reconnected(timeout_s=90)

        async def ready():
            async with running.http.get(f"{running.url}/readyz") as response:
                return response.status == 200
        await poll("ingest ready again", ready, 60)

        async def final():
            doc = await db.observations.find_one({"_id": stored["_id"]})
            return doc if doc["status"] != "received" else None
        done = await poll("the stored upload's outcome", final, 120)
        assert done["outbox_pending"] is False and done["status"] != "failed", done.get("reason")

        async def on_curve():
            return await db.points.find({"_id": stored["followup_id"]}).to_list(None)
        points = await poll("the point on the light curve", on_curve, 60)
        assert len(points) == 1
