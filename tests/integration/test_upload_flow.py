"""The catalogue path through ingest, calibration and lightcurve on the real broker and database."""
import json

import pytest

from services.demo import demo_field
from shared.refcat.surveys import DEMO_SURVEY
from tests.support.amqp import next_message
from tests.support.catalogues import shifted
from tests.support.flows import demo_system, post_upload

pytestmark = pytest.mark.integration
CPCS_KEYS = {"image_link", "mag", "mag_err", "ra", "dec", "zeropoint", "outlier_fraction", "scatter", "npoints",
             "followup_id", "filter", "survey"}


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        yield running


async def points(system):
    async with system.http.get(f"{system.url}/get_alert_lc_data",
                               params={"alert_name": system.demo["event"],
                                       "hashtag": system.demo["token"]}) as response:
        assert response.status == 200
        return await response.json()


async def test_manual_curl_line_dry_run_answers_original_keys_and_stores_nothing(system):
    status, body = await post_upload(system, system.demo, system.catalogue)
    assert status == 200, body
    answer = json.loads(body)
    assert CPCS_KEYS <= set(answer)
    truth = demo_field().truth
    assert answer["survey"] == DEMO_SURVEY and answer["filter"] == "r"
    assert answer["mag"] == pytest.approx(truth["target_mag"], abs=max(0.05, 3 * answer["total_err"]))
    # the original's convention: zeropoint = m_inst - m_ref, so mag = m_inst - zeropoint
    assert answer["zeropoint"] == pytest.approx(-truth["zeropoint_mag"], abs=0.05)
    assert answer["npoints"] > 50 and answer["followup_id"] is None and answer["mag_err"] > 0
    assert (await points(system))["id"] == []
    db_name = system.settings.mongo_db
    from gridfs import AsyncGridFSBucket
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:
        db = client[db_name]
        assert await db.observations.count_documents({}) == 0
        for bucket in ("uploads", "scratch"):
            assert await AsyncGridFSBucket(db, bucket_name=bucket).find({}).to_list(None) == []
    finally:
        await client.close()


async def test_same_upload_twice_gives_one_point_and_a_clear_refusal(system):
    status, body = await post_upload(system, system.demo, system.catalogue, dryRun=0)
    assert status == 200, body
    first = json.loads(body)
    stored = await system.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == first["followup_id"])
    assert stored.action == "stored"
    status, body = await post_upload(system, system.demo, system.catalogue, dryRun=0)
    assert status == 409
    assert f"point {first['followup_id']}" in body
    curve = await points(system)
    assert curve["id"] == [first["followup_id"]]
    assert curve["mag"] == [pytest.approx(first["mag"])]
    assert curve["magerr"][0] == pytest.approx(first["mag_err"])


async def test_bad_catalogue_is_refused_with_a_reason_and_nothing_is_stored(system):
    status, body = await post_upload(system, system.demo, b"this is not a catalogue\n", dryRun=0)
    assert status == 400
    assert "catalogue" in body.lower()
    assert system.probe.count("upload.received.v1") == 0


@pytest.mark.parametrize(("override", "status", "words"), [
    ({"hashtag": "Nobody_" + "0" * 32}, 401, "hashtag"),
    ({"EventID": "ivo://NoSuchEvent"}, 404, "unknown event"),
    ({"matchDist": "wide"}, 400, "matchDist must be a number"),
    ({"forceFilter": "APASS V"}, 400, "forceFilter"),
])
async def test_bad_form_fields_get_a_4xx_with_the_reason(system, override, status, words):
    got, body = await post_upload(system, system.demo, system.catalogue, **override)
    assert got == status and words in body


async def test_target_absent_gives_a_limit_with_mag_err_minus_one(system):
    lines = [line for line in system.catalogue.decode().splitlines()]
    header = [line for line in lines if line.startswith("#")]
    rows = [line for line in lines if not line.startswith("#") and line.strip()]
    target = min(rows, key=lambda r: _sep(r, system.demo))
    body = "\n".join(header + [r for r in rows if r != target]) + "\n"
    status, text = await post_upload(system, system.demo, body.encode())
    assert status == 200, text
    answer = json.loads(text)
    assert answer["mag_err"] == -1 and answer["is_limit"] is True
    assert 17.5 < answer["mag"] < 25


