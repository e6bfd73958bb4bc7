"""End to end: five service processes, the real broker and database, observers' requests."""
import json
import uuid

import pytest

from shared.messaging import REASON_HEADER
from shared.refcat.surveys import DEMO_SURVEY
from tests.support.amqp import next_message
from tests.support.catalogues import variant
from tests.support.flows import cpcs_form, post_upload

pytestmark = pytest.mark.e2e


async def test_manual_curl_line_through_five_processes(processes):
    status, body = await post_upload(processes, processes.demo, processes.catalogue)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["survey"] == DEMO_SURVEY and answer["filter"] == "r" and answer["mag_err"] > 0
    async with processes.http.get(f"{processes.url}/observatories", params={"format": "json"}) as response:
        assert response.status == 401  # the data needs a hashtag or a login (CPCS_PUBLIC_DATA opens it)
    async with processes.http.get(f"{processes.url}/observatories",
                                  params={"format": "json", "hashtag": processes.demo["token"]}) as response:
        assert response.status == 200
        assert any("Demo" in row["name"] for row in await response.json())


async def test_uploads_wait_while_calibration_is_down_and_each_is_calibrated_once(processes):
    processes.stop("calibration")
    accepted = []
    for n in range(3):
        async with processes.http.post(f"{processes.url}/api/v1/uploads",
                                       data=cpcs_form(processes.demo, variant(processes.catalogue, n), dryRun=0),
                                       headers={"Authorization": f"Bearer {processes.demo['token']}"}) as response:
            assert response.status == 202, await response.text()
            accepted.append(await response.json())
    for item in accepted:
        async with processes.http.get(item["status_url"], params={"hashtag": processes.demo["token"]}) as response:
            assert (await response.json())["status"] == "received"
    processes.start("calibration")
    ids = {a["followup_id"] for a in accepted}
    for followup_id in ids:
        await processes.probe.wait_for("lightcurve.updated.v1", lambda m, f=followup_id: m.followup_id == f,
                                       timeout_s=180)
    for item in accepted:
        assert processes.probe.count("observation.calibrated.v1",
                                     lambda m, o=item["observation_id"]: m.observation_id == o) == 1
    async with processes.http.get(f"{processes.url}/get_alert_lc_data",
                                  params={"alert_name": processes.demo["event"],
                                          "hashtag": processes.demo["token"]}) as response:
        curve = await response.json()
    assert sorted(curve["id"]) == sorted(ids)


async def test_unparseable_message_is_dead_lettered_and_calibration_keeps_going(processes):
    exchange = processes.settings.exchange
    await processes.broker.publish_bytes("upload.received.v1", b'{"observation_id": 7}')
    dead = await next_message(processes.broker, f"{exchange}.dead-letter", timeout_s=30)
    assert "does not match upload.received.v1" in dead.headers[REASON_HEADER]
    assert dead.headers["x-cpcs-queue"] == f"{exchange}.calibration"
    status, body = await post_upload(processes, processes.demo, processes.catalogue)
    assert status == 200, body


async def test_upload_over_amqp_is_answered_on_reply_to(processes):
    channel = processes.broker._channel
    replies = await channel.declare_queue(exclusive=True, auto_delete=True)
    correlation_id = uuid.uuid4().hex
    headers = {"hashtag": processes.demo["token"], "EventID": processes.demo["event"], "MJD": "61365.1",
               "matchDist": "2", "dryRun": "1", "filename": "test.cat"}
    await processes.broker.publish_bytes("upload.submitted.v1", processes.catalogue, headers=headers,
                                         correlation_id=correlation_id, reply_to=replies.name)
    reply = await next_message(processes.broker, replies.name, timeout_s=30)
    assert reply.correlation_id == correlation_id
    answer = json.loads(reply.body)
    assert answer["survey"] == DEMO_SURVEY and answer["mag"] is not None


async def test_upload_over_amqp_with_a_bad_token_is_refused_on_reply_to(processes):
    channel = processes.broker._channel
    replies = await channel.declare_queue(exclusive=True, auto_delete=True)
    await processes.broker.publish_bytes("upload.submitted.v1", processes.catalogue,
                                         headers={"hashtag": "nobody", "EventID": processes.demo["event"]},
                                         correlation_id="c1", reply_to=replies.name)
    reply = await next_message(processes.broker, replies.name, timeout_s=30)
    assert json.loads(reply.body)["status"] == 401
