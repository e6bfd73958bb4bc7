"""Metrics that count, and readiness that tells the truth, on the real broker and database."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.support.flows import post_upload, seed_demo
from tests.support.servers import free_port
from tests.support.system import running_system, settings_for

pytestmark = pytest.mark.integration


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text page (0 when it is not there)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def scrape(http, url: str) -> str:
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def test_metrics_count_uploads_stages_and_failures(mongo_url, amqp_url, unique_name, tmp_path):
    metrics_port = free_port()
    settings = settings_for(mongo_url, amqp_url, unique_name, metrics_port=metrics_port)
    async with running_system(settings) as running:
        demo = await seed_demo(settings, tmp_path, running.probe)
        catalogue = await asyncio.to_thread(Path(demo["catalogue"]).read_bytes)
        before = await scrape(running.http, running.url)
        status, _ = await post_upload(running, demo, catalogue)
        assert status == 200
        refused, _ = await post_upload(running, demo, catalogue, hashtag="Nobody_" + "0" * 32)
        assert refused == 401
        failed, _ = await post_upload(running, demo, catalogue, forceFilter="SYNTH-DEMO/nosuchband")
        assert failed == 422
        await running.probe.wait_count("observation.failed.v1", lambda m: True, 1)
        after = await scrape(running.http, running.url)
        assert sample(after, "cpcs_uploads_total", outcome="accepted") - \
            sample(before, "cpcs_uploads_total", outcome="accepted") == 2
        assert sample(after, "cpcs_uploads_total", outcome="NotAuthenticated") >= 1
        assert sample(after, "cpcs_messages_total", service="calibration", routing_key="upload.received.v1",
                      outcome="ack") >= 2
        assert sample(after, "cpcs_handler_seconds_count", service="calibration",
                      routing_key="upload.received.v1") >= 2
        assert sample(after, "cpcs_outcomes_total", service="calibration", outcome="failed", stage="calibration") >= 1
        assert f'cpcs_queue_consumers{{queue="{unique_name}.calibration"}}' in after
        # the service without HTTP of its own serves the same registry on its metrics port
        async with running.http.get(f"http://127.0.0.1:{metrics_port}/readyz") as response:
            body = await response.json()
            assert response.status == 200 and body["service"] == "calibration", body
        assert "cpcs_handler_seconds_bucket" in await scrape(running.http, f"http://127.0.0.1:{metrics_port}")


async def test_readyz_checks_database_broker_and_consumers(mongo_url, amqp_url, unique_name, tmp_path):
    settings = settings_for(mongo_url, amqp_url, unique_name)
    async with running_system(settings) as running:
        for url in (running.url, settings.lightcurve_url):
            async with running.http.get(f"{url}/readyz") as response:
                body = await response.json()
                assert response.status == 200, body
                assert (body["database"], body["broker"], body["consumers"]) == ("ok", "ok", "ok")


@pytest.fixture
def own_broker():
    from tests.support.rabbit_node import RabbitNode

    node = RabbitNode()
    node.start()
    yield node
    node.stop()


async def test_readyz_fails_while_the_broker_is_down_and_recovers(own_broker, mongo_url, unique_name, tmp_path):
    settings = settings_for(mongo_url, own_broker.url, unique_name)
    async with running_system(settings, services=("ingest", "lightcurve")) as running:
        brokers = {running.url: running.started["ingest"].broker,
                   settings.lightcurve_url: running.started["lightcurve"].broker}

        async def ready(url: str) -> tuple[int, dict]:
            async with running.http.get(f"{url}/readyz") as response:
                return response.status, await response.json()

        assert (await ready(running.url))[0] == 200
        await asyncio.to_thread(own_broker.stop_app)
        for url, broker in brokers.items():
            await broker.wait_disconnected(timeout_s=30)
            status, body = await ready(url)
            assert status == 503 and body["broker"] == "not connected", body
            async with running.http.get(f"{url}/healthz") as response:
                assert response.status == 200  # alive, only not ready
        await asyncio.to_thread(own_broker.start_app)
        for url, broker in brokers.items():
            await broker.wait_reconnected(timeout_s=90)  # the robust connection restores its consumers
            status, body = await ready(url)
            assert status == 200 and body["consumers"] == "ok", body
