"""A simulated FITS frame through ingest, astrometry, photometry, calibration and lightcurve."""
import json

import pytest
from pymongo import AsyncMongoClient

from shared.refcat.store import RefcatStore
from shared.refcat.surveys import DEMO_SURVEY
from shared.simimage import simulate_image
from services.demo import DEMO_DEC_DEG, DEMO_RA_DEG
from tests.support.flows import post_upload, seed_demo
from tests.support.system import running_system, settings_for

pytestmark = pytest.mark.integration
SERVICES = ("ingest", "astrometry", "photometry", "calibration", "lightcurve")


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path):
    import shutil

    if shutil.which("solve-field") is None:
        pytest.skip("astrometry.net (solve-field) is not installed: .ci/run installs it")
    settings = settings_for(mongo_url, amqp_url, unique_name)
    async with running_system(settings, services=SERVICES) as running:
        running.demo = await seed_demo(settings, tmp_path)
        client = AsyncMongoClient(mongo_url)
        try:
            (running.reference,) = await RefcatStore(client[unique_name]).cone(DEMO_RA_DEG, DEMO_DEC_DEG, 0.2)
        finally:
            await client.close()
        yield running


async def upload_frame(system, *, transient_mag, seed, name):
    data, truth = simulate_image(reference=system.reference, size_px=1024, centre_ra_deg=DEMO_RA_DEG,
                                 centre_dec_deg=DEMO_DEC_DEG, wcs_offset_deg=0.3, transient_mag=transient_mag,
                                 filter_name="r", seed=seed)
    async with system.http.post(f"{system.url}/cgi/newevent", data={
            "EventID": name, "ra": f"{truth['event_ra_deg']:.7f}", "dec": f"{truth['event_dec_deg']:.7f}",
            "hashtag": system.demo["token"]}) as response:
        assert response.status == 200, await response.text()
    status, body = await post_upload(system, {**system.demo, "event": name}, data, MJD="61000.25", expTime="60",
                                     dryRun=0)
    return status, body, truth


async def test_frame_with_an_offset_wcs_and_a_transient_gives_its_magnitude(system):
    status, body, truth = await upload_frame(system, transient_mag=16.5, seed=3, name="ivo://SimFrame1")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["survey"] == DEMO_SURVEY and answer["filter"] == "r" and not answer["is_limit"]
    assert answer["mag"] == pytest.approx(truth["transient_mag"], abs=max(0.03, 3 * answer["total_err"]))
    await system.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == answer["followup_id"])
    solved = await system.probe.wait_for("image.solved.v1", lambda m: m.event.ivorn == "ivo://SimFrame1")
    assert solved.astrometry["header_wcs"] == "stale" and solved.astrometry["rms_arcsec"] < 0.2


async def test_frame_without_the_transient_gives_a_limit_from_the_noise(system):
    status, body, truth = await upload_frame(system, transient_mag=None, seed=4, name="ivo://SimFrame2")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["is_limit"] and answer["mag_err"] == -1
    expected = truth["limit_instrumental_mag"] + truth["zeropoint_mag"]
    assert answer["mag"] == pytest.approx(expected, abs=0.3)


async def test_an_image_without_reference_stars_fails_with_the_astrometry_reason(system):
    data, truth = simulate_image(reference=system.reference, size_px=256, centre_ra_deg=DEMO_RA_DEG,
                                 centre_dec_deg=DEMO_DEC_DEG, transient_mag=None, filter_name="r", seed=5)
    async with system.http.post(f"{system.url}/cgi/newevent", data={
            "EventID": "ivo://FarAway", "ra": "300.0", "dec": "-60.0", "hashtag": system.demo["token"]}) as r:
        assert r.status == 200
    status, body = await post_upload(system, {**system.demo, "event": "ivo://FarAway"}, data, MJD="61000.25")
    assert status == 422 and "reference stars" in body
