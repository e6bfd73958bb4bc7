"""``CPCS_QUEUE_TYPE=quorum``: the services' durable queues are quorum queues (replicated on a cluster), and
messages go through them as through classic ones."""
from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from shared.contracts import LightcurveEventStoredV1
from shared.messaging import Broker

pytestmark = pytest.mark.integration


def queue_types() -> dict[str, str]:
    out = subprocess.run(["rabbitmqctl", "list_queues", "-q", "name", "type"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return dict(line.split("\t")[:2] for line in out.splitlines() if "\t" in line)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="rabbitmqctl is not installed")
async def test_quorum_queues_are_declared_and_carry_messages(amqp_url, unique_name):
    broker = Broker(amqp_url, unique_name, queue_type="quorum")
    await broker.start()
    got: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_stored(message):
        if not got.done():
            got.set_result(message)

    try:
        await broker.subscribe(f"{unique_name}.lightcurve", {"lightcurve.event.stored.v1": on_stored})
        sent = LightcurveEventStoredV1(event_ivorn="ivo://quorum-test", revision=1, applied=True)
        await broker.publish(sent)
        assert (await asyncio.wait_for(got, 30)).event_ivorn == "ivo://quorum-test"
        types = await asyncio.to_thread(queue_types)
        assert types[f"{unique_name}.lightcurve"] == "quorum"
        assert types[f"{unique_name}.dead-letter"] == "quorum"
    finally:
        channel = broker._channel
        for queue in (f"{unique_name}.lightcurve", f"{unique_name}.dead-letter"):
            await channel.queue_delete(queue)
        await channel.exchange_delete(unique_name)
        await channel.exchange_delete(f"{unique_name}.dlx")
        await broker.close()
