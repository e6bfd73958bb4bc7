"""The broker goes away under a running ingest (a RabbitMQ node of the test's own; the shared one is never
stopped): a dry run is refused 503 with Retry-After, a stored upload is accepted into the outbox (202) and
calibrated once the broker is back, one point on the curve; /readyz says not ready meanwhile."""
import asyncio
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


def done_when(obj, method: str, matches) -> asyncio.Event:
    """An event set once ``obj.method`` (a running service's store) has returned for arguments that
    ``matches``: the test waits on that write itself, under a timeout, instead of polling for it."""
    original, done = getattr(obj, method), asyncio.Event()

    async def watched(*args, **kwargs):
        result = await original(*args, **kwargs)
        if matches(*args, **kwargs):
            done.set()
        return result

    setattr(obj, method, watched)
    return done


async def waited(what: str, done: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


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

        ingest_store = running.started["ingest"].store
        sent = done_when(ingest_store, "clear_outbox", lambda oid, *_: oid == stored["_id"])
        recorded = done_when(ingest_store, "record_outcome", lambda oid, *_: oid == stored["_id"])
        on_curve = done_when(running.started["lightcurve"].store, "upsert_point",
                             lambda doc: doc["_id"] == stored["followup_id"])
        await asyncio.to_thread(own_broker.start_app)
        await ingest_broker.wait_reconnected(timeout_s=90)

        await waited("the stored upload's message to leave the outbox", sent, 120)
        await waited("the stored upload's outcome", recorded, 120)
        done = await db.observations.find_one({"_id": stored["_id"]})
        assert done["outbox_pending"] is False and done["status"] != "failed", done.get("reason")
        async with running.http.get(f"{running.url}/readyz") as response:
            assert response.status == 200, await response.text()  # ingest ready again

        await waited("the point on the light curve", on_curve, 60)
        points = await db.points.find({"_id": stored["followup_id"]}).to_list(None)
        assert len(points) == 1
