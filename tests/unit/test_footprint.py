"""Footprints of catalogues and frames, and the distance of a position outside them (known geometry)."""
import numpy as np
import pytest

from shared.footprint import catalogue_footprint, describe_angle, separation_deg


def _square(ra0, dec0, half_deg, n=400, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-half_deg, half_deg, (2, n))
    x[:4], y[:4] = [-half_deg, half_deg, half_deg, -half_deg], [-half_deg, -half_deg, half_deg, half_deg]
    return ra0 + x / np.cos(np.radians(dec0)), dec0 + y


def test_inside_is_zero_and_outside_is_the_distance_to_the_edge():
    ra, dec = _square(150.0, 2.0, 0.1)
    fp = catalogue_footprint(ra, dec)
    assert fp.outside_arcsec(150.0, 2.0) == 0.0
    assert fp.outside_arcsec(150.05, 2.09) == 0.0
    # 30 arcsec north of the north edge
    assert fp.outside_arcsec(150.0, 2.1 + 30 / 3600) == pytest.approx(30.0, rel=0.01)
    assert 0.1 * np.sqrt(2) <= fp.radius_deg < 0.16  # about the mean direction of random stars


def test_far_positions_give_the_angular_distance_not_a_projected_one():
    ra, dec = _square(219.8, -9.8, 0.1)
    fp = catalogue_footprint(ra, dec)
    sep = separation_deg(fp.centre_ra_deg, fp.centre_dec_deg, 150.1, 2.2)
    assert 69 < sep < 72
    assert fp.outside_arcsec(150.1, 2.2) / 3600 == pytest.approx(sep - fp.radius_deg, abs=1e-6)
    assert fp.outside_arcsec(39.8, 9.8) / 3600 == pytest.approx(180 - fp.radius_deg, abs=0.01)  # antipode


def test_a_field_across_ra_zero_has_its_centre_there():
    ra, dec = _square(0.0, 30.0, 0.2)
    fp = catalogue_footprint(np.mod(ra, 360.0), dec)
    assert min(fp.centre_ra_deg, 360 - fp.centre_ra_deg) < 0.03
    assert fp.outside_arcsec(359.95, 30.0) == 0.0 and fp.outside_arcsec(0.05, 30.1) == 0.0


def test_a_few_collinear_stars_are_judged_by_the_nearest():
    fp = catalogue_footprint(np.array([10.0, 10.001, 10.002]), np.array([5.0, 5.0, 5.0]))
    assert fp.outside_arcsec(10.001, 5.0) == 0.0 or fp.outside_arcsec(10.001, 5.0) < 1e-6
    assert fp.outside_arcsec(10.001, 5.0 + 10 / 3600) == pytest.approx(10.0, rel=0.01)


@pytest.mark.parametrize(("deg", "text"), [(70.24, "70.2 deg"), (0.2, "12.0 arcmin"), (0.001, "3.6 arcsec")])
def test_angles_are_said_in_a_readable_unit(deg, text):
    assert describe_angle(deg) == text


def test_the_hull_s_distinct_rows_are_numpy_s_unique_rows():
    from shared.footprint import _unique_rows
    rng = np.random.default_rng(11)
    xy = np.round(rng.normal(0, 1e-3, (3000, 2)), 6)
    xy = np.concatenate([xy, xy[:500], xy[:10] * [1, 0]])  # repeated rows, and rows sharing an x
    assert np.array_equal(_unique_rows(xy), np.unique(xy, axis=0))
    assert np.array_equal(_unique_rows(xy[:1]), xy[:1]) and _unique_rows(xy[:0]).shape == (0, 2)
