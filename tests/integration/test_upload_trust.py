"""Uploads that must not become points: a file of another field, an impossible time; and RA - 360 files
that must calibrate like their normalised twins. Real broker, real database, the services' processes."""
import json

import pytest
from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient

from shared.refcat.store import RefcatStore
from shared.simfield import simulate_field
from tests.support.catalogues import shifted
from tests.support.flows import demo_system, post_upload

pytestmark = pytest.mark.integration
LCO_LDAC = "catalogues/lco_cpt1m013_kb76_w_LDAC.fits"
TWIN_RA_DEG, TWIN_DEC_DEG = 210.5, -12.3  # RA > 180: written as RA - 360 = -149.5 by some pipelines


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        yield running


async def nothing_stored(system) -> None:
    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:
        db = client[system.settings.mongo_db]
        assert await db.observations.count_documents({}) == 0
        assert await db.upload_hashes.count_documents({}) == 0
        for bucket in ("uploads", "scratch"):
            assert await AsyncGridFSBucket(db, bucket_name=bucket).find({}).to_list(None) == []
    finally:
        await client.close()
    assert system.probe.count("upload.received.v1") == 0


async def test_catalogue_of_another_field_is_refused_with_both_positions_and_the_distance(system):
    status, body = await post_upload(system, system.demo, shifted(system.catalogue, d_ra_deg=70.0), dryRun=0)
    assert status == 422, body
    assert "does not cover the event" in body
    assert "RA 220.09" in body and "RA 150.1000, Dec +2.2000" in body  # the field's centre and the event
    assert "70.0 deg" in body or "69.9 deg" in body
    await nothing_stored(system)


async def test_real_ldac_of_a_field_far_from_the_event_is_refused_not_stored_as_a_limit(system, shared_data):
    data = (shared_data / LCO_LDAC).read_bytes()
    status, body = await post_upload(system, system.demo, data, dryRun=0, MJD="57506.9", expTime="115")
    assert status == 422, body
    assert "does not cover the event" in body and "deg from that centre" in body
    await nothing_stored(system)


async def test_a_target_just_outside_the_stars_but_within_the_radius_is_still_calibrated(system):
    # the catalogue without its target is still the event's field: a limit there is the truth
    lines = system.catalogue.decode().splitlines()
    kept = [ln for ln in lines if ln.startswith("#") or not ln.strip()
            or abs(float(ln.split()[3]) - 150.1) > 2e-4 or abs(float(ln.split()[4]) - 2.2) > 2e-4]
    status, body = await post_upload(system, system.demo, ("\n".join(kept) + "\n").encode())
    assert status == 200, body
    assert json.loads(body)["is_limit"] is True


@pytest.mark.parametrize(("mjd", "words"), [
    ("2461365.6", "MJD = JD - 2400000.5 = 61365.10000"),
    ("0", "is not a time of an observation"),
    ("-3", "is not a time of an observation"),
    ("99999", "days in the future"),
    ("40000", "years before event"),
])
async def test_implausible_mjd_is_refused_with_the_reason(system, mjd, words):
    status, body = await post_upload(system, system.demo, system.catalogue, dryRun=0, MJD=mjd)
    assert status == 422, body
    assert words in body
    await nothing_stored(system)


async def test_answer_says_the_mjd_is_mid_exposure(system):
    status, body = await post_upload(system, system.demo, system.catalogue, MJD="61365.1")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["mjd"] == pytest.approx(61365.1) and answer["mjd_convention"] == "mid-exposure"


async def test_ra_minus_360_catalogue_calibrates_as_its_normalised_twin(system):
    field = simulate_field(ra_deg=TWIN_RA_DEG, dec_deg=TWIN_DEC_DEG, radius_arcmin=8, n_stars=300, seed=91,
                           band="r", target_mag=16.8)
    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:
        await RefcatStore(client[system.settings.mongo_db]).import_table(
            field.reference, "ra=RAJ2000,dec=DEJ2000,r=r'mag,r_err=e_r'mag,V=Vmag,V_err=e_Vmag",
            survey="TwinSim", version="twin-1", synthetic=True, source_name="test")
    finally:
        await client.close()
    async with system.http.post(f"{system.url}/cgi/newevent", data={
            "EventID": "ivo://TwinField", "ra": str(TWIN_RA_DEG), "dec": str(TWIN_DEC_DEG),
            "hashtag": system.demo["token"]}) as response:
        assert response.status == 200, await response.text()
    demo = {**system.demo, "event": "ivo://TwinField"}
    normal = field.catalogue_text.encode()
    wrapped = shifted(normal, d_ra_deg=-360.0)
    assert b"-149.5" in wrapped or b"-149.4" in wrapped  # really written as RA - 360
    answers = []
    for data in (normal, wrapped):
        status, body = await post_upload(system, demo, data, forceFilter="TwinSim/r")
        assert status == 200, body
        answers.append(json.loads(body))
    a, b = answers
    assert a["survey"] == b["survey"] == "TwinSim"
    for key in ("mag", "mag_err", "zeropoint", "scatter", "npoints", "ra", "match_radius_arcsec"):
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-9), key
    assert a["ra"] == pytest.approx(TWIN_RA_DEG, abs=1e-3)
    assert a["mag"] == pytest.approx(16.8, abs=max(0.05, 3 * a["total_err"]))
