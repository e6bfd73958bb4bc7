"""The plausibility checks ingest makes before storing anything, and RA - 360 catalogues."""
from datetime import UTC, datetime

import numpy as np
import pytest

from services.ingest.checks import header_mid_mjd, image_outside_event, implausible_mjd
from shared.catalogue import read_catalogue

NOW_MJD = 61375.0
EVENT = {"_id": "ivo://Gaia26xyz", "ra_deg": 150.1, "dec_deg": 2.2,
         "published": datetime(2026, 11, 1, tzinfo=UTC)}  # MJD 61345


@pytest.mark.parametrize("mjd", [61365.1, 61375.9, 61345.0 - 19 * 365.25, 57500.0])
def test_plausible_times_pass(mjd):
    assert implausible_mjd(mjd, EVENT, now=NOW_MJD) is None


@pytest.mark.parametrize(("mjd", "words"), [
    (2461365.6, "MJD = JD - 2400000.5 = 61365.10000"), (0.0, "not a time"), (-1.0, "not a time"),
    (61377.0, "2.0 days in the future"), (61345.0 - 21 * 365.25, "21 years before event ivo://Gaia26xyz"),
])
def test_implausible_times_are_refused_with_the_reason(mjd, words):
    assert words in implausible_mjd(mjd, EVENT, now=NOW_MJD)


def test_an_event_stored_time_read_back_as_a_string_still_counts():
    event = {**EVENT, "published": "2026-11-01T00:00:00"}
    assert "years before" in implausible_mjd(40000.0, event, now=NOW_MJD)


def test_header_times_become_mid_exposure():
    assert header_mid_mjd({"MJD-OBS": 61000.0}, 864.0) == (61000.005, "header MJD-OBS (start) + exposure/2")
    assert header_mid_mjd({"MJD-OBS": 61000.0, "MJD-MID": 61000.3}, 864.0)[0] == 61000.3
    assert header_mid_mjd({"MJD-OBS": 61000.0}, None) == (61000.0, "header MJD-OBS (start; exposure time unknown)")
    assert header_mid_mjd({}, 10.0) == (None, "")


def test_an_image_pointing_far_beyond_any_frame_of_its_size_is_refused():
    record = {"wcs_centre_ra_deg": 152.0, "wcs_centre_dec_deg": 2.2, "pixel_scale_arcsec": 0.4, "naxis": [2048, 2048]}
    assert image_outside_event(record, EVENT) is None  # 1.9 deg: a binned frame could still hold it
    far = {**record, "wcs_centre_ra_deg": 220.0}
    text = image_outside_event(far, EVENT)
    assert "69.8 deg away" in text and "RA 220.0000" in text and "RA 150.1000" in text
    assert image_outside_event({"pixel_scale_arcsec": 0.4}, EVENT) is None  # nothing to judge by


def _catalogue(ra_deg: np.ndarray, dec_deg: np.ndarray) -> bytes:
    head = ("#   1 NUMBER\n#   2 MAG_AUTO\n#   3 MAGERR_AUTO\n#   4 ALPHA_J2000\n#   5 DELTA_J2000\n")
    rows = [f"{i + 1} {-10 + 0.1 * i:.3f} 0.02 {r:.7f} {d:.7f}"
            for i, (r, d) in enumerate(zip(ra_deg, dec_deg, strict=True))]
    return (head + "\n".join(rows) + "\n").encode()


def test_ra_minus_360_is_normalised_and_other_out_of_range_rows_still_dropped():
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(210.4, 210.6, 12), rng.uniform(-12.4, -12.2, 12)
    normal = read_catalogue(_catalogue(ra, dec))
    wrapped_ra = ra - 360.0
    wrapped_ra[0], wrapped_ra[1] = -200.0, 400.0  # beyond [-180, 360]: dropped as before
    wrapped = read_catalogue(_catalogue(wrapped_ra, dec))
    np.testing.assert_allclose(wrapped.ra_deg, normal.ra_deg[2:], atol=1e-7)
    assert wrapped.n_ra_wrapped == 10 and wrapped.n_dropped == {"position out of range": 2}
    assert normal.n_ra_wrapped == 0
