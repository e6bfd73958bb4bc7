"""Start and stop the real servers tests need (no mocks): nx-27017 and, if configured, RabbitMQ."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from services.launcher import free_port, port_open, wait_until


def wait_for_port(port: int, *, timeout_s: float = 20.0, host: str = "127.0.0.1") -> None:
    wait_until(lambda: port_open(host, port), timeout_s=timeout_s, what=f"{host}:{port}")


def nx_executable() -> str:
    candidate = Path(sys.executable).with_name("nx-27017")
    return str(candidate) if candidate.exists() else (shutil.which("nx-27017") or "nx-27017")


class EmbeddedMongo:
    """An nx-27017 server (MongoDB wire protocol over SQLite) in its own folder on a free port."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [nx_executable(), "--data-dir", str(self.folder / "data"), "-p", str(self.port),
             "--log-file", str(self.folder / "nx.log"), "--pid-file", str(self.folder / "nx.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def amqp_url_from_env() -> str:
    return os.environ.get("CPCS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
