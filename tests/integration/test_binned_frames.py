"""Binned frames whose headers keep the unbinned scale, and frames that do not contain the event, through
ingest, astrometry, photometry, calibration and lightcurve (real broker and database)."""
import io
import json
import re
import warnings

import pytest
from astropy.io import fits

from services.demo import DEMO_DEC_DEG, DEMO_RA_DEG
from shared.simimage import simulate_image
from tests.support.flows import image_system, post_upload

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path):
    async with image_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        yield running


def with_header_scale(data: bytes, scale_arcsec: float) -> bytes:
    """The frame with PIXSCALE replaced (what binning on the chip leaves in many headers)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul = fits.open(io.BytesIO(data))
        hdul[0].header["PIXSCALE"] = scale_arcsec
        buf = io.BytesIO()
        hdul.writeto(buf)
    return buf.getvalue()


async def upload(system, data, truth, name):
    async with system.http.post(f"{system.url}/cgi/newevent", data={
            "EventID": name, "ra": f"{truth['event_ra_deg']:.7f}", "dec": f"{truth['event_dec_deg']:.7f}",
            "hashtag": system.demo["token"]}) as response:
        assert response.status == 200, await response.text()
    return await post_upload(system, {**system.demo, "event": name}, data, MJD="61000.25", expTime="60", dryRun=0)


async def test_a_frame_binned_4x_whose_header_keeps_the_unbinned_scale_gives_a_point(system):
    data, truth = simulate_image(reference=system.reference, size_px=1024, pixel_scale_arcsec=0.4,
                                 centre_ra_deg=DEMO_RA_DEG, centre_dec_deg=DEMO_DEC_DEG, wcs_offset_deg=None,
                                 transient_mag=16.5, filter_name="r", seed=21)
    status, body = await upload(system, with_header_scale(data, 0.1), truth, "ivo://Binned4x")
    assert status == 200, body
    answer = json.loads(body)
    assert not answer["is_limit"]
    assert answer["mag"] == pytest.approx(truth["transient_mag"], abs=max(0.03, 3 * answer["total_err"]))
    solved = await system.probe.wait_for("image.solved.v1", lambda m: m.event.ivorn == "ivo://Binned4x")
    astrometry = solved.astrometry
    assert astrometry.pixel_scale_arcsec == pytest.approx(0.4, rel=2e-3)
    assert [(a.wide, a.outcome == "solved") for a in astrometry.attempts] == [(False, False), (True, True)]
    assert any("pixel scale (0.1 arcsec/pixel) is wrong" in n for n in astrometry.notes)


async def test_a_frame_that_does_not_contain_the_event_fails_with_the_distance(system):
    data, truth = simulate_image(reference=system.reference, size_px=1024, pixel_scale_arcsec=0.4,
                                 centre_ra_deg=DEMO_RA_DEG, centre_dec_deg=DEMO_DEC_DEG, wcs_offset_deg=None,
                                 transient_mag=None, event_xy_px=(-300.0, 511.5), filter_name="r", seed=22)
    status, body = await upload(system, data, truth, "ivo://OffFrame")
    assert status == 422, body
    assert "is not in the frame" in body and "5.4 arcmin from the event" in body, body
    failed = await system.probe.wait_for("observation.failed.v1", lambda m: "is not in the frame" in m.reason)
    assert failed.stage == "astrometry"
    centre = re.search(r"centred at RA ([0-9.]+), Dec ([-+0-9.]+) deg", failed.reason)
    assert float(centre[1]) == pytest.approx(DEMO_RA_DEG, abs=1e-4)
    assert float(centre[2]) == pytest.approx(DEMO_DEC_DEG, abs=1e-4)
    assert f"the event (RA {truth['event_ra_deg']:.5f}, Dec {truth['event_dec_deg']:+.5f} deg)" in failed.reason
