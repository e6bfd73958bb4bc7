"""The pieces of the list and form pages that need no server: coordinates as typed, paging, sorting."""
from __future__ import annotations

import pytest

from services.ingest.errors import InvalidInput
from services.ingest.pages import decimal_degrees
from services.ingest.web.lists import Listing, check_page, observatory_page_rows
from services.ingest.web.observatory_page import zeropoint_series


@pytest.mark.parametrize(("ra", "dec"), [("295.00479", "30.13148"), ("19:40:01.15", "+30:07:53.3"),
                                         ("19h40m01.15s", "30d07m53.3s"), ("19 40 01.15", "+30 07 53.3")])
def test_coordinates_in_degrees_or_sexagesimal(ra, dec):
    ra_deg, dec_deg = decimal_degrees(ra, dec)
    assert ra_deg == pytest.approx(295.00479, abs=1e-4) and dec_deg == pytest.approx(30.13147, abs=1e-4)


@pytest.mark.parametrize(("ra", "dec"), [("", "30"), ("nineteen", "+30"), ("19:40:01", "north")])
def test_unreadable_coordinates_say_why(ra, dec):
    with pytest.raises(InvalidInput):
        decimal_degrees(ra, dec)


def test_observatories_are_searched_sorted_and_paged():
    rows = [{"id": i, "name": f"Obs {i}", "observations": i % 4} for i in range(1, 46)]
    listing = Listing(page=3, q="", sort="date", order="desc")
    total, page = observatory_page_rows(rows, listing)
    assert total == 45 and [r["id"] for r in page] == [5, 4, 3, 2, 1]
    total, page = observatory_page_rows(rows, Listing(page=1, q="obs 1", sort="points", order="desc"))
    assert total == 11 and [r["id"] for r in page[:3]] == [19, 15, 11]  # 3 observations, newest first
    check_page(listing, 45)
    with pytest.raises(Exception, match="there is no page 3: the list has 1 page"):
        check_page(listing, 20)


def test_zero_points_are_grouped_per_band_and_catalogue():
    points = [{"id": 1, "mjd": 61000.1, "filter": "r", "survey": "PS1", "zp": 25.01, "zp_err": 0.01},
              {"id": 2, "mjd": 61001.1, "filter": "V", "survey": "APASS", "zp": 24.5, "zp_err": None},
              {"id": 3, "mjd": 61002.1, "filter": "r", "survey": "PS1", "zp": 25.03, "zp_err": 0.02}]
    series = zeropoint_series(points)
    assert [s["name"] for s in series] == ["V (APASS)", "r (PS1)"]
    assert series[1]["zp"] == [25.01, 25.03] and series[1]["id"] == [1, 3]
    assert (series[0]["colour"], series[1]["colour"]) == ("#9acd32", "#d62728")  # the light curves' V and r
