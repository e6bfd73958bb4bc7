"""The image simulator: deterministic frames whose truth matches what is drawn."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from shared.fitsimage import read_image, standardise_header
from shared.fitsimage.header import header_wcs
from shared.simimage import make_reference_field, select_cone, simulate_image


@pytest.fixture(scope="module")
def reference():
    return make_reference_field(ra_deg=210.0, dec_deg=-12.0, radius_deg=0.12, n_stars=700, seed=3)


def test_same_seed_same_bytes_other_seed_other_noise(reference):
    a, ta = simulate_image(reference=reference, size_px=128, seed=5, transient_mag=18.0)
    b, tb = simulate_image(reference=reference, size_px=128, seed=5, transient_mag=18.0)
    c, _ = simulate_image(reference=reference, size_px=128, seed=6, transient_mag=18.0)
    assert a == b and ta == tb and a != c


def test_the_header_is_a_complete_observation_record_with_an_offset_wcs(reference):
    data, truth = simulate_image(reference=reference, size_px=256, seed=1, wcs_offset_deg=0.3, exptime_s=45.0,
                                 gain=1.7, read_noise_e=6.0, saturation_adu=50000.0, mjd=61000.5, airmass=1.4)
    frame = read_image(data)
    record = standardise_header(frame.header)
    assert record.exptime_s == 45.0 and record.mjd_start == pytest.approx(61000.5)
    assert ((record.gain_e_per_adu, record.read_noise_e, record.saturation_adu, record.airmass)
            == (1.7, 6.0, 50000.0, 1.4))
    assert record.filter == "r" and record.pixel_scale_arcsec == 0.4 and frame.header["SYNTHET"]
    h_wcs, t_wcs = header_wcs(frame.header), WCS(truth["wcs_header"])
    centre = [[127.5, 127.5]]
    hc, tc = h_wcs.all_pix2world(centre, 0)[0], t_wcs.all_pix2world(centre, 0)[0]
    sep = math.degrees(math.acos(np.clip(
        math.sin(math.radians(hc[1])) * math.sin(math.radians(tc[1]))
        + math.cos(math.radians(hc[1])) * math.cos(math.radians(tc[1])) * math.cos(math.radians(hc[0] - tc[0])),
        -1, 1)))
    assert sep == pytest.approx(0.3, abs=1e-6)
    assert record.pointing_ra_deg == pytest.approx(hc[0], abs=1e-3)  # the pointing is as stale as the WCS
    assert "A_3_0" in truth["wcs_header"] and "A_3_0" not in frame.header


def test_stars_are_drawn_where_the_true_wcs_puts_them_with_their_flux(reference):
    data, truth = simulate_image(reference=reference, size_px=200, seed=2, n_cosmic=0, sky_adu=0.0,
                                 read_noise_e=0.0, gain=1000.0, transient_mag=16.0, sip_strength_px=3.0)
    image = fits.getdata(io.BytesIO(data)).astype(float)
    wcs = WCS(truth["wcs_header"])
    x, y = wcs.all_world2pix(truth["star_ra_deg"], truth["star_dec_deg"], 0)
    assert np.allclose(x, truth["star_x_px"], atol=1e-6) and np.allclose(y, truth["star_y_px"], atol=1e-6)
    without, truth0 = simulate_image(reference=reference, size_px=200, seed=2, n_cosmic=0, sky_adu=0.0,
                                     read_noise_e=0.0, gain=1000.0, transient_mag=None, sip_strength_px=3.0)
    assert truth0["event_xy_px"] == truth["event_xy_px"]
    difference = image - fits.getdata(io.BytesIO(without)).astype(float)
    assert difference.sum() == pytest.approx(truth["transient_flux_adu"], rel=2e-3)
    ex, ey = (int(round(v)) for v in truth["event_xy_px"])
    assert np.unravel_index(np.argmax(difference), difference.shape) == (ey, ex)
    assert truth["transient_flux_adu"] == pytest.approx(60.0 * 10 ** (-0.4 * (16.0 - 25.0)))


def test_no_transient_keeps_the_event_position_and_the_noise_limit(reference):
    _, truth = simulate_image(reference=reference, size_px=128, seed=4, transient_mag=None)
    assert truth["transient_mag"] is None and truth["event_ra_deg"] is not None
    assert truth["limit_sigma"] == 5.0 and -5 < truth["limit_instrumental_mag"] < 0


def test_select_cone_matches_a_store_cone(reference):
    cone = select_cone(reference, 210.0, -12.0, 0.05)
    assert 0 < len(cone) < len(reference) and set(cone.mags) == set(reference.mags)


def test_bad_arguments_are_refused(reference):
    with pytest.raises(ValueError, match="at least 16"):
        simulate_image(reference=reference, size_px=8)
    with pytest.raises(ValueError, match="no band 'u'"):
        simulate_image(reference=reference, band="u")
