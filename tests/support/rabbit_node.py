"""A RabbitMQ node of a test's own, on other ports, for tests that stop and start a broker (the shared
node on 5672 is never touched). Debian's ``rabbitmq-server`` runs the node as the ``rabbitmq`` user, so
its folders are given to that user."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from services.launcher import port_open, wait_until
from tests.support.servers import free_port


class RabbitNode:
    """``folder=None``: a new folder under the system's temporary directory (the node's user must reach it,
    which pytest's private tmp_path does not allow); removed by ``stop``."""

    def __init__(self, folder: Path | None = None):
        self.own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="cpcs-rabbit-")) if folder is None else folder
        self.folder.chmod(0o755)
        self.port, self.dist_port = free_port(), free_port()
        self.name = f"cpcs-test-{uuid.uuid4().hex[:8]}@localhost"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict:
        return {**os.environ, "RABBITMQ_NODENAME": self.name, "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port), "RABBITMQ_CONFIG_FILE": str(self.folder / "node.conf"),
                "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"), "RABBITMQ_LOG_BASE": str(self.folder / "log"),
                "RABBITMQ_PID_FILE": str(self.folder / "node.pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "plugins"),
                "RABBITMQ_FEATURE_FLAGS_FILE": str(self.folder / "feature_flags")}

    def start(self, timeout_s: float = 90) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not installed (make test installs it)")
        for sub in ("mnesia", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "node.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.folder / "plugins").write_text("[].\n")
        if os.geteuid() == 0 and shutil.which("chown"):
            subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.folder)], check=False)
        log = open(self.folder / "server.out", "ab")  # noqa: SIM115 - the node's process owns it
        self.proc = subprocess.Popen(["rabbitmq-server"], env=self._env(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                tail = (self.folder / "server.out").read_text(errors="replace")[-400:]
                raise RuntimeError(f"RabbitMQ node {self.name} exited: {tail}")
            return port_open("127.0.0.1", self.port)

        wait_until(up, timeout_s=timeout_s, what=f"RabbitMQ node {self.name}")

    def ctl(self, *args: str, timeout_s: float = 60) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.name, *args], env=self._env(), check=True, timeout=timeout_s,
                       capture_output=True)

    def stop_app(self) -> None:
        """The broker stops (connections dropped, port closed); the Erlang node stays for a quick restart."""
        self.ctl("stop_app")
        wait_until(lambda: not port_open("127.0.0.1", self.port), timeout_s=30, what="the broker to stop")

    def start_app(self) -> None:
        self.ctl("start_app")
        wait_until(lambda: port_open("127.0.0.1", self.port), timeout_s=60, what="the broker to start")

    def stop(self) -> None:
        try:
            self.ctl("stop")
        except (subprocess.SubprocessError, OSError):
            if self.proc is not None:
                self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=30)
        if self.own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
