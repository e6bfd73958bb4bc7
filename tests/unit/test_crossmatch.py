"""One-to-one sky cross-match."""
from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from services.calibration.science.crossmatch import angular_separation_arcsec, match_one_to_one

AS = 1.0 / 3600.0


def test_only_the_nearer_of_two_matches():
    ref_ra, ref_dec = np.array([10.0]), np.array([20.0])
    cat_ra = np.array([10.0, 10.0])
    cat_dec = np.array([20.0 + 1.0 * AS, 20.0 - 0.5 * AS])
    i_cat, i_ref, sep = match_one_to_one(cat_ra, cat_dec, ref_ra, ref_dec, 2.0)
    assert i_cat.tolist() == [1] and i_ref.tolist() == [0]
    assert sep[0] == pytest.approx(0.5, abs=1e-6)
    # and symmetric in the other direction
    i_ref2, i_cat2, _ = match_one_to_one(ref_ra, ref_dec, cat_ra, cat_dec, 2.0)
    assert i_ref2.tolist() == [0] and i_cat2.tolist() == [1]


def test_ra_wrap_at_zero():
    dec = 45.0
    d_ra = 0.4 * AS / np.cos(np.deg2rad(dec))
    i1, i2, sep = match_one_to_one([360.0 - d_ra], [dec], [d_ra], [dec], 2.0)
    assert i1.tolist() == [0] and i2.tolist() == [0]
    assert sep[0] == pytest.approx(0.8, abs=1e-4)
    i1, i2, sep = match_one_to_one([0.0 + d_ra, 359.0], [dec, dec], [359.9999999], [dec], 2.0)
    assert i1.tolist() == [0]


def test_radius_respected():
    # four pairs far apart, separated by 1.9, 2.1, 5.0 and 1.99 arcsec
    ra1 = 150.0 + np.arange(4) * 0.01
    ra2 = ra1.copy()
    dec2 = np.array([1.9, 2.1, 5.0, -1.99]) * AS
    dec1 = np.zeros(4)
    i1, i2, sep = match_one_to_one(ra1, dec1, ra2, dec2, 2.0)
    assert i1.tolist() == [0, 3] and i2.tolist() == [0, 3]
    assert np.all(sep <= 2.0)


@pytest.mark.parametrize("n1,n2", [(0, 0), (0, 3), (3, 0)])
def test_empty_inputs(n1, n2):
    i1, i2, sep = match_one_to_one(np.zeros(n1), np.zeros(n1), np.zeros(n2), np.zeros(n2), 2.0)
    assert i1.size == i2.size == sep.size == 0
    assert i1.dtype.kind == "i" and sep.dtype == float


def test_bad_radius_and_non_finite_positions():
    assert match_one_to_one([1.0], [1.0], [1.0], [1.0], -1.0)[0].size == 0
    assert match_one_to_one([1.0], [1.0], [1.0], [1.0], float("nan"))[0].size == 0
    i1, i2, _ = match_one_to_one([np.nan, 1.0], [1.0, 1.0], [1.0], [1.0], 1.0)
    assert i1.tolist() == [1] and i2.tolist() == [0]


def test_mutual_nearest_neighbours_against_brute_force():
    rng = np.random.default_rng(1)
    n1, n2 = 400, 300
    ra1 = (359.98 + rng.uniform(0, 0.04, n1)) % 360.0
    dec1 = rng.uniform(-0.02, 0.02, n1)
    ra2 = (359.98 + rng.uniform(0, 0.04, n2)) % 360.0
    dec2 = rng.uniform(-0.02, 0.02, n2)
    radius = 5.0
    i1, i2, sep = match_one_to_one(ra1, dec1, ra2, dec2, radius)
    dist = angular_separation_arcsec(ra1[:, None], dec1[:, None], ra2[None, :], dec2[None, :])
    nn12 = dist.argmin(axis=1)
    nn21 = dist.argmin(axis=0)
    expect = [(i, int(nn12[i])) for i in range(n1)
              if nn21[nn12[i]] == i and dist[i, nn12[i]] <= radius]
    assert list(zip(i1.tolist(), i2.tolist(), strict=True)) == expect
    assert len(set(i2.tolist())) == i2.size
    np.testing.assert_allclose(sep, dist[i1, i2])


def test_separation_agrees_with_astropy():
    rng = np.random.default_rng(2)
    ra1, dec1 = rng.uniform(0, 360, 50), rng.uniform(-89, 89, 50)
    ra2 = (ra1 + rng.normal(0, 0.01, 50)) % 360
    dec2 = np.clip(dec1 + rng.normal(0, 0.01, 50), -90, 90)
    ours = angular_separation_arcsec(ra1, dec1, ra2, dec2)
    ref = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).arcsec
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
