"""Start the whole system on one machine: the embedded database server and every service as a process.

Used by ``cpcs up`` (behind ``make up``) and by the end-to-end tests.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICES = ("ingest", "astrometry", "photometry", "calibration", "lightcurve")
#: each service's own settings model (module:class), imported only when a system is built
SETTINGS_MODELS = {"ingest": "services.ingest.settings:IngestSettings",
                   "astrometry": "services.astrometry.settings:AstrometrySettings",
                   "photometry": "services.photometry.settings:PhotometrySettings",
                   "calibration": "services.calibration.settings:CalibrationSettings",
                   "lightcurve": "services.lightcurve.settings:LightcurveSettings"}


#: the services that may run as several processes on one machine: consumers without an HTTP port of their
#: own, competing for their queue's messages (ingest and lightcurve scale behind a load balancer, deploy/)
REPLICABLE = ("astrometry", "photometry", "calibration")


def parse_replicas(text: str | None) -> dict[str, int]:
    """``"calibration=2,photometry=2"`` -> ``{"calibration": 2, "photometry": 2}``; ValueError with the
    reason for anything else."""
    replicas: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, count = part.partition("=")
        name = name.strip()
        if not sep or name not in REPLICABLE:
            raise ValueError(f"--replicas takes SERVICE=N with SERVICE one of {', '.join(REPLICABLE)}, "
                             f"not {part!r}")
        try:
            n = int(count)
        except ValueError:
            raise ValueError(f"--replicas {part!r}: the count must be a whole number") from None
        if not 1 <= n <= 16:
            raise ValueError(f"--replicas {part!r}: the count must be from 1 to 16")
        replicas[name] = n
    return replicas


def process_names(replicas: dict[str, int] | None = None) -> list[tuple[str, str]]:
    """(process name, service) of every process to start: ``calibration``, ``calibration-2``, ..."""
    names = []
    for service in SERVICES:
        names.append((service, service))
        names.extend((f"{service}-{k}", service) for k in range(2, (replicas or {}).get(service, 1) + 1))
    return names


def settings_model(service: str) -> type:
    module, _, name = SETTINGS_MODELS[service].partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class SystemSettings:
    """The settings of every service of one system, built from the same values (each model takes the
    values it declares, the environment the rest): for the launcher, ``cpcs up`` and tests, which start
    or talk to several services. ``system["calibration"]`` is that service's model; the values the
    services share (broker, database, public URLs) read as attributes (ingest's, and
    ``lightcurve_port`` the lightcurve's)."""

    services: dict[str, Any]

    @classmethod
    def build(cls, services: tuple[str, ...] = SERVICES, **values: Any) -> SystemSettings:
        models = {name: settings_model(name) for name in services}
        unused = sorted(set(values) - {f for model in models.values() for f in model.model_fields})
        if unused:
            raise ValueError(f"no service has the setting(s) {', '.join(unused)}")
        return cls({name: model(**{k: v for k, v in values.items() if k in model.model_fields})
                    for name, model in models.items()})

    def __getitem__(self, service: str) -> Any:
        return self.services[service]

    def __getattr__(self, name: str) -> Any:
        if name == "services":
            raise AttributeError(name)
        if name == "lightcurve_port" and "lightcurve" in self.services:
            return self.services["lightcurve"].lightcurve_port
        return getattr(self.services["ingest"], name)

    def environment(self) -> dict[str, str]:
        """The ``CPCS_*`` variables that make service processes read the shared values of this system."""
        ingest = self.services["ingest"]
        env = {"CPCS_AMQP_URL": ingest.amqp_url.get_secret_value(),
               "CPCS_MONGO_URL": ingest.mongo_url.get_secret_value(), "CPCS_MONGO_DB": ingest.mongo_db,
               "CPCS_EXCHANGE": ingest.exchange,
               "CPCS_RETRY_DELAY_S": str(ingest.retry_delay_s), "CPCS_INGEST_PORT": str(ingest.ingest_port),
               "CPCS_PUBLIC_URL": ingest.public_url, "CPCS_LIGHTCURVE_URL": ingest.lightcurve_url}
        if "lightcurve" in self.services:
            env["CPCS_LIGHTCURVE_PORT"] = str(self.services["lightcurve"].lightcurve_port)
        return env


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(check, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout_s:.0f} s")


def ensure_rabbitmq(host: str = "127.0.0.1", port: int = 5672) -> str:
    """RabbitMQ on host:port; started (and on Debian as root, installed) if it is not running."""
    if port_open(host, port):
        return "already running"
    if shutil.which("rabbitmq-server") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise RuntimeError("RabbitMQ is not running and not installed: install the rabbitmq-server "
                               "package, or point CPCS_AMQP_URL at a broker")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "rabbitmq-server"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    subprocess.run(["rabbitmq-server", "-detached"], check=False)
    wait_until(lambda: port_open(host, port), timeout_s=90, what="RabbitMQ")
    return "started"


def ensure_astrometry_net() -> str:
    """solve-field for the image path; installed from the Debian packages when missing and run as root."""
    if shutil.which("solve-field"):
        return "installed"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "missing: install the Debian package astrometry.net to calibrate images"
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", "astrometry.net"], check=False,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return "installed now" if done.returncode == 0 else "missing: the astrometry.net package did not install"


def executable(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


@dataclass
class Processes:
    """Child processes with their log files; stopped together."""

    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], *, env: dict, log_dir: Path) -> subprocess.Popen:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop(self, name: str, *, timeout_s: float = 15) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs)[::-1]:
            self.stop(name)


