"""The linear TAN-SIP fit agrees with astropy's fit_wcs_from_points and recovers a known WCS."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import fit_wcs_from_points

from services.astrometry.science.fit import fit_wcs, sky_separation_arcsec
from shared.simimage import true_wcs


def _grid_rms_arcsec(a, b, shape):
    gy, gx = np.mgrid[0:shape[0]:20j, 0:shape[1]:20j]
    ra1, de1 = a.all_pix2world(gx.ravel(), gy.ravel(), 0)
    ra2, de2 = b.all_pix2world(gx.ravel(), gy.ravel(), 0)
    return float(np.sqrt(np.mean(sky_separation_arcsec(ra1, de1, ra2, de2) ** 2)))


@pytest.mark.parametrize("dec", [20.0, 85.0, -60.0])
def test_known_tan_sip_is_recovered_from_exact_points(dec):
    shape = (1500, 2000)
    truth = true_wcs(centre_ra_deg=359.9, centre_dec_deg=dec, size_px=shape, pixel_scale_arcsec=0.6,
                     rotation_deg=123.0, flip=True, sip_strength_px=4.0)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, shape[1] - 1, 300), rng.uniform(0, shape[0] - 1, 300)
    ra, de = truth.all_pix2world(x, y, 0)
    fit = fit_wcs(x, y, ra, de, degree=3, crpix=(1000.5, 750.5), crval=(0.2, dec + 0.05), shape=shape)
    assert fit.rms_arcsec < 0.002 and _grid_rms_arcsec(fit.wcs, truth, shape) < 0.002
    xx, yy = fit.wcs.all_world2pix(ra, de, 0)
    assert np.max(np.hypot(xx - x, yy - y)) < 0.01  # the inverse (AP/BP) and the iteration agree


def test_agrees_with_astropy_fit_wcs_from_points_on_noisy_points():
    shape = (1024, 1024)
    truth = true_wcs(centre_ra_deg=150.0, centre_dec_deg=20.0, size_px=shape, pixel_scale_arcsec=0.4,
                     rotation_deg=37.0, sip_strength_px=2.0)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1023, 200), rng.uniform(0, 1023, 200)
    ra, de = truth.all_pix2world(x, y, 0)
    xn, yn = x + rng.normal(0, 0.1, x.size), y + rng.normal(0, 0.1, y.size)
    ours = fit_wcs(xn, yn, ra, de, degree=3, crpix=(512.5, 512.5), crval=(150.0, 20.0), shape=shape)
    theirs = fit_wcs_from_points((xn, yn), SkyCoord(ra, de, unit="deg"), proj_point="center", projection="TAN",
                                 sip_degree=3)
    assert _grid_rms_arcsec(ours.wcs, theirs, shape) < 0.005
    assert _grid_rms_arcsec(ours.wcs, truth, shape) < 0.02


def test_too_few_stars_for_the_degree_is_an_error():
    with pytest.raises(ValueError, match="cannot constrain"):
        fit_wcs(np.arange(5.0), np.arange(5.0), np.arange(5.0), np.arange(5.0), degree=3, crpix=(1, 1), crval=(0, 0))
