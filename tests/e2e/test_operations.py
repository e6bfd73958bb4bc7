"""Operating the five processes: JSON log lines that carry an upload's correlation id in every service
that touches it, and a rolling restart (SIGTERM, start again) of every service under load that loses
and duplicates nothing."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.support.catalogues import variant
from tests.support.flows import cpcs_form

pytestmark = pytest.mark.e2e
MAX_UPLOADS = 400


@pytest.fixture
def json_logs(monkeypatch):
    monkeypatch.setenv("CPCS_LOG_FORMAT", "json")


async def upload_until_taken(system, n: int) -> dict:
    """A non-dry REST upload, sent again while ingest is away (a restart): 202 taken, or 409 when an earlier
    attempt was taken before its answer was lost."""
    for _ in range(240):
        try:
            async with system.http.post(f"{system.url}/api/v1/uploads",
                                        data=cpcs_form(system.demo, variant(system.catalogue, n), dryRun=0),
                                        headers={"Authorization": f"Bearer {system.demo['token']}"}) as response:
                body = await response.json(content_type=None)
                if response.status in (202, 409):
                    return body
                assert response.status in (502, 503), body
        except (aiohttp.ClientConnectionError, TimeoutError):
            pass
        await asyncio.sleep(0.25)  # ingest is restarting: try again, as a client would
    raise AssertionError(f"upload {n} was never taken")


async def test_json_logs_carry_the_correlation_id_through_every_service(json_logs, processes):
    async with processes.http.post(f"{processes.url}/api/v1/uploads",
                                   data=cpcs_form(processes.demo, variant(processes.catalogue, 99), dryRun=0),
                                   headers={"Authorization": f"Bearer {processes.demo['token']}"}) as response:
        assert response.status == 202
        accepted = await response.json()
    received = await processes.probe.wait_for("upload.received.v1",
                                              lambda m: m.observation_id == accepted["observation_id"])
    await processes.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == accepted["followup_id"],
                                   timeout_s=120)
    for service in ("calibration", "lightcurve", "ingest"):
        mine = await logged_lines(processes.log_dir / f"{service}.log", received.correlation_id)
        assert any(entry["message"].startswith("handled ") for entry in mine), (service, mine)
        assert all(entry["service"] == service for entry in mine)


async def logged_lines(path, correlation_id: str, timeout_s: float = 20) -> list[dict]:
    """The JSON log lines of one correlation id, once a "handled" line is among them: a service writes it
    after it has acknowledged the message, so after the messages the test saw."""
    def mine() -> list[dict]:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        return [entry for entry in lines if entry["correlation_id"] == correlation_id]

    async with asyncio.timeout(timeout_s):
        # a log file announces nothing: it is read again until the line is there
        while not any(entry["message"].startswith("handled ") for entry in mine()):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    return mine()


async def test_a_rolling_restart_under_load_loses_nothing(processes):
    restarted = asyncio.Event()
    numbers = iter(range(MAX_UPLOADS))
    taken: list[dict] = []
    ingest_back_at: list[int] = []

    async def client() -> None:
        for n in numbers:  # one shared sequence: each variant is sent by one client
            if restarted.is_set():
                return
            taken.append(await upload_until_taken(processes, n))
            await asyncio.sleep(0.3)  # a steady stream through every restart

    load = asyncio.gather(client(), client())
    await processes.probe.wait_for("upload.received.v1", timeout_s=60)  # the load has begun
    for name in ("calibration", "ingest", "lightcurve", "astrometry", "photometry"):
        await asyncio.to_thread(processes.stop, name)  # SIGTERM: finish what is in hand, then exit
        processes.start(name)
        await processes.wait_ready()
        if name == "ingest":
            ingest_back_at.append(len(taken))
    restarted.set()
    await load
    sent = len(taken)
    assert ingest_back_at[0] < sent, "no upload was sent after ingest came back: the test would prove nothing"
    expected = {a["followup_id"] for a in taken}
    assert len(expected) == sent  # each upload is its own point (a 409 names the point taken before)
    async with asyncio.timeout(240):
        seen: set = set()
        while not expected <= seen:
            await processes.probe.wait_count("lightcurve.updated.v1", lambda m: True, len(seen) + 1, timeout_s=240)
            seen = {m.followup_id for m in processes.probe.seen if m.routing_key == "lightcurve.updated.v1"}
    async with processes.http.get(f"{processes.url}/get_alert_lc_data",
                                  params={"alert_name": processes.demo["event"]}) as response:
        curve = await response.json()
    assert sorted(curve["id"]) == sorted(expected)  # every upload on the light curve once, none twice
