"""``cpcs up`` on ports of its own: every URL follows the ports, the other commands follow the running stack
through its run file, and a database server it did not start is not adopted unless asked."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import aio_pika
import pytest

from services import launcher
from shared import broker_users
from shared.messaging import Broker
from tests.support.servers import free_port
from tests.support.system import delete_topology

pytestmark = pytest.mark.e2e
CPCS = [sys.executable, "-m", "services.cli"]


def cpcs(*args: str, env: dict, timeout_s: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*CPCS, *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False)


def stack_env(run_dir: Path, name: str, amqp_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPCS_")}
    env.update({"CPCS_RUN_DIR": str(run_dir), "CPCS_EXCHANGE": name, "CPCS_MONGO_DB": name, "CPCS_AMQP_URL": amqp_url,
                "CPCS_INTAKE_AMQP_URL": broker_users.intake_url(amqp_url, user=f"intake-{name}")})
    return env


async def upload_over_amqp(url: str, exchange: str, demo: dict) -> dict:
    """A dry-run upload as an observatory's script sends it: its own reply queue, the intake routing key."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)
        headers = {"hashtag": demo["token"], "EventID": demo["event"], "MJD": demo["mjd"], "matchDist": "2",
                   "dryRun": "1", "filename": "test.cat"}
        body = await asyncio.to_thread(Path(demo["catalogue"]).read_bytes)
        await (await channel.get_exchange(exchange)).publish(
            aio_pika.Message(body, headers=headers, reply_to=replies.name, correlation_id="e2e"),
            routing_key="upload.submitted.v1")
        async with asyncio.timeout(60), replies.iterator() as messages:
            async for message in messages:
                await message.ack()
                return json.loads(message.body)
    finally:
        await connection.close()
    raise AssertionError("no answer")


async def test_cpcs_up_on_other_ports_and_the_commands_that_follow_it(amqp_url, unique_name, tmp_path):
    run_dir, env = tmp_path / "run", stack_env(tmp_path / "run", unique_name, amqp_url)
    mongo_port, ingest_port, lightcurve_port = free_port(), free_port(), free_port()
    try:
        up = await asyncio.to_thread(cpcs, "up", "--mongo-port", str(mongo_port), "--ingest-port", str(ingest_port),
                                     "--lightcurve-port", str(lightcurve_port), "--replicas", "calibration=2", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"Open http://127.0.0.1:{ingest_port}/" in up.stdout
        assert "(calibration x2)" in up.stdout and (run_dir / "pids" / "calibration-2.pid").exists()
        watcher = Broker(amqp_url, unique_name)
        await watcher.start()
        try:  # two calibration processes compete for one queue
            assert (await watcher.queue_state(f"{unique_name}.calibration"))[1] == 2
        finally:
            await watcher.close()
        assert "Online reference catalogues" in up.stdout and "CPCS_REFCAT_ONLINE" in up.stdout
        assert f"CPCS_INTAKE_AMQP_URL={env['CPCS_INTAKE_AMQP_URL']}" in up.stdout
        assert (run_dir / "intake-amqp.env").stat().st_mode & 0o077 == 0
        written = (run_dir / "settings.env").read_text()
        assert f"CPCS_LIGHTCURVE_URL=http://127.0.0.1:{lightcurve_port}" in written
        assert f"CPCS_MONGO_URL=mongodb://127.0.0.1:{mongo_port}" in written
        demo = dict(line.strip().split(": ", 1) for line in up.stdout.splitlines()
                    if line.startswith("  ") and ": " in line)

        if broker_users.rabbitmqctl():  # an observatory uploads over AMQP with the intake user cpcs up made
            assert f"broker users: intake-{unique_name} ready" in up.stdout, up.stdout
            answer = await upload_over_amqp(env["CPCS_INTAKE_AMQP_URL"], unique_name, demo)
            assert answer["mag"] is not None, answer

        listed = await asyncio.to_thread(cpcs, "refcat", "list", env=env)  # no --mongo-url: the running stack's
        assert listed.returncode == 0 and "SYNTH-DEMO" in listed.stdout, listed.stdout + listed.stderr

        sent = await asyncio.to_thread(cpcs, "upload", demo["catalogue"], "--event", demo["event"], "--token",
                                       demo["token"], "--mjd", demo["mjd"], "--json", env=env)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert f"http://127.0.0.1:{ingest_port}/plots/" in sent.stdout  # the plot link follows the port
        said = await asyncio.to_thread(cpcs, "upload", demo["catalogue"], "--event", demo["event"], "--token",
                                       demo["token"], "--mjd", demo["mjd"], env=env)
        assert said.returncode == 0 and "dry run: NOT stored" in said.stdout, said.stdout + said.stderr
    finally:
        down = await asyncio.to_thread(cpcs, "down", env=env)
        defs = broker_users.from_environment(env)
        broker_users.remove(dataclasses.replace(defs, users=(defs.user(f"intake-{unique_name}"),)))
        broker = Broker(amqp_url, unique_name)
        await broker.start()
        await delete_topology(broker, unique_name)
        await broker.close()
    assert down.returncode == 0, down.stderr
    assert not launcher.port_open("127.0.0.1", ingest_port) and not launcher.port_open("127.0.0.1", mongo_port)


async def test_cpcs_up_refuses_a_database_it_did_not_start(amqp_url, unique_name, tmp_path):
    run_dir, env = tmp_path / "run", stack_env(tmp_path / "run", unique_name, amqp_url)
    port = free_port()
    processes = launcher.Processes()
    launcher.start_mongo(processes, data_dir=tmp_path / "foreign", port=port, log_dir=tmp_path / "logs")
    try:
        up = await asyncio.to_thread(cpcs, "up", "--mongo-port", str(port), "--ingest-port", str(free_port()),
                                     "--lightcurve-port", str(free_port()), env=env)
    finally:
        processes.stop_all()
    assert up.returncode == 1
    assert up.stderr.startswith(f"cpcs: a database server this run did not start is answering on port {port}")
    assert up.stderr.count("\n") == 1 and "--adopt-database" in up.stderr
    assert not list(run_dir.glob("pids/*.pid"))  # nothing was started