def _sep(row: str, demo) -> float:
    from services.demo import DEMO_DEC_DEG, DEMO_RA_DEG

    cols = row.split()
    return (float(cols[3]) - DEMO_RA_DEG) ** 2 + (float(cols[4]) - DEMO_DEC_DEG) ** 2


async def test_delete_removes_the_point_everywhere(system):
    status, body = await post_upload(system, system.demo, system.catalogue, dryRun=0)
    followup_id = json.loads(body)["followup_id"]
    await system.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == followup_id)
    async with system.http.post(f"{system.url}/cgi/delpoint",
                                data={"followupid": str(followup_id), "hashtag": system.demo["token"]}) as response:
        assert response.status == 200
    await system.probe.wait_for("lightcurve.updated.v1",
                                lambda m: m.followup_id == followup_id and m.action == "removed")
    assert (await points(system))["id"] == []
    async with system.http.get(f"{system.url}/api/v1/observations/{followup_id}",
                               params={"hashtag": system.demo["token"]}) as response:
        assert response.status == 404
    status, body = await post_upload(system, system.demo, system.catalogue, dryRun=0)
    assert status == 200, "after deletion the same file may be uploaded again"


async def test_rest_upload_answers_202_with_a_status_url_that_reaches_the_result(system):
    form_status, body = await post_upload(system, system.demo, system.catalogue, path="/api/v1/uploads", dryRun=0)
    assert form_status == 202, body
    accepted = json.loads(body)
    await system.probe.wait_for("observation.calibrated.v1",
                                lambda m: m.observation_id == accepted["observation_id"])
    await system.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == accepted["followup_id"])
    async with system.http.get(accepted["status_url"], params={"hashtag": system.demo["token"]}) as response:
        status = await response.json()
    assert status["status"] in {"calibrated", "received"}
    async with system.http.get(f"{system.url}/api/v1/events/{system.demo['event']}/lightcurve",
                                params={"format": "csv", "hashtag": system.demo["token"]}) as response:
        text = await response.text()
    assert text.splitlines()[0].startswith("id,mjd,mag") and len(text.splitlines()) == 2


async def test_the_plot_of_an_upload_that_shows_it_is_drawn_after_the_answer(system):
    status, body = await post_upload(system, system.demo, system.catalogue, noPlot=0)
    answer = json.loads(body)
    await system.probe.wait_for("plot.rendered.v1", lambda m: m.observation_id == answer["observation_id"])
    async with system.http.get(answer["image_link"]) as response:
        assert response.status == 200 and response.content_type == "image/png"
        assert (await response.read()).startswith(b"\x89PNG")


async def test_a_plot_nobody_asked_for_is_drawn_on_its_first_view(system):
    from pymongo import AsyncMongoClient

    status, body = await post_upload(system, system.demo, system.catalogue)  # noPlot=1
    answer = json.loads(body)
    await system.probe.wait_for("observation.calibrated.v1", lambda m: m.observation_id == answer["observation_id"])
    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:
        plots = client[system.settings.mongo_db]["plots.files"]
        name = f"{answer['observation_id']}.png"
        assert await plots.find_one({"filename": name}) is None  # not drawn with the answer
        async with system.http.get(answer["image_link"]) as response:
            assert response.status == 200 and response.content_type == "image/png"
            assert (await response.read()).startswith(b"\x89PNG")
        assert await plots.find_one({"filename": name}) is not None  # drawn once, then served as stored
        async with system.http.get(answer["image_link"]) as response:
            assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")
        assert len(await plots.find({"filename": name}).to_list(None)) == 1
    finally:
        await client.close()


async def test_the_plot_of_an_unknown_observation_is_404_with_the_reason(system):
    async with system.http.get(f"{system.url}/plots/{'0' * 32}.png") as response:
        assert response.status == 404 and "no calibration of observation" in await response.text()
    async with system.http.get(f"{system.url}/plots/not%20an%20id.png") as response:
        assert response.status == 404 and "not an observation id" in await response.text()


async def test_html_answer_shows_the_values_and_the_plot(system):
    status, body = await post_upload(system, system.demo, system.catalogue, outputFormat="html", noPlot=0)
    assert status == 200
    assert "<html>" in body and "zeropoint" in body and "<img" in body


