"""End to end with a real VOEvent broker: Comet (PyPI ``comet``, Twisted) runs here, packets are published to
it with its own sender ``comet-sendvo``, and ingest's VTP subscriber (one of five service processes) turns
them into events; the broker is restarted and the subscriber comes back by itself.

Comet lives in its own virtualenv so that Twisted stays out of the project's dependencies:
``python3 -m venv .run/comet && .run/comet/bin/pip install comet==3.1.0 twisted==26.10.0`` (or set
``CPCS_TEST_COMET_BIN`` to the folder holding ``twistd`` and ``comet-sendvo``).
"""
from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import free_port, wait_for_port
from tests.support.voevents import SAMPLES, wait_count

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
COMET_BIN = Path(os.environ.get("CPCS_TEST_COMET_BIN") or ROOT / ".run" / "comet" / "bin")


class Comet:
    """A Comet broker: authors publish on ``receive_port``, subscribers listen on ``broadcast_port``."""

    def __init__(self, folder: Path):
        self.folder, self.receive_port, self.broadcast_port = folder, free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        (folder / "events").mkdir(parents=True)

    def start(self) -> None:
        argv = [str(COMET_BIN / "twistd"), "-n", "--pidfile=", "--logfile", str(self.folder / "comet.log"), "comet",
                "--local-ivo=ivo://cpcs.test/comet", "--receive", f"--receive-port={self.receive_port}",
                "--broadcast", f"--broadcast-port={self.broadcast_port}", f"--eventdb={self.folder / 'events'}"]
        self.proc = subprocess.Popen(argv, cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.receive_port, timeout_s=60)
        wait_for_port(self.broadcast_port, timeout_s=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    async def send(self, name: str) -> None:
        """Publish a sample packet with Comet's own sender; it returns once the broker acknowledged it."""
        argv = [str(COMET_BIN / "comet-sendvo"), "-h", "127.0.0.1", "-p", str(self.receive_port),
                "-f", str(SAMPLES / name)]
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "sent successfully" in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.fixture
def comet(tmp_path, monkeypatch):
    """Started before the service processes, which subscribe to it (CPCS_VOEVENT_VTP_REMOTES)."""
    if not (COMET_BIN / "twistd").exists() or not (COMET_BIN / "comet-sendvo").exists():
        pytest.skip(f"the Comet VOEvent broker is not installed in {COMET_BIN} "
                    "(python3 -m venv .run/comet && .run/comet/bin/pip install comet==3.1.0 twisted==26.10.0)")
    broker = Comet(tmp_path / "comet")
    broker.start()
    monkeypatch.setenv("CPCS_VOEVENT_VTP_REMOTES", f"127.0.0.1:{broker.broadcast_port}")
    monkeypatch.setenv("CPCS_VOEVENT_VTP_BACKOFF_MAX_S", "1")
    yield broker
    broker.stop()


def processed(ivorn_end: str):
    return lambda m: m.packet_ivorn.endswith(ivorn_end)


async def test_comet_feeds_events_and_the_subscriber_survives_a_broker_restart(comet, processes):
    probe = processes.probe
    assert (await probe.wait_for("voevent.feed.changed.v1", timeout_s=60)).state == "connected"

    await comet.send("Gaia16aac.xml")
    gaia = await probe.wait_for("voevent.processed.v1", processed("#Gaia16aac"), timeout_s=60)
    assert (gaia.via, gaia.outcome, gaia.event_ivorn) == ("vtp", "created", "ivo://Gaia16aac")
    await probe.wait_for("alert.photometry.stored.v1", lambda m: m.event_ivorn == "ivo://Gaia16aac", timeout_s=60)
    await probe.wait_for("lightcurve.event.stored.v1", lambda m: m.event_ivorn == "ivo://Gaia16aac", timeout_s=60)
    async with processes.http.get(f"{processes.url}/api/v1/events/Gaia16aac/lightcurve",
                                  params={"hashtag": processes.demo["token"]}) as response:
        curve = await response.json()
    assert [(p["kind"], p["filter"], p["mag"]) for p in curve["points"]] == [("alert", "G", 17.32)]

    await comet.send("BAT_GRB_Pos_655721-214.xml")
    bat = await probe.wait_for("voevent.processed.v1", processed("#BAT_GRB_Pos_655721-214"), timeout_s=60)
    assert bat.outcome == "recorded_without_target" and "3 arcmin" in bat.reason
    await comet.send("XRT_Pos_655721-326.xml")
    xrt = await probe.wait_for("voevent.processed.v1", processed("#XRT_Pos_655721-326"), timeout_s=60)
    assert (xrt.outcome, xrt.event_ivorn, xrt.target_usable) == ("updated", "ivo://SWIFT_655721", True)

    comet.stop()
    down = await probe.wait_for("voevent.feed.changed.v1", lambda m: m.state == "disconnected", timeout_s=60)
    assert "connection" in down.reason
    await asyncio.to_thread(comet.start)
    await wait_count(probe, "voevent.feed.changed.v1", 2, lambda m: m.state == "connected", timeout_s=60)
    await comet.send("MOA_Lensing_Event_2015-07-10T14_50_54.00.xml")
    moa = await probe.wait_for("voevent.processed.v1", processed("4201500354-0-309"), timeout_s=60)
    assert (moa.via, moa.outcome, moa.event_ivorn) == ("vtp", "created", "ivo://MOA_201500354")

    async with processes.http.get(f"{processes.url}/healthz") as response:
        [feed] = (await response.json())["voevent_feeds"]
    assert feed["connected"] and feed["connections"] == 2 and feed["forwarded"] == 4
