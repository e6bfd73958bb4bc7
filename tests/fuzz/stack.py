"""A live stack for the fuzz stage: every service as its own process on the real broker and database server,
the demo loaded, and the checks that it survived (each process alive, each queue consumed)."""
from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika

from services import launcher
from services.launcher import SystemSettings
from shared.messaging import service_queues, wait_for_consumers
from tests.support.flows import seed_demo
from tests.support.system import settings_for

#: What the fuzz stage changes in every service's environment: uploads of at most 1 MB (an oversize form
#: is cheap to send), no rate limits (every case reaches the parsing it aims at), short waits.
FUZZ_ENV = {"CPCS_MAX_UPLOAD_MB": "1", "CPCS_RATE_LIMITS": "false", "CPCS_UPLOAD_WAIT_S": "5",
            "CPCS_RETRY_DELAY_S": "0.05", "CPCS_MAX_RETRIES": "2"}


@dataclass
class Stack:
    settings: SystemSettings
    processes: launcher.Processes
    log_dir: Path
    demo: dict = field(default_factory=dict)
    catalogue: bytes = b""

    @property
    def url(self) -> str:
        return self.settings.public_url

    @property
    def amqp_url(self) -> str:
        return self.settings.amqp_url.get_secret_value()

    @property
    def exchange(self) -> str:
        return self.settings.exchange

    def queues(self) -> list[str]:
        return [*service_queues(self.exchange), f"{self.exchange}.ingest.intake"]

    def dead(self) -> dict[str, int | None]:
        """The processes that exited, with their exit status."""
        return {name: proc.poll() for name, proc in self.processes.procs.items() if proc.poll() is not None}

    async def consumers(self) -> dict[str, int]:
        """Consumers of each service queue, as the broker counts them."""
        connection = await aio_pika.connect(self.amqp_url)
        try:
            counts = {}
            for name in self.queues():
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(name, passive=True)
                    counts[name] = queue.declaration_result.consumer_count
                except aio_pika.exceptions.ChannelClosed:
                    counts[name] = 0
                finally:
                    if not channel.is_closed:
                        await channel.close()
            return counts
        finally:
            await connection.close()

    def log_errors(self, limit: int = 40) -> str:
        """The last line of each traceback in the services' logs (what raised), counted."""
        from collections import Counter

        found: Counter = Counter()
        for log in sorted(self.log_dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            for i, line in enumerate(lines):
                if line.startswith("Traceback"):
                    j = i + 1
                    while j < len(lines) and (lines[j].startswith(" ") or lines[j].startswith("During")
                                              or not lines[j].strip() or lines[j].startswith("Traceback")):
                        j += 1
                    if j < len(lines):
                        found[f"{log.stem}: {lines[j][:200]}"] += 1
                elif "giving up" in line:
                    found[f"{log.stem}: {line[line.find('giving up'):][:200]}"] += 1
        return "\n".join(f"{n:5d} {what}" for what, n in found.most_common(limit))

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for log in sorted(self.log_dir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)


def _env(settings: SystemSettings) -> dict:
    env = dict(os.environ)
    env.update(FUZZ_ENV)
    env.update({"CPCS_AMQP_URL": settings.amqp_url.get_secret_value(),
                "CPCS_MONGO_URL": settings.mongo_url.get_secret_value(), "CPCS_MONGO_DB": settings.mongo_db,
                "CPCS_EXCHANGE": settings.exchange, "CPCS_INGEST_PORT": str(settings.ingest_port),
                "CPCS_LIGHTCURVE_PORT": str(settings.lightcurve_port), "CPCS_PUBLIC_URL": settings.public_url,
                "CPCS_LIGHTCURVE_URL": settings.lightcurve_url})
    return env


async def _delete_topology(amqp_url: str, exchange: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for queue in [*service_queues(exchange), f"{exchange}.ingest.intake", f"{exchange}.dead-letter"]:
            await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)
        await channel.exchange_delete(f"{exchange}.dlx")
    finally:
        await connection.close()


@asynccontextmanager
async def live_stack(mongo_url: str, amqp_url: str, name: str, tmp_path: Path, services=launcher.SERVICES):
    """The services as processes on database ``name`` and exchange ``name``, with the demo loaded."""
    saved = {k: os.environ.get(k) for k in FUZZ_ENV}
    os.environ.update(FUZZ_ENV)  # settings_for reads the environment now
    try:
        settings = settings_for(mongo_url, amqp_url, name)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    stack = Stack(settings=settings, processes=launcher.Processes(), log_dir=tmp_path / "logs")
    env = _env(settings)
    try:
        for service in services:
            launcher.start_service(stack.processes, service, env=env, log_dir=stack.log_dir)
        loop = asyncio.get_running_loop()
        for port in (settings.ingest_port, settings.lightcurve_port):
            await loop.run_in_executor(None, lambda p=port: launcher.wait_healthy(f"http://127.0.0.1:{p}"))
        await wait_for_consumers(amqp_url, stack.queues())
        stack.demo = await seed_demo(settings, tmp_path / "demo")
        stack.catalogue = await asyncio.to_thread(Path(stack.demo["catalogue"]).read_bytes)
        yield stack
    finally:
        await asyncio.to_thread(stack.processes.stop_all)
        await _delete_topology(amqp_url, settings.exchange)