def start_mongo(processes: Processes, *, data_dir: Path, port: int, log_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    processes.start("mongo", [executable("nx-27017"), "--data-dir", str(data_dir), "-p", str(port),
                              "--log-file", str(log_dir / "nx-27017.log"),
                              "--pid-file", str(data_dir / "nx-27017.pid")], env=dict(os.environ), log_dir=log_dir)
    wait_until(lambda: port_open("127.0.0.1", port), timeout_s=30, what="the database server")


def start_service(processes: Processes, name: str, *, env: dict, log_dir: Path,
                  process_name: str | None = None) -> subprocess.Popen:
    """Service ``name`` as a process; ``process_name`` names a replica (its log file and pid)."""
    return processes.start(process_name or name, [sys.executable, "-m", f"services.{name}.main"], env=env,
                           log_dir=log_dir)


def wait_healthy(url: str, *, timeout_s: float = 60) -> None:
    import urllib.request

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(healthy, timeout_s=timeout_s, what=url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextlib.asynccontextmanager
async def isolated_system(prefix: str, replicas: dict[str, int] | None = None):
    """The five services as processes on their own exchange, database server and ports (benchmarks);
    ``replicas`` runs more processes of a service (``{"calibration": 2}``), competing for its queue.

    Yields ``(settings, run_dir)``; everything is stopped afterwards and the logs are kept in run_dir.
    """
    import tempfile
    import uuid

    from pydantic import SecretStr

    from services.local import service_queues
    from shared.messaging import wait_for_consumers

    run_dir = Path(tempfile.mkdtemp(prefix=f"cpcs-{prefix}-"))
    name = prefix + uuid.uuid4().hex[:8]
    mongo_port, ingest_port, lc_port = free_port(), free_port(), free_port()
    settings = SystemSettings.build(mongo_url=SecretStr(f"mongodb://127.0.0.1:{mongo_port}"), mongo_db=name,
                                    exchange=name, ingest_port=ingest_port, lightcurve_port=lc_port,
                                    public_url=f"http://127.0.0.1:{ingest_port}",
                                    lightcurve_url=f"http://127.0.0.1:{lc_port}")
    env = {**os.environ, **settings.environment()}
    ensure_rabbitmq()
    procs = Processes()
    start_mongo(procs, data_dir=run_dir / "mongo", port=mongo_port, log_dir=run_dir / "logs")
    try:
        for process, service in process_names(replicas):
            start_service(procs, service, env=env, log_dir=run_dir / "logs", process_name=process)
        wait_healthy(settings.public_url)
        wait_healthy(settings.lightcurve_url)
        await wait_for_consumers(settings.amqp_url.get_secret_value(), service_queues(name))
        yield settings, run_dir
    finally:
        procs.stop_all()
        print(f"logs: {run_dir / 'logs'}")