@pytest.mark.parametrize("forced", ["SYNTH-DEMO/r", "any/r", "synth-demo/any"])
async def test_forced_filters_select_among_identical_results(system, forced):
    _, auto = await post_upload(system, system.demo, system.catalogue)
    _, chosen = await post_upload(system, system.demo, system.catalogue, forceFilter=forced)
    auto, chosen = json.loads(auto), json.loads(chosen)
    for key in ("mag", "zeropoint", "scatter", "npoints", "filter", "survey"):
        assert chosen[key] == auto[key], key


async def test_forcing_another_band_changes_only_the_selection(system):
    _, forced = await post_upload(system, system.demo, system.catalogue, forceFilter="SYNTH-DEMO/V")
    answer = json.loads(forced)
    assert (answer["survey"], answer["filter"], answer["mode"]) == (DEMO_SURVEY, "V", "FORCED")


async def test_a_survey_imported_under_an_alias_is_found_by_that_alias_in_force_filter(system, tmp_path):
    from astropy.table import Table
    from typer.testing import CliRunner

    from shared.refcat.cli import app

    ref = demo_field().reference  # the demo's stars, written as an ATLAS-RefCat2 VizieR table
    csv = tmp_path / "refcat2_demo_field.csv"
    Table({"RA_ICRS": ref["RAJ2000"], "DE_ICRS": ref["DEJ2000"], "gmag": ref["g'mag"], "e_gmag": ref["e_g'mag"],
           "rmag": ref["r'mag"], "e_rmag": ref["e_r'mag"]}).write(csv, format="ascii.csv")
    result = CliRunner().invoke(app, ["import", str(csv), "--survey", "REFCAT2", "--synthetic", "--mongo-url",
                                      system.settings.mongo_url.get_secret_value(), "--db", system.settings.mongo_db])
    assert result.exit_code == 0 and "into survey ATLAS" in result.output, result.output
    status, body = await post_upload(system, system.demo, system.catalogue, forceFilter="REFCAT2/r")
    assert status == 200, body
    answer = json.loads(body)
    assert (answer["survey"], answer["filter"], answer["mode"]) == ("ATLAS", "r", "FORCED")
    assert answer["mag"] == pytest.approx(demo_field().truth["target_mag"], abs=max(0.05, 3 * answer["total_err"]))


async def test_a_field_without_reference_stars_fails_with_a_reason_and_still_gets_a_plot(system):
    async with system.http.post(f"{system.url}/cgi/newevent", data={
            "EventID": "ivo://Elsewhere1", "ra": "10.0", "dec": "-40.0", "hashtag": system.demo["token"]}) as r:
        assert r.status == 200
    moved = shifted(system.catalogue, d_ra_deg=-140.1, d_dec_deg=-42.2)
    status, body = await post_upload(system, {**system.demo, "event": "ivo://Elsewhere1"}, moved, noPlot=0)
    assert status == 422 and "no reference catalogue" in body
    failed = await system.probe.wait_for("observation.failed.v1", lambda m: m.event_ivorn == "ivo://Elsewhere1")
    rendered = await system.probe.wait_for("plot.rendered.v1", lambda m: m.observation_id == failed.observation_id)
    assert rendered.status == "failed"


@pytest.fixture
async def fetching_system(mongo_url, amqp_url, unique_name, tmp_path, monkeypatch):
    """The system with loopback allowed as a catalogue_url host (the file server below is on it)."""
    monkeypatch.setenv("CPCS_FETCH_ALLOW_HOSTS", "127.0.0.1")
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        yield running


async def test_amqp_upload_by_reference_fetches_the_catalogue(fetching_system, aiohttp_file_server):
    system = fetching_system
    url = await aiohttp_file_server(system.catalogue)
    replies = await system.broker._channel.declare_queue(exclusive=True, auto_delete=True)
    await system.broker.publish_bytes(
        "upload.submitted.v1", b"", headers={"hashtag": system.demo["token"], "EventID": system.demo["event"],
                                             "MJD": "61365.1", "dryRun": "1", "catalogue_url": url},
        correlation_id="by-reference", reply_to=replies.name)
    reply = await next_message(system.broker, replies.name, timeout_s=30)
    answer = json.loads(reply.body)
    assert answer["survey"] == DEMO_SURVEY and reply.correlation_id == "by-reference"


@pytest.fixture
async def aiohttp_file_server():
    from aiohttp import web

    runners = []

    async def serve(data: bytes) -> str:
        async def field(request):
            return web.Response(body=data)

        app = web.Application()
        app.router.add_get("/field.cat", field)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/field.cat"

    yield serve
    for runner in runners:
        await runner.cleanup()
