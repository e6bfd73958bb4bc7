"""The products of an image through the services: photometry stores them and names them in
image.products.v1, ingest keeps the ids and serves them to the observatory that uploaded (or an admin);
a deleted point's products go, a dry run's expire."""
import io
import json
import re
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from astropy.io import ascii as astropy_ascii
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from pymongo import AsyncMongoClient

from services.demo import DEMO_DEC_DEG, DEMO_RA_DEG
from services.ingest.store import IngestStore
from services.photometry.handlers import Measurer, PhotometryDeps
from shared.catalogue import read_catalogue
from shared.imaging import buckets
from shared.simimage import simulate_image
from tests.support.flows import image_system, post_upload

pytestmark = pytest.mark.integration

DOWNLOADS = ("catalogue.cat", "catalogue.ldac.fits", "wcs.hdr", "cutout.png", "cutout.fits")


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path):
    async with image_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        yield running


async def upload_frame(system, name: str, *, seed: int, dry_run: int):
    data, truth = simulate_image(reference=system.reference, size_px=768, centre_ra_deg=DEMO_RA_DEG,
                                 centre_dec_deg=DEMO_DEC_DEG, wcs_offset_deg=0.3, transient_mag=16.5,
                                 filter_name="r", seed=seed)
    async with system.http.post(f"{system.url}/cgi/newevent", data={
            "EventID": name, "ra": f"{truth['event_ra_deg']:.7f}", "dec": f"{truth['event_dec_deg']:.7f}",
            "hashtag": system.demo["token"]}) as response:
        assert response.status == 200, await response.text()
    status, body = await post_upload(system, {**system.demo, "event": name}, data, MJD="61000.25", expTime="60",
                                     dryRun=dry_run)
    assert status == 200, body
    return json.loads(body), truth


