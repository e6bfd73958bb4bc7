"""Every real catalogue beside the project either calibrates or is refused with a sentence."""
import json

import pytest

from shared.refcat.importer import import_file
from shared.refcat.store import RefcatStore
from tests.support.flows import post_upload, seed_demo
from tests.support.system import running_system, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def system(mongo_url, amqp_url, tmp_path_factory, shared_data):
    import uuid

    from pymongo import AsyncMongoClient

    name = "t" + uuid.uuid4().hex[:12]
    settings = settings_for(mongo_url, amqp_url, name)
    client = AsyncMongoClient(mongo_url)
    await import_file(RefcatStore(client[name]), shared_data / "catalogues" /
                      "lco_cpt1m013_kb76_w_GAIA-DR2_refcat_LDAC.cat", survey="GaiaDR2")
    await client.close()
    async with running_system(settings) as running:
        running.demo = await seed_demo(settings, tmp_path_factory.mktemp("demo"))
        yield running


async def upload_for_field(system, shared_data, filename: str) -> tuple[int, str]:
    """Create an event at the centre of the file's field (or anywhere if it has none) and upload it."""
    from services.calibration.work import field_of
    from shared.catalogue import CatalogueError, read_catalogue

    data = (shared_data / "catalogues" / filename).read_bytes()
    try:
        ra, dec, _ = field_of(read_catalogue(data, filename=filename))
    except CatalogueError:
        ra, dec = 10.0, 10.0
    ivorn = f"ivo://real-{filename.split('.')[0]}"
    async with system.http.post(f"{system.url}/cgi/newevent", data={
            "EventID": ivorn, "ra": f"{ra:.6f}", "dec": f"{dec:.6f}", "hashtag": system.demo["token"]}) as r:
        assert r.status == 200, await r.text()
    return await post_upload(system, {**system.demo, "event": ivorn}, data, MJD="57500")


@pytest.mark.parametrize("filename", [
    "lco_cpt1m013_kb76_w_LDAC.fits", "lco_1m0-05_fa15_w_photpipe_LDAC_MAG_AUTO.fits",
    "lco_cpt1m010-kb70-20160210-0365-e90_cat.fits", "lco_elp1m008-fl05-20160217-0218-e90_cat.fits",
    "lco_cpt1m013_kb76_rp_252P_oracdr_cat.fits", "swope_r_didymos_LDAC.fits", "mro_didymos_LDAC_NO_WCS.fits",
    "lco_LDAC_CORRUPT_missing_END.fits", "sep_emmi_image_ASCII_HEAD.cat", "astropy_sextractor3_vector_columns.dat",
    "lco_cpt1m013_kb76_w_GAIA-DR2_refcat_LDAC.cat"])
async def test_real_catalogue_calibrates_or_is_refused_with_a_sentence(system, shared_data, filename):
    status, body = await upload_for_field(system, shared_data, filename)
    if status == 200:
        answer = json.loads(body)
        assert answer["zeropoint"] is not None and answer["mag"] is not None
    else:
        assert status in {400, 422}, (status, body)
        sentence = body.strip()
        assert len(sentence) > 30 and " " in sentence and "Traceback" not in sentence
    print(f"{filename}: {status} {body.strip()[:160]}")
