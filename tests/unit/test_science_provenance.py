"""What a calibration records (provenance, matched stars, page data) and the simulator behind the tests."""
from __future__ import annotations

import json

import numpy as np
import pytest

from services.calibration.science.calibrate import (
    ALGORITHM_VERSION,
    CalibrationParams,
    CalibrationResult,
    calibrate,
)
from services.calibration.science.plot import render_calibration_plot
from services.calibration.science.simulate import FieldSpec, simulate


@pytest.fixture(scope="module")
def sim():
    return simulate(FieldSpec(seed=51, band="V", declared_filter="V", colour_term=0.12, n_catalogue=500,
                              target_snr=100.0, n_junk_rows=2))


@pytest.fixture(scope="module")
def result(sim) -> CalibrationResult:
    return calibrate(sim.stars, sim.references, target_ra_deg=sim.target_ra_deg, target_dec_deg=sim.target_dec_deg)


def test_provenance_fields(result, sim):
    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["algorithm_version"] == ALGORITHM_VERSION
    assert d["params_hash"] == CalibrationParams().hash() and d["params"] == CalibrationParams().to_dict()
    assert d["refcat_versions"] == {"APASS": "SIM-DR9", "GaiaDR3": "SIM-DR3"}
    assert d["refcat_version"] == "SIM-DR9" and d["survey"] == "APASS"
    assert d["match_radius_method"] == "auto" and d["match_radius_detail"]["reference"] == "GaiaDR3"
    assert d["n_catalogue_stars"] == len(sim.stars) - 2  # the junk rows are cleaned away


def test_matched_stars_point_back_to_the_upload(result, sim):
    m = result.matched
    assert (m.survey, m.band) == (result.survey, result.band) and len(m.ref_mag) == result.npoints
    n = len(m.ref_mag)
    for name in ("inst_mag", "err_mag", "outlier", "cat_index", "ref_index", "ref_err", "inst_err", "colour",
                 "sep_arcsec", "ra_deg", "dec_deg"):
        assert len(getattr(m, name)) == n, name
    rows = np.array(m.cat_index)
    np.testing.assert_allclose(np.asarray(sim.stars.mag)[rows], m.inst_mag, atol=1e-5)
    np.testing.assert_allclose(np.asarray(sim.stars.ra_deg)[rows], m.ra_deg, atol=1e-7)
    ref = next(r for r in sim.references if r.survey == m.survey)
    np.testing.assert_allclose(np.asarray(ref.mags[m.band])[m.ref_index], m.ref_mag, atol=1e-5)
    assert max(m.sep_arcsec) <= result.survey_match_radius_arcsec[m.survey]
    assert sum(m.outlier) == result.fits[[f.filter for f in result.fits].index(result.filter)].n_outliers


def test_page_data_for_every_band(result):
    assert [(b.survey, b.band) for b in result.band_matches] == [(f.survey, f.band) for f in result.fits]
    for b, f in zip(result.band_matches, result.fits, strict=True):
        assert len(b.ref_mag) == len(b.inst_mag) == len(b.outlier) == len(b.cat_index) == f.npoints
        assert b.ra_deg == [] and b.sep_arcsec == []  # lean: positions are in `matched`
    chosen = result.fits[[f.filter for f in result.fits].index(result.filter)]
    assert chosen.colour == "B-V" and chosen.colour_slope == result.colour_slope and chosen.colour_note
    assert all(f.rank is None or f.rank >= 1 for f in result.fits)


def test_round_trip_and_older_documents(result):
    d = result.to_dict()
    again = CalibrationResult.from_dict(json.loads(json.dumps(d)))
    assert again.to_dict() == d
    old = {k: v for k, v in d.items() if k not in ("colour_slope", "band_matches", "match_radius_method",
                                                   "limit_err", "inferred_filter", "small_sample_factor")}
    old["fits"] = [{k: v for k, v in f.items() if k not in ("colour", "rank", "constant_zeropoint")} for f in d["fits"]]
    old["matched"] = {k: d["matched"][k] for k in ("survey", "band", "ref_mag", "inst_mag", "err_mag", "outlier")}
    revived = CalibrationResult.from_dict(old)
    assert revived.mag == result.mag and revived.band_matches == [] and revived.colour_slope is None
    assert render_calibration_plot(revived).startswith(b"\x89PNG")


def test_params_round_trip_and_hash():
    p = CalibrationParams(limit_sigma=3.0, astrometric_surveys=("GaiaDR3",))
    q = CalibrationParams.from_dict(json.loads(p.canonical_json()))
    assert q == p and q.hash() == p.hash() and q.hash() != CalibrationParams().hash()
    with pytest.raises(ValueError, match="unknown calibration parameters: bogus"):
        CalibrationParams.from_dict({"bogus": 1})


def test_simulator_is_seeded_and_exact():
    a = simulate(FieldSpec(seed=5, n_catalogue=37, target_snr=None))
    b = simulate(FieldSpec(seed=5, n_catalogue=37, target_snr=None))
    assert len(a.stars) == 37 and a.truth.n_catalogue == 37
    np.testing.assert_array_equal(a.stars.mag, b.stars.mag)
    c = simulate(FieldSpec(seed=6, n_catalogue=37, target_snr=50.0, declared_filter="r", declared_in_header=False))
    assert c.stars.header == {} and c.declared_filter_argument == "r"
    assert c.truth.target_present and c.truth.target_mags["r"] < c.truth.depth_mag
    assert c.truth.zeropoint_at(0.0) == c.truth.zeropoint_mag


def test_plot_shows_the_colour_term(result):
    png = render_calibration_plot(result, title="V with a colour term")
    assert png.startswith(b"\x89PNG") and len(png) > 5000
