"""``cpcs up`` / ``cpcs down``: the whole system on this machine, on embedded defaults."""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from services import launcher
from shared.messaging import wait_for_consumers


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


def service_queues(exchange: str) -> list[str]:
    return [f"{exchange}.ingest", f"{exchange}.calibration", f"{exchange}.calibration.plots",
            f"{exchange}.lightcurve", f"{exchange}.astrometry", f"{exchange}.photometry"]


def start_local(*, run_dir: Path, mongo_port: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    logs, pids = run_dir / "logs", _pid_dir(run_dir)
    print(f"RabbitMQ: {launcher.ensure_rabbitmq()}")
    print(f"astrometry.net: {launcher.ensure_astrometry_net()}")
    os.environ.setdefault("CPCS_MONGO_URL", f"mongodb://127.0.0.1:{mongo_port}")
    settings = launcher.SystemSettings.build(("ingest", "lightcurve"))  # refuses a bad setting before anything starts
    processes = launcher.Processes()
    if launcher.port_open("127.0.0.1", mongo_port):
        print(f"database server: already answering on port {mongo_port}")
    else:
        launcher.start_mongo(processes, data_dir=run_dir / "mongo", port=mongo_port, log_dir=logs)
        print(f"database server: nx-27017 started on port {mongo_port} (data in {run_dir / 'mongo'})")
    stop_local(run_dir=run_dir, include_database=False)
    for name in launcher.SERVICES:
        launcher.start_service(processes, name, env=dict(os.environ), log_dir=logs)
    for name, proc in processes.procs.items():
        (pids / f"{name}.pid").write_text(str(proc.pid))
    launcher.wait_healthy(f"http://127.0.0.1:{settings.ingest_port}")
    launcher.wait_healthy(f"http://127.0.0.1:{settings.lightcurve_port}")
    asyncio.run(wait_for_consumers(settings.amqp_url.get_secret_value(), service_queues(settings.exchange)))
    from services.demo import load_demo

    info = asyncio.run(load_demo(out_dir=run_dir / "demo"))
    print(f"\nAll five services are running (logs in {logs}). Open {settings.public_url}/\n")
    for key, value in info.items():
        print(f"  {key}: {value}")
    print(f"\nTry the manual's curl line:\n  curl -F matchDist=2 -F EventID='{info['event']}' "
          f"-F sexCat=\"@{info['catalogue']};filename=test.cat\" -F \"hashtag={info['token']}\" "
          f"-F \"MJD={info['mjd']}\" -F expTime=1 -F noPlot=1 -F forceFilter=no -F dryRun=1 "
          f"-F outputFormat=json \"{settings.public_url}/cgi/upload\"\n\nStop everything with: make down")
