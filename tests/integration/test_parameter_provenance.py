"""An operator's parameter file changes the calibration, and every stored calibration records the parameter
set's version, hash and source (real broker and database; the services in this process)."""
import asyncio
import json
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from shared.calibration_params import CalibrationParameters
from tests.support.flows import post_upload, seed_demo
from tests.support.system import running_system, settings_for

pytestmark = pytest.mark.integration
FLOOR_MAG = 0.02  # the demo field's scatter is below it, so the floor decides the calibration error


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path, monkeypatch):
    params = tmp_path / "night.toml"
    params.write_text(f'# the parameter set of this server\nversion = "1"\nscatter_floor_mag = {FLOOR_MAG}\n')
    monkeypatch.setenv("CPCS_CALIBRATION_PARAMS", str(params))
    settings = settings_for(mongo_url, amqp_url, unique_name)  # the calibration reads its parameter set here
    async with running_system(settings) as running:
        running.demo = await seed_demo(settings, tmp_path, running.probe)
        running.params_file = params
        client = AsyncMongoClient(mongo_url)
        running.db = client[unique_name]
        try:
            yield running
        finally:
            await client.close()


async def curve(system):
    async with system.http.get(f"{system.url}/get_alert_lc_data", params={"alert_name": system.demo["event"],
                                                                                 "hashtag": system.demo["token"]}) as r:
        return await r.json()


async def test_a_parameter_file_changes_the_calibration_and_is_recorded(system):
    catalogue = await asyncio.to_thread(Path(system.demo["catalogue"]).read_bytes)
    status, body = await post_upload(system, system.demo, catalogue, dryRun=0)
    assert status == 200, body
    answer = json.loads(body)
    followup_id = answer["followup_id"]
    await system.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == followup_id)
    assert (await curve(system))["caliberr"] == [pytest.approx(FLOOR_MAG)]

    chosen = CalibrationParameters(scatter_floor_mag=FLOOR_MAG)
    stored = await system.db.calibrations.find_one({"followup_id": followup_id})
    assert stored["result"]["params_provenance"] == {"version": "1", "hash": chosen.hash(),
                                                     "source": f"file {system.params_file}"}
    assert stored["result"]["params_hash"] == chosen.hash() != CalibrationParameters().hash()
    assert stored["result"]["params"]["scatter_floor_mag"] == FLOOR_MAG
    calibrated = await system.probe.wait_for("observation.calibrated.v1", lambda m: m.followup_id == followup_id)
    assert calibrated.params_hash == chosen.hash()

    # a recalibration's overrides apply over the operator's set, and say so
    headers = {"Authorization": f"Bearer {system.demo['admin_token']}"}
    request = {"followup_ids": [followup_id], "params": {"scatter_floor_mag": 0.0001}, "dry_run": False,
               "reason": "back to the default floor"}
    async with system.http.post(f"{system.url}/api/v1/admin/recalibrations", json=request, headers=headers) as r:
        assert r.status == 202, await r.text()
        rid = (await r.json())["recalibration_id"]
    done = await system.probe.wait_for("recalibration.done.v1", lambda m: m.recalibration_id == rid)
    assert done.outcome == "applied" and done.params_hash == CalibrationParameters().hash()
    current = await system.db.calibrations.find_one({"followup_id": followup_id})
    assert current["result"]["params_provenance"] == {
        "version": "1", "hash": CalibrationParameters().hash(), "source": "recalibration override",
        "base_source": f"file {system.params_file}", "overrides": ["scatter_floor_mag"]}
    (replaced,) = await system.db.calibration_history.find({"observation_id": current["_id"]}).to_list(None)
    assert replaced["result"]["params_provenance"]["source"] == f"file {system.params_file}"
    await system.probe.wait_count("lightcurve.updated.v1", lambda m: m.followup_id == followup_id, 2)
    assert (await curve(system))["caliberr"][0] < FLOOR_MAG
