"""The image products in the browser: the observer signs in, sees the cutout and the image's quality,
downloads each product and reads it back with astropy and our catalogue reader."""
from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from astropy.io import ascii as astropy_ascii
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from PIL import Image
from playwright.async_api import expect

from services.demo import DEMO_DEC_DEG, DEMO_RA_DEG
from shared.catalogue import read_catalogue
from shared.simimage import simulate_image
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.support.flows import image_system, post_upload

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def test_the_observer_downloads_every_image_product(page, mongo_url, amqp_url, unique_name, tmp_path):
    async with image_system(mongo_url, amqp_url, unique_name, tmp_path) as system:
        data, truth = simulate_image(reference=system.reference, size_px=768, centre_ra_deg=DEMO_RA_DEG,
                                     centre_dec_deg=DEMO_DEC_DEG, wcs_offset_deg=0.3, transient_mag=16.5,
                                     filter_name="r", seed=51)
        async with system.http.post(f"{system.url}/cgi/newevent", data={
                "EventID": "ivo://SimBrowser1", "ra": f"{truth['event_ra_deg']:.7f}",
                "dec": f"{truth['event_dec_deg']:.7f}", "hashtag": system.demo["token"]}) as response:
            assert response.status == 200, await response.text()
        status, body = await post_upload(system, {**system.demo, "event": "ivo://SimBrowser1"}, data,
                                         MJD="61000.25", expTime="60", dryRun=0)
        assert status == 200, body
        answer = json.loads(body)
        oid = answer["observation_id"]
        products = await system.probe.wait_for("image.products.v1", lambda m: m.observation_id == oid)
        await system.probe.wait_for("observation.calibrated.v1", lambda m: m.observation_id == oid)

        path = f"/results/{oid}/products"
        await log_in(page, system.url, system.demo["token"], next_path=path)
        await expect(page.get_by_role("heading", name="Image products", exact=True)).to_be_visible()
        cutout = page.get_by_role("img", name="cutout of the image around the event")
        await expect(cutout).to_be_visible()
        assert await cutout.evaluate("img => img.naturalWidth") == 256  # the PNG loaded
        quality = page.locator("dl.ip-quality")
        rms = products.quality.astrometry_rms_arcsec
        await expect(quality).to_contain_text(f"{rms:.2f}″")
        await expect(quality).to_contain_text(str(products.quality.astrometry_n_stars))
        await expect(quality).to_contain_text(f"{products.quality.fwhm_arcsec:.2f}″")
        limit = products.quality.limiting_mag_inst_5sigma - answer["zeropoint"]
        await expect(quality).to_contain_text(f"{limit:.2f}")  # calibrated with the calibration's zero point
        assert system.demo["token"] not in await page.content()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "image_products.png"), full_page=True)

        got: dict[str, bytes] = {}
        links = page.locator("table.ip-downloads a")
        assert await links.count() == 5
        for i in range(5):
            link = links.nth(i)
            href = await link.get_attribute("href")
            async with page.expect_download() as info:
                await link.focus()
                await page.keyboard.press("Enter")  # the keyboard works as well as the mouse
            download = await info.value
            assert download.suggested_filename == f"cpcs-followup{answer['followup_id']}-{href.rsplit('/', 1)[1]}"
            got[href.rsplit("/", 1)[1]] = await asyncio.to_thread(Path(await download.path()).read_bytes)

        table = astropy_ascii.read(got["catalogue.cat"].decode(), format="sextractor")
        ldac = Table.read(io.BytesIO(got["catalogue.ldac.fits"]), hdu=2)
        assert len(table) == len(ldac) == products.quality.n_detected
        assert read_catalogue(got["catalogue.cat"]).n_input == read_catalogue(got["catalogue.ldac.fits"]).n_input
        wcs = WCS(fits.Header.fromstring(got["wcs.hdr"].decode("ascii")))
        x, y = wcs.all_world2pix([[truth["event_ra_deg"], truth["event_dec_deg"]]], 0)[0]
        assert abs(x - truth["event_xy_px"][0]) < 0.5 and abs(y - truth["event_xy_px"][1]) < 0.5
        assert Image.open(io.BytesIO(got["cutout.png"])).size == (256, 256)
        with fits.open(io.BytesIO(got["cutout.fits"])) as hdus:
            cx, cy = WCS(hdus[0].header).all_world2pix([[truth["event_ra_deg"], truth["event_dec_deg"]]], 0)[0]
            assert abs(cx - 32) <= 1 and abs(cy - 32) <= 1
