"""The light curve's files for people: every column with its unit and description, read back by astropy;
BHTOM's semicolon format; file names after the event; one colour per band."""
from __future__ import annotations

import io

import pytest
from astropy.table import Table

from services.lightcurve.http import file_stem
from services.lightcurve.views import TABLE_COLUMNS, all_rows, bhtom_text, csv_text, ecsv_text, votable_bytes
from shared.bands import BAND_COLOURS, band_colour

IVORN = "ivo://Gaia16aye"


def followup(fid: int, mjd: float, *, limit: bool = False, band: str = "r") -> dict:
    return {"_id": fid, "observation_id": f"obs{fid}", "event_ivorn": IVORN, "observatory_id": 3,
            "observatory": "Demo; 0.6 m", "mjd": mjd, "mag": 17.25 + fid / 100, "mag_err": None if limit else 0.021,
            "calib_err": 0.031, "zp_err": 0.004, "total_err": None if limit else 0.038, "is_limit": limit,
            "limit_sigma": 5.0 if limit else None, "filter": band, "survey": "APASS", "mode": "AUTO",
            "algorithm_version": "2026.11.1"}


ALERT = {"_id": "ivo://gaia#1|G|57403.327080", "mjd": 57403.32708, "mag": 17.32, "mag_err": 0.05, "is_limit": False,
         "filter": "G", "survey": "Gaia"}
ROWS = all_rows([followup(42, 57610.967969), followup(43, 57611.5, limit=True, band="g")], [ALERT])


@pytest.mark.parametrize("reader", ["ecsv", "csv", "votable"])
def test_every_column_reads_back_with_its_unit_and_description(reader):
    if reader == "votable":
        table = Table.read(io.BytesIO(votable_bytes(ROWS, ivorn=IVORN)), format="votable")
    else:
        text = ecsv_text(ROWS, ivorn=IVORN, delimiter="," if reader == "csv" else " ")
        table = Table.read(text, format="ascii")  # the CSV's commented header is ECSV's: units come back
        if reader == "csv":
            assert text.splitlines()[-1].startswith("43,57611.5,") and "# %ECSV" in text
    assert table.colnames == [name for name, _, _ in TABLE_COLUMNS]
    for name, unit, description in TABLE_COLUMNS:
        assert (str(table[name].unit) if table[name].unit else None) == unit, name
        assert " ".join(table[name].description.split()) == description, name  # (VOTable wraps lines)
    assert [str(v) for v in table["id"]] == [ALERT["_id"], "42", "43"]
    assert str(table["utc"][1]).startswith("2016-08-10T23:13:52")  # MJD 57610.967969
    assert table["mag_err"].mask[2] and not table["mag_err"].mask[1]  # a limit has no mag_err
    assert list(table["is_limit"]) == [False, False, True]
    assert table["observatory_id"].mask[0] and table["observatory_id"][1] == 3


def test_the_csv_for_scripts_keeps_its_columns():
    lines = csv_text([followup(42, 57610.967969)]).splitlines()
    assert lines[0] == ("id,mjd,mag,mag_err,calib_err,zp_err,total_err,is_limit,limit_sigma,filter,survey,"
                        "observatory,observatory_id,mode,algorithm_version,kind") and len(lines) == 2


def test_bhtom_has_its_header_detections_only_and_no_stray_separator():
    lines = bhtom_text(ROWS).splitlines()
    assert lines[0] == "MJD;Magnitude;Error;Facility;Filter;Observer"
    assert lines[1] == "57403.327080;17.3200;0.0500;Gaia;Gaia/G;Gaia"
    assert lines[2] == "57610.967969;17.6700;0.0380;Demo, 0.6 m;APASS/r;Demo, 0.6 m"
    assert len(lines) == 3  # the limit (43) has no place in the format


def test_file_names_follow_the_event_and_stay_plain():
    assert file_stem({"_id": "ivo://Gaia16aye", "name": None, "alert_id": 7}) == "Gaia16aye"
    assert file_stem({"_id": "ivo://<script>alert(1)</script>", "alert_id": 8}) == "script_alert_1_script"
    assert file_stem({"_id": "ivo://\"';", "alert_id": 9}) == "event9"


def test_each_band_has_one_fixed_colour():
    assert (band_colour("g"), band_colour("r"), band_colour("i")) == ("#1b9e3e", "#d62728", "#8b0000")
    assert band_colour("V") == BAND_COLOURS["V"] != band_colour("B")
    assert band_colour("Hα-narrow") == band_colour("Hα-narrow")  # unknown bands: stable
