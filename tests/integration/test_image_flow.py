"""A simulated FITS frame through ingest, astrometry, photometry, calibration and lightcurve."""
import json

import pytest
from pymongo import AsyncMongoClient

from services.demo import DEMO_DEC_DEG, DEMO_RA_DEG
from shared.refcat.surveys import DEMO_SURVEY
from shared.simimage import make_reference_field, simulate_image
from tests.support.flows import image_system, post_upload

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path):
    async with image_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
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
    assert solved.astrometry.header_wcs == "stale" and solved.astrometry.rms_arcsec < 0.2


async def test_frame_without_the_transient_gives_a_limit_from_the_noise(system):
    status, body, truth = await upload_frame(system, transient_mag=None, seed=4, name="ivo://SimFrame2")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["is_limit"] and answer["mag_err"] == -1
    expected = truth["limit_instrumental_mag"] + truth["zeropoint_mag"]
    assert answer["mag"] == pytest.approx(expected, abs=0.3)
    # the limit's uncertainty is the calibration's (zero point, scatter), never missing
    assert answer["limit_err"] is not None
    assert max(answer["zp_err"], answer["calib_err"]) <= answer["limit_err"] < 0.2


async def test_an_image_without_reference_stars_fails_with_the_astrometry_reason(system):
    # a field the store has no stars of (simulated from its own references, which are not imported)
    elsewhere = make_reference_field(ra_deg=300.3, dec_deg=-59.83, radius_deg=0.1, n_stars=300, seed=5)
    data, truth = simulate_image(reference=elsewhere, size_px=256, centre_ra_deg=300.3,
                                 centre_dec_deg=-59.83, transient_mag=None, filter_name="r", seed=5)
    async with system.http.post(f"{system.url}/cgi/newevent", data={
            "EventID": "ivo://FarAway", "ra": "300.3", "dec": "-59.83", "hashtag": system.demo["token"]}) as r:
        assert r.status == 200
    status, body = await post_upload(system, {**system.demo, "event": "ivo://FarAway"}, data, MJD="61000.25")
    assert status == 422 and "reference stars" in body


async def test_an_image_of_another_field_is_refused_before_anything_is_stored(system):
    data, truth = simulate_image(reference=system.reference, size_px=256, centre_ra_deg=DEMO_RA_DEG,
                                 centre_dec_deg=DEMO_DEC_DEG, transient_mag=None, filter_name="r", seed=6)
    async with system.http.post(f"{system.url}/cgi/newevent", data={
            "EventID": "ivo://ElsewhereEvent", "ra": "220.0", "dec": "-40.0", "hashtag": system.demo["token"]}) as r:
        assert r.status == 200
    status, body = await post_upload(system, {**system.demo, "event": "ivo://ElsewhereEvent"}, data,
                                     MJD="61000.25", dryRun=0)
    assert status == 422, body
    assert "the image does not cover the event" in body and "RA 220.0000, Dec -40.0000" in body
    assert "deg away" in body
    assert system.probe.count("image.received.v1") == 0
    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:
        assert await client[system.settings.mongo_db].observations.count_documents({}) == 0
    finally:
        await client.close()


async def test_photometry_stores_one_catalogue_per_image_and_drops_it_with_the_point(system):
    from services.astrometry.science import AstrometryParams
    from services.photometry.handlers import Measurer, PhotometryDeps
    from services.photometry.science.model import PhotometryParams
    from shared.imaging import buckets
    from shared.settings import LoadedParameters

    status, body, truth = await upload_frame(system, transient_mag=16.0, seed=7, name="ivo://SimFrame7")
    assert status == 200, body
    answer = json.loads(body)
    solved = await system.probe.wait_for("image.solved.v1", lambda m: m.event.ivorn == "ivo://SimFrame7")
    measured = await system.probe.wait_for("catalogue.measured.v1", lambda m: m.event.ivorn == "ivo://SimFrame7")
    await system.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == answer["followup_id"])
    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:
        db = client[system.settings.mongo_db]
        uploads, scratch, catalogues = buckets(db, "uploads", "scratch", "catalogues")
        measurer = Measurer(PhotometryDeps(db=db, uploads=uploads, scratch=scratch, catalogues=catalogues,
                                           executor=None))
        again = await measurer.on_image_solved(solved)  # the broker delivers the same message again
        assert [m.catalogue_file_id for m in again] == [measured.catalogue_file_id]
        mine = {"metadata.observation_id": solved.observation_id}
        assert len(await catalogues.find(mine).to_list(None)) == 1
        kept = await db.image_metadata.find_one({"_id": solved.observation_id})
        defaults = LoadedParameters(PhotometryParams())
        assert kept["params"] == {**defaults.provenance(), "values": PhotometryParams().to_dict()}
        assert solved.astrometry.params == json.loads(json.dumps(AstrometryParams().to_dict()))

        async with system.http.post(f"{system.url}/cgi/delpoint", data={
                "followupid": str(answer["followup_id"]), "hashtag": system.demo["token"]}) as response:
            assert response.status == 200, await response.text()
        deleted = await system.probe.wait_for("observation.deleted.v1",
                                              lambda m: m.observation_id == solved.observation_id)
        # the service's own queue may have handled it already: the drop is idempotent either way
        await measurer.on_observation_deleted(deleted)
        assert await catalogues.find(mine).to_list(None) == []
        assert await db.image_metadata.find_one({"_id": solved.observation_id}) is None
    finally:
        await client.close()
