"""``cpcs up`` / ``cpcs down``: the whole system on this machine, on embedded defaults."""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit

from services import launcher, runfile
from shared import broker_users
from shared.messaging import service_queues, wait_for_consumers

#: Where ``cpcs up`` keeps the external publishers' broker address (user and password), owner-readable only.
INTAKE_FILE = "intake-amqp.env"


def _pid_dir(run_dir: Path) -> Path:
    path = run_dir / "pids"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def stop_local(*, run_dir: Path, include_database: bool = True) -> None:
    for pid_file in sorted(_pid_dir(run_dir).glob("*.pid")):
        if pid_file.stem == "mongo" and not include_database:
            continue
        pid = int(pid_file.read_text().strip() or 0)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            try:
                launcher.wait_until(lambda p=pid: not _alive(p), timeout_s=15, what=f"stop of {pid_file.stem}")
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
            print(f"stopped {pid_file.stem} (pid {pid})")
        pid_file.unlink()


class LocalError(RuntimeError):
    """``cpcs up`` cannot start as asked; the message is one line saying what to do."""


def _our_database(run_dir: Path) -> bool:
    pid_file = _pid_dir(run_dir) / "mongo.pid"
    try:
        return _alive(int(pid_file.read_text().strip()))
    except (OSError, ValueError):
        return False


def local_environment(*, mongo_port: int, ingest_port: int, lightcurve_port: int,
                      environ: dict[str, str]) -> dict[str, str]:
    """The ``CPCS_*`` values the local stack runs with: every URL derived from the ports given, unless
    the environment sets it explicitly."""
    derived = {"CPCS_MONGO_URL": f"mongodb://127.0.0.1:{mongo_port}", "CPCS_INGEST_PORT": str(ingest_port),
               "CPCS_LIGHTCURVE_PORT": str(lightcurve_port), "CPCS_PUBLIC_URL": f"http://127.0.0.1:{ingest_port}",
               "CPCS_LIGHTCURVE_URL": f"http://127.0.0.1:{lightcurve_port}"}
    return {**derived, **{k: v for k, v in environ.items() if k in derived}}


#: The services without HTTP of their own serve /metrics, /healthz and /readyz on metrics_base + offset.
METRICS_OFFSETS = {"calibration": 0, "astrometry": 1, "photometry": 2}


def metrics_ports(metrics_base: int, replicas: dict[str, int] | None = None) -> dict[str, int]:
    """The metrics port of each process without HTTP: the three services on ``metrics_base`` + 0, 1, 2,
    then their replicas (``calibration-2``, ...) on the ports after those, in order."""
    ports = {name: metrics_base + offset for name, offset in METRICS_OFFSETS.items()}
    extra = [process for process, service in launcher.process_names(replicas)
             if service in METRICS_OFFSETS and process != service]
    ports.update({process: metrics_base + len(METRICS_OFFSETS) + i for i, process in enumerate(extra)})
    return ports


