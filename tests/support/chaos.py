"""The chaos run shared by ``bench/chaos.py`` and ``tests/e2e/test_chaos.py``: all five services as processes
on a database server of the run's own (it is stopped and started again) and a broker (the run's own node
when it is to be restarted), distinct real uploads from several clients that retry on 503/429 per
``Retry-After`` (and on a refused connection while ingest restarts), while services are killed with
SIGKILL and started again, the broker restarts and the database stops. Then: how many uploads were sent,
acknowledged (202, or 409 naming the point an earlier try stored), are on the light curve, lost, duplicated,
stuck (no outcome by the deadline)."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from services import launcher
from services.local import service_queues
from shared.db import make_client
from shared.messaging import wait_for_consumers
from tests.support.catalogues import variant
from tests.support.flows import cpcs_form
from tests.support.servers import EmbeddedMongo
from tests.support.system import settings_for

#: The supervisor looks at the services again after this long even if none exited (kill() replaces one).
SUPERVISE_LOOK_AGAIN_S = 5.0
#: While settling, the database is read again after this long even if nothing was announced.
SETTLE_LOOK_AGAIN_S = 2.0


@dataclass
class Tally:
    sent: int = 0
    acknowledged: int = 0
    on_curve: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    refused: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (f"sent {self.sent} / acknowledged {self.acknowledged} / on the light curve {self.on_curve} / "
                f"lost {self.lost} / duplicated {self.duplicated} / stuck {self.stuck} in {self.seconds:.0f} s")


@dataclass
class Chaos:
    """One run's servers and services; ``events`` are (seconds after the first upload, what to do)."""

    workdir: Path
    amqp_url: str
    uploads: int = 100
    clients: int = 4
    name: str = field(default_factory=lambda: f"chaos{os.getpid()}x{int(time.time()) % 100000}")
    mongo: EmbeddedMongo | None = None
    processes: launcher.Processes = field(default_factory=launcher.Processes)
    log: Callable[[str], None] = print
    restarts: int = 0
    _restarting: set[str] = field(default_factory=set)  # services kill() is starting again itself

    def __post_init__(self) -> None:
        self.mongo = EmbeddedMongo(self.workdir / "mongo")
        (self.workdir / "mongo").mkdir(parents=True, exist_ok=True)
        self.settings = settings_for(self.mongo.url, self.amqp_url, self.name)
        env = dict(os.environ)
        env.update({"CPCS_AMQP_URL": self.amqp_url, "CPCS_MONGO_URL": self.mongo.url, "CPCS_MONGO_DB": self.name,
                    "CPCS_EXCHANGE": self.name, "CPCS_INGEST_PORT": str(self.settings.ingest_port),
                    "CPCS_LIGHTCURVE_PORT": str(self.settings.lightcurve_port),
                    "CPCS_PUBLIC_URL": self.settings.public_url, "CPCS_LIGHTCURVE_URL": self.settings.lightcurve_url,
                    "CPCS_RETRY_DELAY_S": "0.2", "CPCS_RETRY_MAX_DELAY_S": "5", "CPCS_OUTBOX_INTERVAL_S": "0.5",
                    "CPCS_RECONCILE_INTERVAL_S": "5", "CPCS_RECONCILE_AFTER_S": "120", "CPCS_RATE_LIMITS": "false",
                    "CPCS_UPLOAD_WAIT_S": "0"})
        self.env = env

    # servers and services
    async def start(self) -> None:
        from services.demo import load_demo

        assert self.mongo is not None
        self.mongo.start()
        for name in launcher.SERVICES:
            self.start_service(name)
        await self.wait_ready()
        self.demo = await load_demo(out_dir=self.workdir / "demo", settings=self.settings["ingest"])
        self.catalogue = await asyncio.to_thread(Path(self.demo["catalogue"]).read_bytes)

    def start_service(self, name: str) -> None:
        launcher.start_service(self.processes, name, env=self.env, log_dir=self.workdir / "logs")

    async def wait_ready(self) -> None:
        for port in (self.settings.ingest_port, self.settings.lightcurve_port):
            await asyncio.to_thread(launcher.wait_healthy, f"http://127.0.0.1:{port}", timeout_s=120)
        await wait_for_consumers(self.amqp_url, service_queues(self.name), timeout_s=120)

    async def kill(self, name: str) -> None:
        """SIGKILL a service (no draining, nothing finished) and start it again (the supervisor leaves it)."""
        proc = self.processes.procs[name]
        self._restarting.add(name)
        try:
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
            self.log(f"  killed {name} (SIGKILL), starting it again")
            self.start_service(name)
        finally:
            self._restarting.discard(name)

    async def stop_database(self, seconds: float) -> None:
        assert self.mongo is not None
        self.log(f"  database stopped for {seconds:.0f} s")
        await asyncio.to_thread(self.mongo.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(self.mongo.start)
        self.log("  database started again")

    def close(self) -> None:
        self.processes.stop_all()
        if self.mongo is not None:
            self.mongo.stop()

    async def delete_topology(self) -> None:
        """The run's exchange and queues go (on a shared broker, nothing of the run stays)."""
        from shared.messaging import Broker
        from tests.support.system import delete_topology

        broker = Broker(self.amqp_url, self.name)
        await broker.start()
        try:
            await delete_topology(broker, self.name)
        finally:
            await broker.close()

    # the clients
    async def _client(self, http: aiohttp.ClientSession, todo: asyncio.Queue, tally: Tally, deadline: float) -> None:
        while True:
            try:
                n = todo.get_nowait()
            except asyncio.QueueEmpty:
                return
            data = variant(self.catalogue, n + 1)
            tally.sent += 1
            while time.monotonic() < deadline:
                form = cpcs_form(self.demo, data, dryRun="0")
                try:
                    async with http.post(f"{self.settings.public_url}/api/v1/uploads", data=form,
                                         timeout=aiohttp.ClientTimeout(total=60)) as response:
                        await response.read()
                        status, wait = response.status, float(response.headers.get("Retry-After", "1"))
                except (aiohttp.ClientError, TimeoutError):
                    await asyncio.sleep(1.0)  # ingest is restarting: try again
                    continue
                if status in (202, 409):
                    tally.acknowledged += 1
                    break
                if status in (429, 503) or status >= 500:
                    if status >= 500 and status != 503:
                        tally.refused.append(f"upload {n}: {status}")
                    await asyncio.sleep(min(wait, 10.0))
                    continue
                tally.refused.append(f"upload {n}: {status}")
                break

    async def run(self, events: list[tuple[float, Callable[[], Awaitable[None]]]], *,
                  settle_s: float = 180.0) -> Tally:
        tally = Tally()
        todo: asyncio.Queue = asyncio.Queue()
        for n in range(self.uploads):
            todo.put_nowait(n)
        started = time.monotonic()
        deadline = started + settle_s + 600

        async def chaos() -> None:
            for at_s, action in sorted(events, key=lambda e: e[0]):
                await asyncio.sleep(max(0.0, started + at_s - time.monotonic()))
                await action()

        supervisor = asyncio.create_task(self._supervise())
        try:
            async with aiohttp.ClientSession() as http:
                agitator = asyncio.create_task(chaos())
                await asyncio.gather(*(self._client(http, todo, tally, deadline) for _ in range(self.clients)))
                await agitator
            await self._settle(tally, time.monotonic() + settle_s)
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        tally.seconds = time.monotonic() - started
        return tally

    async def _supervise(self) -> None:
        """What a process supervisor (systemd, the orchestrator) does: a service that exited (e.g. it could
        not reach the database when it started) is started again. It waits on the services' exits (a pidfd
        each, readable once its process is gone)."""
        loop = asyncio.get_running_loop()
        while True:
            for name, proc in list(self.processes.procs.items()):
                if name in launcher.SERVICES and proc.poll() is not None and name not in self._restarting:
                    self.log(f"  {name} exited ({proc.returncode}): starting it again")
                    self.restarts += 1
                    self.start_service(name)
            exited, fds = asyncio.Event(), []
            try:
                for name, proc in self.processes.procs.items():
                    if name in launcher.SERVICES and proc.poll() is None:
                        with contextlib.suppress(ProcessLookupError):
                            fds.append(os.pidfd_open(proc.pid))
                            loop.add_reader(fds[-1], exited.set)
                # a service replaced meanwhile (kill) has a new process: look again after a while as well
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(exited.wait(), SUPERVISE_LOOK_AGAIN_S)
            finally:
                for fd in fds:
                    loop.remove_reader(fd)
                    os.close(fd)

    async def _settle(self, tally: Tally, until: float) -> None:
        """Until every observation has an outcome and a point, or the deadline; then count. The database is
        read again each time an outcome or a light-curve change is announced (on the run's exchange), and
        at least every ``SETTLE_LOOK_AGAIN_S`` (a status is written just after its message)."""
        from shared.messaging import Broker

        assert self.mongo is not None
        client = make_client(self.mongo.url)
        db = client[self.name]
        broker = Broker(self.amqp_url, self.name)
        changed = asyncio.Event()

        async def on_change(delivery) -> None:
            changed.set()

        try:
            await broker.start()
            await broker.subscribe_raw(None, ["observation.calibrated.v1", "observation.failed.v1",
                                              "lightcurve.updated.v1"], on_change)
            while True:
                changed.clear()
                with contextlib.suppress(Exception):
                    observations = await db.observations.find({}, {"sha256": 1, "status": 1, "followup_id": 1}
                                                              ).to_list(None)
                    points = {p["_id"] for p in await db.points.find({}, {"_id": 1}).to_list(None)}
                    by_file: dict[str, list[dict]] = {}
                    for doc in observations:
                        by_file.setdefault(doc["sha256"], []).append(doc)
                    tally.on_curve = sum(1 for docs in by_file.values()
                                         if any(d["followup_id"] in points for d in docs))
                    tally.duplicated = sum(len(docs) - 1 for docs in by_file.values())
                    tally.stuck = sum(1 for d in observations if d["status"] == "received")
                    tally.lost = max(0, tally.acknowledged - tally.on_curve - tally.stuck)
                    if tally.on_curve >= tally.acknowledged and tally.stuck == 0:
                        return
                left_s = until - time.monotonic()
                if left_s <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(left_s, SETTLE_LOOK_AGAIN_S))
        finally:
            await broker.close()
            await client.close()


def workdir() -> Path:
    """A folder the run's servers can use (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix="cpcs-chaos-"))
