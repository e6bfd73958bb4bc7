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


async def upload_until_taken(system, n: int, ingest_up: asyncio.Event) -> dict:
    """A non-dry REST upload; while ingest is away (a restart) it waits until ingest is back and sends it
    again: 202 taken, or 409 when an earlier attempt was taken before its answer was lost."""
    for _ in range(20):
        await asyncio.wait_for(ingest_up.wait(), 120)
        try:
            async with system.http.post(f"{system.url}/api/v1/uploads",
                                        data=cpcs_form(system.demo, variant(system.catalogue, n), dryRun=0),
                                        headers={"Authorization": f"Bearer {system.demo['token']}"}) as response:
                body = await response.json(content_type=None)
                if response.status in (202, 409):
                    return body
                assert response.status in (502, 503), body
        except (aiohttp.ClientConnectionError, TimeoutError):
            pass  # ingest went away meanwhile: the next round waits until it is back
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
    await processes.probe.wait_for("observation.calibrated.v1",
                                   lambda m: m.observation_id == accepted["observation_id"])
    for service in ("calibration", "lightcurve", "ingest"):
        # a stopped service has written all its lines (it drains, acknowledges, logs, then exits)
        await asyncio.to_thread(processes.stop, service)
        lines = [json.loads(line) for line in (processes.log_dir / f"{service}.log").read_text().splitlines()
                 if line.startswith("{")]
        mine = [entry for entry in lines if entry["correlation_id"] == received.correlation_id]
        assert any(entry["message"].startswith("handled ") for entry in mine), (service, lines[-5:])
        assert all(entry["service"] == service for entry in mine)


async def test_a_rolling_restart_under_load_loses_nothing(processes):
    restarted = asyncio.Event()
    ingest_up = asyncio.Event()
    ingest_up.set()
    numbers = iter(range(MAX_UPLOADS))
    taken: list[dict] = []
    ingest_back_at: list[int] = []

    async def client() -> None:
        for n in numbers:  # one shared sequence: each variant is sent by one client
            if restarted.is_set():
                return
            answer = await upload_until_taken(processes, n, ingest_up)
            taken.append(answer)
            # a steady stream through every restart: the next upload once this one is on the light curve
            await processes.probe.wait_for("lightcurve.updated.v1",
                                           lambda m, f=answer["followup_id"]: m.followup_id == f, timeout_s=180)

    load = asyncio.gather(client(), client())
    await processes.probe.wait_for("upload.received.v1", timeout_s=60)  # the load has begun
    for name in ("calibration", "ingest", "lightcurve", "astrometry", "photometry"):
        if name == "ingest":
            ingest_up.clear()
        await asyncio.to_thread(processes.stop, name)  # SIGTERM: finish what is in hand, then exit
        processes.start(name)
        await processes.wait_ready()
        if name == "ingest":
            ingest_back_at.append(len(taken))
            ingest_up.set()
    restarted.set()
    await load
    sent = len(taken)
    assert ingest_back_at[0] < sent, "no upload was sent after ingest came back: the test would prove nothing"
    expected = {a["followup_id"] for a in taken}
    assert len(expected) == sent  # each upload is its own point (a 409 names the point taken before)
    async with processes.http.get(f"{processes.url}/get_alert_lc_data",
                                  params={"alert_name": processes.demo["event"],
                                          "hashtag": processes.demo["token"]}) as response:
        curve = await response.json()
    assert sorted(curve["id"]) == sorted(expected)  # every upload on the light curve once, none twice