def start_local(*, run_dir: Path, mongo_port: int, ingest_port: int = 8080, lightcurve_port: int = 8081,
                adopt_database: bool = False, metrics_base: int = 9181,
                replicas: dict[str, int] | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    logs, pids = run_dir / "logs", _pid_dir(run_dir)
    os.environ.update(local_environment(mongo_port=mongo_port, ingest_port=ingest_port,
                                        lightcurve_port=lightcurve_port, environ=dict(os.environ)))
    settings = launcher.SystemSettings.build(("ingest", "lightcurve"))  # refuses a bad setting before anything starts
    for port, what in ((settings.ingest_port, "ingest"), (settings.lightcurve_port, "lightcurve")):
        if launcher.port_open("127.0.0.1", port) and not runfile.running(run_dir):
            raise LocalError(f"port {port} for {what} is taken by another program: stop it or choose another "
                             f"port (--{what}-port)")
    print(f"RabbitMQ: {launcher.ensure_rabbitmq()}")
    print(f"astrometry.net: {launcher.ensure_astrometry_net()}")
    processes = launcher.Processes()
    if _our_database(run_dir):
        print(f"database server: the one this run directory started, on port {mongo_port}")
    elif launcher.port_open("127.0.0.1", mongo_port):
        if not adopt_database:
            raise LocalError(f"a database server this run did not start is answering on port {mongo_port}: stop "
                             f"it, choose another --mongo-port, or pass --adopt-database to use it")
        print(f"database server: adopting the one already answering on port {mongo_port}")
    else:
        launcher.start_mongo(processes, data_dir=run_dir / "mongo", port=mongo_port, log_dir=logs)
        print(f"database server: nx-27017 started on port {mongo_port} (data in {run_dir / 'mongo'})")
    intake_url, users = ensure_broker_users(run_dir, settings.amqp_url.get_secret_value(), settings.exchange)
    os.environ["CPCS_INTAKE_AMQP_URL"] = intake_url
    print(f"broker users: {users}")
    stop_local(run_dir=run_dir, include_database=False)
    metrics = metrics_ports(metrics_base, replicas)
    for process, name in launcher.process_names(replicas):
        env = dict(os.environ)
        if process in metrics:
            env.setdefault("CPCS_METRICS_PORT", str(metrics[process]))
        launcher.start_service(processes, name, env=env, log_dir=logs, process_name=process)
    for name, proc in processes.procs.items():
        (pids / f"{name}.pid").write_text(str(proc.pid))
    launcher.wait_healthy(f"http://127.0.0.1:{settings.ingest_port}")
    launcher.wait_healthy(f"http://127.0.0.1:{settings.lightcurve_port}")
    asyncio.run(wait_for_consumers(settings.amqp_url.get_secret_value(), service_queues(settings.exchange)))
    written = runfile.write(run_dir, {**launcher.SystemSettings.build(("ingest", "lightcurve")).environment(),
                                      "CPCS_MONGO_PORT": str(mongo_port), "CPCS_INTAKE_AMQP_URL": intake_url})
    from services.demo import load_demo

    info = asyncio.run(load_demo(out_dir=run_dir / "demo"))
    several = ", ".join(f"{name} x{n}" for name, n in (replicas or {}).items() if n > 1)
    print(f"\nAll five services are running{f' ({several})' if several else ''} (logs in {logs}; "
          f"settings in {written}). Open {settings.public_url}/\n")
    for key, value in info.items():
        print(f"  {key}: {value}")
    endpoints = [f"{settings.public_url}/metrics", f"http://127.0.0.1:{settings.lightcurve_port}/metrics",
                 *(f"http://127.0.0.1:{port}/metrics" for port in metrics.values())]
    print(f"\nObservatories and alert feeds publish over AMQP (upload.submitted.v1, voevent.received.v1 on "
          f"exchange {settings.exchange!r}, nothing else) with CPCS_INTAKE_AMQP_URL={intake_url} "
          f"(kept in {run_dir / INTAKE_FILE})")
    print(f"\nMetrics (Prometheus): {', '.join(endpoints)}; readiness: the same hosts' /readyz")
    print(f"\nTry the manual's curl line:\n  curl -F matchDist=2 -F EventID='{info['event']}' "
          f"-F sexCat=\"@{info['catalogue']};filename=test.cat\" -F \"hashtag={info['token']}\" "
          f"-F \"MJD={info['mjd']}\" -F expTime=1 -F noPlot=1 -F forceFilter=no -F dryRun=1 "
          f"-F outputFormat=json \"{settings.public_url}/cgi/upload\"\n\n"
          f"Online reference catalogues (VizieR, Gaia, PanSTARRS, SDSS) are {_online_state()}.\n"
          f"Stop everything with: make down")


def intake_address(run_dir: Path, services_url: str, environ: dict[str, str]) -> str:
    """The external publishers' broker URL: ``CPCS_INTAKE_AMQP_URL`` if set, else the one this run
    directory keeps, else a new user ``cpcs-intake`` with a random password on the services' broker
    (kept in ``<run dir>/intake-amqp.env``, readable by the owner only)."""
    if environ.get("CPCS_INTAKE_AMQP_URL"):
        url = environ["CPCS_INTAKE_AMQP_URL"]
    else:
        url = _kept_intake_url(run_dir / INTAKE_FILE) or broker_users.intake_url(services_url)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / INTAKE_FILE
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(f"# written by cpcs up: the broker address of external publishers (intake only)\n"
                    f"CPCS_INTAKE_AMQP_URL={url}\n")
    return url


def _kept_intake_url(path: Path) -> str | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    return next((line.partition("=")[2] for line in lines if line.startswith("CPCS_INTAKE_AMQP_URL=")), None)


def ensure_broker_users(run_dir: Path, services_url: str, exchange: str,
                        environ: dict[str, str] | None = None) -> tuple[str, str]:
    """Create (or update) the intake user, and the services' user unless it is the broker's ``guest``, on
    the broker ``services_url`` names, with ``rabbitmqctl``: (the intake URL, one line saying what was
    done). Without ``rabbitmqctl``, or when the broker is not on this machine or refuses, the line says
    so and the stack starts all the same (the AMQP intake then takes the services' credentials only)."""
    env = dict(os.environ) if environ is None else environ
    url = intake_address(run_dir, services_url, env)
    try:
        defs = broker_users.from_urls(services_url=services_url, intake_url=url, exchange=exchange)
    except ValueError as exc:
        return url, f"not created: {exc}"
    names = ", ".join(u.name for u in defs.users)
    host = urlsplit(services_url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return url, (f"not created here: the broker at {host} is not on this machine; create {names} there "
                     f"with 'CPCS_INTAKE_AMQP_URL=... python -m shared.broker_users apply'")
    if broker_users.rabbitmqctl() is None:
        return url, f"not created: rabbitmqctl is not installed here (users {names} are missing on the broker)"
    try:
        broker_users.apply(defs)
    except broker_users.BrokerUsersError as exc:
        return url, f"not created: {exc} (rabbitmqctl needs root or the broker's Erlang cookie)"
    return url, f"{names} ready (the intake user may publish only {', '.join(broker_users.INTAKE_ROUTING_KEYS)})"


def _online_state() -> str:
    from shared.refcat.archives import OnlineSettings

    enabled = sorted(OnlineSettings().enabled)
    if enabled:
        return f"ON for {', '.join(enabled)} (CPCS_REFCAT_ONLINE): fields not in the store are fetched"
    return ("OFF (the default): on a machine with internet, set CPCS_REFCAT_ONLINE=all (or survey names) "
            "before make up to fetch fields that are not in the store")
