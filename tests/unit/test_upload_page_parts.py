"""Parts of the upload pages without a server: which posts get the result page, the MJD of a UTC time,
positions for people, and the calibration plot's per-band panels."""
from __future__ import annotations

import io

import pytest
from aiohttp.test_utils import make_mocked_request
from matplotlib.image import imread

from services.calibration import work
from services.ingest.errors import InvalidInput
from services.ingest.web.results import sexagesimal, wants_page
from services.ingest.web.upload import mjd_from_form
from tests.unit.test_plot import _run, make_field

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(("accept", "fields", "page"), [
    (BROWSER, {}, True),
    (BROWSER, {"outputFormat": "html"}, True),
    (BROWSER, {"outputFormat": "json"}, False),  # asked for JSON: JSON, whatever the browser
    (BROWSER, {"outputFormat": " JSON "}, False),
    ("*/*", {}, False),  # curl
    ("*/*", {"outputFormat": "html"}, False),  # curl asking for the original's HTML keeps it
    ("", {}, False),
    ("application/json", {}, False),
    ("application/json, text/html;q=0.5", {}, False),
    ("text/html;q=0", {}, False),
    ("text/html;q=oops", {}, False),
])
def test_only_a_browser_gets_the_result_page(accept, fields, page):
    headers = {"Accept": accept} if accept else {}
    assert wants_page(make_mocked_request("POST", "/cgi/upload", headers=headers), fields) is page


def test_the_utc_time_is_converted_to_mjd():
    assert float(mjd_from_form({"time_kind": "utc", "utc": "2026-03-14T21:05:30"})) == pytest.approx(
        61113.878819444, abs=1e-8)
    assert float(mjd_from_form({"time_kind": "utc", "utc": "2026-03-14T21:05", "MJD": "1"})) == pytest.approx(
        61113.878472222, abs=1e-8)
    assert mjd_from_form({"time_kind": "mjd", "MJD": " 60000.5 ", "utc": "2026-03-14T21:05"}) == "60000.5"
    assert mjd_from_form({"utc": "2026-03-14T00:00:00"}) == repr(61113.0)  # only the UTC filled in
    assert mjd_from_form({}) == ""  # the catalogue header's then
    with pytest.raises(InvalidInput, match="UTC time must be a date and time"):
        mjd_from_form({"time_kind": "utc", "utc": "yesterday"})


def test_positions_are_also_given_in_sexagesimal():
    assert sexagesimal(150.1, 2.2) == "10:00:24.00 +02:12:00.0"
    assert sexagesimal(0.0, -0.5) == "00:00:00.00 -00:30:00.0"
    assert sexagesimal(None, 1.0) == ""


def test_the_stored_plot_has_a_panel_per_band_tried():
    result = _run(*make_field(1))
    assert len(result.band_matches) >= 2 and result.filter is not None
    plain = imread(io.BytesIO(work.render_calibration_plot(result)))
    png = work.draw_plot(result.to_dict(), "Gaia16aye  point 1")
    with_bands = imread(io.BytesIO(png))
    assert with_bands.shape[1] == plain.shape[1] and with_bands.shape[0] > plain.shape[0] * 1.5
    # the chosen band's panel is framed in orange (#ff7f0e), in the per-band row below the main panels
    lower = with_bands[plain.shape[0]:, :, :3]
    orange = ((abs(lower[..., 0] - 1.0) < 0.02) & (abs(lower[..., 1] - 0.498) < 0.03)
              & (abs(lower[..., 2] - 0.055) < 0.03))
    assert orange.sum() > 300
