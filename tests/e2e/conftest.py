"""Every service as its own process, on the real broker and database server, isolated by unique names."""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from services import launcher
from services.launcher import SystemSettings
from services.local import service_queues
from shared.messaging import Broker, wait_for_consumers
from tests.support.flows import seed_demo
from tests.support.system import Probe, delete_topology, settings_for


@dataclass
class ProcessSystem:
    settings: SystemSettings
    env: dict
    processes: launcher.Processes
    log_dir: Path
    probe: Probe
    broker: Broker
    http: aiohttp.ClientSession
    demo: dict
    catalogue: bytes

    @property
    def url(self) -> str:
        return self.settings.public_url

    def start(self, name: str) -> None:
        launcher.start_service(self.processes, name, env=self.env, log_dir=self.log_dir)

    def stop(self, name: str) -> None:
        self.processes.stop(name)

    async def wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        for port in (self.settings.ingest_port, self.settings.lightcurve_port):
            await loop.run_in_executor(None, lambda p=port: launcher.wait_healthy(f"http://127.0.0.1:{p}"))
        await wait_for_consumers(self.settings.amqp_url.get_secret_value(), service_queues(self.settings.exchange))


def service_env(settings: SystemSettings) -> dict:
    env = dict(os.environ)
    env.update({"CPCS_AMQP_URL": settings.amqp_url.get_secret_value(),
                "CPCS_MONGO_URL": settings.mongo_url.get_secret_value(), "CPCS_MONGO_DB": settings.mongo_db,
                "CPCS_EXCHANGE": settings.exchange, "CPCS_INGEST_PORT": str(settings.ingest_port),
                "CPCS_LIGHTCURVE_PORT": str(settings.lightcurve_port), "CPCS_PUBLIC_URL": settings.public_url,
                "CPCS_LIGHTCURVE_URL": settings.lightcurve_url, "CPCS_RETRY_DELAY_S": "0.05"})
    return env


@pytest.fixture
async def processes(mongo_url, amqp_url, unique_name, tmp_path):
    settings = settings_for(mongo_url, amqp_url, unique_name)
    broker = Broker(amqp_url, settings.exchange)
    await broker.start()
    probe = Probe(broker)
    await probe.start()
    procs = launcher.Processes()
    system = ProcessSystem(settings=settings, env=service_env(settings), processes=procs, log_dir=tmp_path / "logs",
                           probe=probe, broker=broker, http=aiohttp.ClientSession(), demo={}, catalogue=b"")
    try:
        for name in launcher.SERVICES:
            system.start(name)
        await system.wait_ready()
        system.demo = await seed_demo(settings, tmp_path / "demo", probe)
        system.catalogue = await asyncio.to_thread(Path(system.demo["catalogue"]).read_bytes)
        yield system
    finally:
        procs.stop_all()
        await system.http.close()
        await delete_topology(broker, settings.exchange)
        await broker.close()
