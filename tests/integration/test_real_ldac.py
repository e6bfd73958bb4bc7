"""A real FITS_LDAC (LCO 1 m, fluxes only) against the matching Gaia DR2 reference file, through the services."""
import json
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from pymongo import AsyncMongoClient

from shared.refcat.importer import import_file
from shared.refcat.store import RefcatStore
from tests.support.flows import post_upload, seed_demo
from tests.support.system import running_system, settings_for

pytestmark = pytest.mark.integration
LDAC = "catalogues/lco_cpt1m013_kb76_w_LDAC.fits"
GAIA = "catalogues/lco_cpt1m013_kb76_w_GAIA-DR2_refcat_LDAC.cat"


def objects(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdus:
            return hdus["LDAC_OBJECTS"].data.copy()


def independent_zeropoint(shared_data) -> float:
    """Median of m_inst - G over stars matched within 1.5", 3-sigma clipped (no project code)."""
    cat, ref = objects(shared_data / LDAC), objects(shared_data / GAIA)
    good = cat["FLUX_AUTO"] > 0
    cat = cat[good]
    inst = -2.5 * np.log10(cat["FLUX_AUTO"] / 115.0)
    c = SkyCoord(cat["ALPHA_J2000"] * u.deg, cat["DELTA_J2000"] * u.deg)
    r = SkyCoord(ref["XWIN_WORLD"] * u.deg, ref["YWIN_WORLD"] * u.deg)
    idx, sep, _ = c.match_to_catalog_sky(r)
    close = sep < 1.5 * u.arcsec
    diff = inst[close] - ref["MAG"][idx[close]]
    _, median, _ = sigma_clipped_stats(diff, sigma=3.0)
    return float(median)


async def test_real_ldac_calibrates_against_gaia_g(mongo_url, amqp_url, unique_name, tmp_path, shared_data):
    settings = settings_for(mongo_url, amqp_url, unique_name)
    client = AsyncMongoClient(mongo_url)
    try:
        imported = await import_file(RefcatStore(client[unique_name]), shared_data / GAIA, survey="GaiaDR2")
    finally:
        await client.close()
    assert imported == 249
    async with running_system(settings) as system:
        demo = await seed_demo(settings, tmp_path)
        async with system.http.post(f"{system.url}/cgi/newevent", data={
                "EventID": "ivo://LCO-kb76-field", "ra": "219.83", "dec": "-9.77", "hashtag": demo["token"]}) as r:
            assert r.status == 200, await r.text()
        data = (shared_data / LDAC).read_bytes()
        demo = {**demo, "event": "ivo://LCO-kb76-field"}
        status, body = await post_upload(system, demo, data, MJD="57506.9", expTime="115")
    assert status == 200, body
    answer = json.loads(body)
    assert (answer["survey"], answer["filter"]) == ("GaiaDR2", "G")
    assert answer["npoints"] >= 100
    assert answer["zeropoint"] == pytest.approx(independent_zeropoint(shared_data), abs=0.05)