async def logged_in(url: str, token: str) -> aiohttp.ClientSession:
    """A client signed in through the login form (CSRF token from the page), as a browser would be."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(f"{url}/login") as response:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', await response.text()).group(1)
    async with http.post(f"{url}/login", data={"hashtag": token, "csrf_token": csrf, "next": "/"}) as response:
        assert response.status == 200
    return http


async def test_the_owner_downloads_every_product_and_others_may_not(system):
    answer, truth = await upload_frame(system, "ivo://SimProducts1", seed=41, dry_run=0)
    oid = answer["observation_id"]
    products = await system.probe.wait_for("image.products.v1", lambda m: m.observation_id == oid)
    assert {p.kind for p in products.products} == {"catalogue_ascii", "catalogue_ldac", "wcs_header", "cutout_png",
                                                   "cutout_fits"}
    assert products.quality.astrometry_rms_arcsec < 0.2 and products.quality.astrometry_n_stars > 20
    assert products.quality.fwhm_arcsec == pytest.approx(truth["seeing_arcsec"], rel=0.1)

    # not signed in: the login page, coming back to the download
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{system.url}/results/{oid}/wcs.hdr", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].startswith("/login?next=/results/")

    owner = await logged_in(system.url, system.demo["token"])
    try:
        got = {}
        for name in DOWNLOADS:
            async with owner.get(f"{system.url}/results/{oid}/{name}") as response:
                assert response.status == 200, (name, await response.text())
                assert f"cpcs-followup{answer['followup_id']}-{name}" in response.headers["Content-Disposition"]
                got[name] = await response.read()
        table = astropy_ascii.read(got["catalogue.cat"].decode(), format="sextractor")
        assert len(table) == products.quality.n_detected == len(Table.read(io.BytesIO(got["catalogue.ldac.fits"]),
                                                                          hdu=2))
        assert read_catalogue(got["catalogue.cat"]).file_format == "ASCII_HEAD"
        assert read_catalogue(got["catalogue.ldac.fits"]).file_format == "FITS_LDAC"
        wcs = WCS(fits.Header.fromstring(got["wcs.hdr"].decode("ascii")))
        x, y = wcs.all_world2pix([[truth["event_ra_deg"], truth["event_dec_deg"]]], 0)[0]
        assert abs(x - truth["event_xy_px"][0]) < 0.5 and abs(y - truth["event_xy_px"][1]) < 0.5
        assert got["cutout.png"].startswith(b"\x89PNG")
        assert fits.getdata(io.BytesIO(got["cutout.fits"])).shape == (64, 64)
        async with owner.get(f"{system.url}/results/{oid}/products") as response:
            page = await response.text()
            assert response.status == 200 and "Astrometric rms" in page and "Limiting magnitude (5σ)" in page
        async with owner.get(f"{system.url}/results/{'0' * 32}/cutout.png") as response:
            assert response.status == 404 and "no image products" in await response.text()
        async with owner.get(f"{system.url}/results/not-an-id/cutout.png") as response:
            assert response.status == 404 and "32-character hex id" in await response.text()
    finally:
        await owner.close()

    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:
        store = IngestStore(client[system.settings.mongo_db])
        observatory = await store.create_observatory("Elsewhere 1 m", None, None)
        other_token = "Elsewhere_" + "2" * 32
        await store.add_token(other_token, observatory_id=observatory["_id"], user="Elsewhere")
    finally:
        await client.close()
    other = await logged_in(system.url, other_token)
    admin = await logged_in(system.url, system.demo["admin_token"])
    try:
        async with other.get(f"{system.url}/results/{oid}/catalogue.cat") as response:
            assert response.status == 403 and "another observatory" in await response.text()
        async with admin.get(f"{system.url}/results/{oid}/catalogue.cat") as response:
            assert response.status == 200

        # the point deleted: its products go with it, in ingest's record and in photometry's bucket
        async with system.http.post(f"{system.url}/cgi/delpoint", data={
                "followupid": str(answer["followup_id"]), "hashtag": system.demo["token"]}) as response:
            assert response.status == 200, await response.text()
        async with admin.get(f"{system.url}/results/{oid}/catalogue.cat") as response:
            assert response.status == 404
        deleted = await system.probe.wait_for("observation.deleted.v1", lambda m: m.observation_id == oid)
        async with measurer_of(system) as (measurer, bucket):
            # the service's own queue may have handled it already: the drop is idempotent either way
            await measurer.on_observation_deleted(deleted)
            assert await bucket.find({"metadata.observation_id": oid}).to_list(None) == []
    finally:
        await other.close()
        await admin.close()


@asynccontextmanager
async def measurer_of(system):
    """Photometry's handler on the test's database, and its products bucket."""
    client = AsyncMongoClient(system.settings.mongo_url.get_secret_value())
    try:
        db = client[system.settings.mongo_db]
        uploads, scratch, catalogues, products = buckets(db, "uploads", "scratch", "catalogues", "products")
        yield Measurer(PhotometryDeps(db=db, uploads=uploads, scratch=scratch, catalogues=catalogues, executor=None,
                                      products=products)), products
    finally:
        await client.close()


async def test_a_dry_runs_products_are_served_until_they_expire(system):
    answer, _ = await upload_frame(system, "ivo://SimProducts2", seed=42, dry_run=1)
    oid = answer["observation_id"]
    products = await system.probe.wait_for("image.products.v1", lambda m: m.observation_id == oid)
    assert products.dry_run and products.expires_at is not None
    assert timedelta(hours=23) < products.expires_at - datetime.now(UTC) <= timedelta(days=1)
    owner = await logged_in(system.url, system.demo["token"])
    try:
        async with owner.get(f"{system.url}/results/{oid}/cutout.png") as response:
            assert response.status == 200 and response.headers["Content-Type"] == "image/png"
            assert f"cpcs-{oid[:12]}-cutout.png" in response.headers["Content-Disposition"]
        async with owner.get(f"{system.url}/results/{oid}/products") as response:
            assert "Dry run: these files are kept until" in await response.text()

        async with measurer_of(system) as (measurer, bucket):
            assert await measurer.purge_expired_products() == 0  # not yet
            later = (products.expires_at + timedelta(seconds=1)).timestamp()
            assert await measurer.purge_expired_products(now_unix=later) == len(products.products)
            assert await bucket.find({"metadata.observation_id": oid}).to_list(None) == []
            await measurer.deps.db.image_products.update_one(  # ingest's record, as it stands a day later
                {"_id": oid}, {"$set": {"expires_at_unix": datetime.now(UTC).timestamp() - 1}})
        async with owner.get(f"{system.url}/results/{oid}/cutout.png") as response:
            assert response.status == 404 and "kept for a day" in await response.text()
    finally:
        await owner.close()
