"""``cpcs dead-letters list`` and ``replay`` against the real RabbitMQ (the command run as a process)."""
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.contracts import EventCreatedV1
from shared.errors import PermanentError
from shared.messaging import REPLAYS_HEADER, Broker
from tests.support.amqp import dead_letters_tapped

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def cpcs(tmp_path, amqp_url, exchange, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "CPCS_AMQP_URL": amqp_url, "CPCS_EXCHANGE": exchange, "PYTHONPATH": str(ROOT),
           "CPCS_RUN_DIR": str(tmp_path / "run")}
    return subprocess.run([sys.executable, "-m", "services.cli", "dead-letters", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


async def test_dead_letters_are_listed_and_replayed_to_their_routing_key(amqp_url, unique_name, tmp_path):
    broker = Broker(amqp_url, unique_name)
    await broker.start()
    try:
        refused = []

        async def refuse(message):
            refused.append(message.ivorn)
            raise PermanentError(f"no sky for {message.ivorn}")

        async with dead_letters_tapped(broker) as dead_letters:
            await broker.subscribe(f"{unique_name}.q", {"event.created.v1": refuse})
            for name in ("ivo://A", "ivo://B"):
                await broker.publish(EventCreatedV1(ivorn=name, ra_deg=1.0, dec_deg=2.0))
            assert len(await dead_letters(2)) == 2
        assert sorted(refused) == ["ivo://A", "ivo://B"]
        await broker.drain()  # the consumer goes: a replayed message waits in a queue of the test's own
        watcher = await broker._channel.declare_queue(f"{unique_name}.watch", durable=True)
        await watcher.bind(unique_name, routing_key="event.created.v1")

        listed = await asyncio.to_thread(cpcs, tmp_path, amqp_url, unique_name, "list")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[-1] == f"2 dead letter(s) in {unique_name}.dead-letter"
        assert "event.created.v1" in lines[0] and f"{unique_name}.q" in lines[0] and "no sky for ivo://A" in lines[0]
        assert "no sky for ivo://B" in lines[1]
        assert (await broker.queue_state(broker.dead_letter_queue))[0] == 2  # listing leaves them

        refused_cli = await asyncio.to_thread(cpcs, tmp_path, amqp_url, unique_name, "replay")
        assert refused_cli.returncode != 0 and "--all" in refused_cli.stderr + refused_cli.stdout

        one = await asyncio.to_thread(cpcs, tmp_path, amqp_url, unique_name, "replay", "1")
        assert one.returncode == 0 and one.stdout.splitlines()[-1] == "1 dead letter(s) published again", one.stderr
        got = await watcher.get(no_ack=True, timeout=10)
        assert EventCreatedV1.model_validate_json(got.body).ivorn == "ivo://A"
        assert got.headers[REPLAYS_HEADER] == 1 and "x-cpcs-reason" not in got.headers
        assert (await broker.queue_state(broker.dead_letter_queue))[0] == 1

        rest = await asyncio.to_thread(cpcs, tmp_path, amqp_url, unique_name, "replay", "--all")
        assert rest.returncode == 0 and "1 dead letter(s) published again" in rest.stdout
        got = await watcher.get(no_ack=True, timeout=10)
        assert EventCreatedV1.model_validate_json(got.body).ivorn == "ivo://B"
        assert (await broker.queue_state(broker.dead_letter_queue))[0] == 0
    finally:
        for name in (broker.dead_letter_queue, f"{unique_name}.q", f"{unique_name}.watch"):
            await broker._channel.queue_delete(name)
        await broker._channel.exchange_delete(unique_name)
        await broker._channel.exchange_delete(f"{unique_name}.dlx")
        await broker.close()
