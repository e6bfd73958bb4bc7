"""Recalibration of every point of an event through the services: dry run first, history kept."""
import asyncio
import json
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from tests.support.catalogues import variant
from tests.support.flows import post_upload, seed_demo
from tests.support.system import running_system, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path):
    settings = settings_for(mongo_url, amqp_url, unique_name)
    async with running_system(settings) as running:
        running.demo = await seed_demo(settings, tmp_path, running.probe)
        catalogue = await asyncio.to_thread(Path(running.demo["catalogue"]).read_bytes)
        running.points = []
        for n in range(3):
            status, body = await post_upload(running, running.demo, variant(catalogue, n), dryRun=0, MJD=61365 + n)
            assert status == 200, body
            running.points.append(json.loads(body)["followup_id"])
        for followup_id in running.points:
            await running.probe.wait_for("lightcurve.updated.v1", lambda m, f=followup_id: m.followup_id == f)
        yield running


async def recalibrate(system, body: dict, token=None):
    headers = {"Authorization": f"Bearer {token or system.demo['admin_token']}"}
    async with system.http.post(f"{system.url}/api/v1/admin/recalibrations", json=body, headers=headers) as r:
        return r.status, await r.json()


async def curve(system):
    async with system.http.get(f"{system.url}/get_alert_lc_data", params={"alert_name": system.demo["event"],
                                                                                 "hashtag": system.demo["token"]}) as r:
        return await r.json()


async def test_dry_run_previews_and_changes_nothing_then_apply_updates_the_curve_and_keeps_history(system):
    before = await curve(system)
    selection = {"event": system.demo["event"], "params": {"scatter_floor_mag": 0.02}, "reason": "floor raised"}
    status, report = await recalibrate(system, selection | {"dry_run": True})
    assert status == 202 and report["selected"] == 3
    rid = report["recalibration_id"]
    done = await system.probe.wait_count("recalibration.done.v1", lambda m: m.recalibration_id == rid, 3)
    assert {m.outcome for m in done} == {"previewed"}
    assert all(m.after.calib_err == pytest.approx(0.02) and m.before.calib_err < 0.02 for m in done)
    assert await curve(system) == before

    status, report = await recalibrate(system, selection | {"dry_run": False})
    rid = report["recalibration_id"]
    done = await system.probe.wait_count("recalibration.done.v1", lambda m: m.recalibration_id == rid, 3)
    assert {m.outcome for m in done} == {"applied"}
    for followup_id in system.points:
        await system.probe.wait_count("lightcurve.updated.v1", lambda m, f=followup_id: m.followup_id == f, 2)
    after = await curve(system)
    assert sorted(after["id"]) == sorted(system.points)
    assert after["caliberr"] == [pytest.approx(0.02)] * 3
    assert after["mag"] == pytest.approx(before["mag"], abs=1e-3)

    async with system.http.get(f"{system.url}/api/v1/admin/recalibrations/{rid}",
                               headers={"Authorization": f"Bearer {system.demo['admin_token']}"}) as r:
        summary = await r.json()
    assert summary["outcomes"]["applied"] == 3 and summary["finished"] == 3

    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:
        db = client[system.settings.mongo_db]
        history = await db.calibration_history.find({}).to_list(None)
        current = await db.calibrations.find({"followup_id": {"$in": system.points}}).to_list(None)
    finally:
        await client.close()
    assert len(history) == 3 and all(h["result"]["calib_err"] < 0.02 for h in history)
    assert all(c["revision"] == 1 and c["result"]["params_hash"] != history[0]["result"]["params_hash"]
               for c in current)


async def test_unknown_parameter_and_non_admin_are_refused(system):
    status, body = await recalibrate(system, {"event": system.demo["event"], "params": {"nonsense": 1}})
    assert status == 400 and "unknown calibration parameter" in body["error"]
    status, body = await recalibrate(system, {"event": system.demo["event"]}, token=system.demo["token"])
    assert status == 403
    status, body = await recalibrate(system, {"params": {}})
    assert status == 400 and "choose the points" in body["error"]


async def test_replay_carries_the_filters_the_upload_was_calibrated_with(system):
    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:  # the observatory changes its filter list after the uploads: the replay must not follow it
        await client[system.settings.mongo_db].observatories.update_many({}, {"$set": {"filters": ["z"]}})
    finally:
        await client.close()
    status, report = await recalibrate(system, {"event": system.demo["event"], "dry_run": True})
    assert status == 202
    rid = report["recalibration_id"]
    requested = await system.probe.wait_count("recalibration.requested.v1", lambda m: m.recalibration_id == rid, 3)
    assert all(m.observatory_filters == ["r", "V"] for m in requested)
    done = await system.probe.wait_count("recalibration.done.v1", lambda m: m.recalibration_id == rid, 3)
    assert all(m.after.band == m.before.band and m.after.survey == m.before.survey for m in done)
