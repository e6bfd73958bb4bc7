"""Calibration of a simulated field with known truth."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from services.calibration.science.bands import band_hint
from services.calibration.science.calibrate import (
    ALGORITHM_VERSION,
    CalibrationParams,
    CalibrationResult,
    calibrate,
    parse_force_filter,
)
from shared.catalogue.model import StarTable
from shared.refcat.model import ReferenceStars

RA0, DEC0 = 295.00479, 30.13148
ZP = -22.4  # inst = ref + ZP
TARGET_MAG = 18.0
MAG_LIMIT_5SIGMA = 20.0  # where the simulated catalogue error reaches 0.2171 mag
AS = 1.0 / 3600.0


def _err_model(m_true: np.ndarray) -> np.ndarray:
    return np.sqrt(0.004**2 + (0.2171 * 10 ** (0.4 * (m_true - MAG_LIMIT_5SIGMA))) ** 2)


def make_field(seed: int = 1, *, n_ref: int = 300, band: str = "r", target: bool = True,
               header_filter: str | None = "r", f_out: float = 0.1, shift_refs_deg: float = 0.0,
               with_gaia: bool = True):
    """A field with APASS-like B V g r i (from a colour) and an r-band catalogue (or another band)."""
    rng = np.random.default_rng(seed)
    cos_d = np.cos(np.deg2rad(DEC0))
    ra = RA0 + rng.uniform(-0.1, 0.1, n_ref) / cos_d
    dec = DEC0 + rng.uniform(-0.1, 0.1, n_ref)
    far = np.hypot((ra - RA0) * cos_d, dec - DEC0) > 20 * AS  # keep the target's surroundings clear
    ra, dec = ra[far], dec[far]
    n = ra.size
    r = rng.uniform(11.5, 16.5, n)
    c = rng.uniform(0.2, 1.5, n)  # g - r
    true = {"r": r, "g": r + c, "V": r + 0.5 * c, "B": r + 1.4 * c + 0.1, "i": r - 0.4 * c}
    mags, errs = {}, {}
    for b, m in true.items():
        e = np.clip(0.015 + 0.03 * 10 ** (0.4 * (m - 16.0)), 0, 0.5)
        obs = m + rng.normal(0, e)
        missing = rng.random(n) < 0.05
        obs[missing] = np.nan
        e = e.copy()
        e[missing] = np.nan
        mags[b], errs[b] = obs, e
    refs = [ReferenceStars("APASS", "DR9", ra + shift_refs_deg, dec, mags, errs)]
    if with_gaia:
        gm = r + 0.3 * c + rng.normal(0, 0.003, n)
        refs.append(ReferenceStars("GaiaDR2", "DR2", ra + shift_refs_deg, dec, {"G": gm}, {"G": np.full(n, 0.003)}))

    # catalogue: 90 % of the reference stars, plus fainter field stars without reference values
    det = rng.random(n) < 0.9
    m_cat = true[band][det]
    c_ra = ra[det] + rng.normal(0, 0.3 * AS, det.sum()) / cos_d
    c_dec = dec[det] + rng.normal(0, 0.3 * AS, det.sum())
    n_faint = 250
    m_faint = rng.uniform(16.5, 20.7, n_faint)
    f_ra = RA0 + rng.uniform(-0.1, 0.1, n_faint) / cos_d
    f_dec = DEC0 + rng.uniform(-0.1, 0.1, n_faint)
    keep = np.hypot((f_ra - RA0) * cos_d, f_dec - DEC0) > 20 * AS
    m_all = np.concatenate([m_cat, m_faint[keep]])
    ra_all = np.concatenate([c_ra, f_ra[keep]])
    dec_all = np.concatenate([c_dec, f_dec[keep]])
    if target:
        m_all = np.append(m_all, TARGET_MAG)
        ra_all = np.append(ra_all, RA0 + 0.2 * AS / cos_d)
        dec_all = np.append(dec_all, DEC0 - 0.1 * AS)
    e_all = _err_model(m_all)
    inst = m_all + ZP + rng.normal(0, e_all) + rng.normal(0, 0.02, m_all.size)
    if target:
        inst[-1] = TARGET_MAG + ZP + rng.normal(0, e_all[-1])
    out = rng.random(m_all.size) < f_out
    out[-1] = False
    inst[out] += rng.choice([-1, 1], out.sum()) * rng.uniform(0.3, 2.0, out.sum())
    header = {} if header_filter is None else {"FILTER": header_filter}
    stars = StarTable(ra_all, dec_all, inst, e_all, "ASCII_HEAD", "MAG_AUTO", int(m_all.size), {}, header)
    return stars, refs


def no_nan(obj) -> None:
    """Every float in a nested structure is finite (and the whole is strict JSON)."""
    json.dumps(obj, allow_nan=False)


def run(stars, refs, **kw) -> CalibrationResult:
    return calibrate(stars, refs, target_ra_deg=RA0, target_dec_deg=DEC0, **kw)


@pytest.fixture(scope="module")
def field():
    return make_field(1)


@pytest.fixture(scope="module")
def auto(field) -> CalibrationResult:
    return run(*field)


def test_recovers_target(auto):
    assert auto.status == "calibrated", auto.reason
    assert auto.mode == "AUTO" and not auto.is_limit
    assert abs(auto.mag - TARGET_MAG) < 2.5 * auto.total_err
    assert abs(auto.zeropoint - ZP) < 4 * auto.zeropoint_err
    # the documented budget: calibration terms times the few-stars (Student-t) factor, ~1 here
    t = auto.small_sample_factor
    assert 1.0 <= t < 1.01
    assert auto.total_err == pytest.approx(math.sqrt(auto.mag_err**2 + t**2 * (auto.zp_err**2 + auto.scatter**2)))
    assert auto.calib_err == auto.scatter and auto.zp_err == auto.zeropoint_err
    assert auto.target_sep_arcsec < 0.3
    assert auto.limit_sigma is None and auto.mag_err > 0
    no_nan(auto.to_dict())


def test_target_pulls_over_seeds():
    pulls = []
    for seed in range(100, 120):
        res = run(*make_field(seed, with_gaia=False))
        assert res.status == "calibrated" and res.band == "r"
        pulls.append((res.mag - TARGET_MAG) / res.total_err)
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 0.7
    assert 0.4 < pulls.std() < 1.6


def test_automatic_choice_is_r(field, auto):
    assert (auto.survey, auto.band, auto.filter) == ("APASS", "r", "APASS/r")
    stars, refs = field
    no_header = StarTable(stars.ra_deg, stars.dec_deg, stars.mag, stars.mag_err, "ASCII_HEAD", "MAG_AUTO",
                          stars.n_input, {}, {})
    assert run(no_header, refs).filter == "APASS/r"
    by_name = {f.filter: f for f in auto.fits}
    assert set(by_name) == {"APASS/B", "APASS/V", "APASS/g", "APASS/r", "APASS/i", "GaiaDR2/G"}
    assert by_name["APASS/r"].passed and by_name["APASS/r"].scatter == auto.scatter


@pytest.mark.parametrize("forced", ["APASS/r", "any/r", "APASS/any", "apass/r"])
def test_forced_filters_give_identical_numbers(field, auto, forced):
    res = run(*field, force_filter=forced)
    assert res.mode == "FORCED" and res.filter == "APASS/r"
    for name in ("zeropoint", "zeropoint_err", "scatter", "outlier_fraction", "npoints", "mag", "mag_err",
                 "total_err"):
        assert getattr(res, name) == getattr(auto, name), name
    assert res.fits == auto.fits  # cleaned and matched once, independently of the request
    assert res.matched == auto.matched


def test_forced_other_band_and_unknown_band(field, auto):
    res_v = run(*field, force_filter="APASS/V")
    assert res_v.filter == "APASS/V" and res_v.status == "calibrated"
    assert res_v.scatter > auto.scatter
    res_g = run(*field, force_filter="GaiaDR2/G")
    assert res_g.filter == "GaiaDR2/G"
    bad = run(*field, force_filter="APASS/z")
    assert bad.status == "failed" and "APASS/z" in bad.reason and "APASS/r" in bad.reason
    assert bad.mag is None
    no_nan(bad.to_dict())


def test_header_r_never_picks_b():
    # the catalogue is really B-like, so B has by far the smallest scatter, but the header says r
    stars, refs = make_field(2, band="B", header_filter="r")
    res = run(stars, refs)
    assert res.band != "B"
    assert res.status == "failed" or res.band in ("r", "R", "G")
    assert [f for f in res.fits if f.band == "B"][0].passed
    # without r and G among the references: fail rather than cross to B
    only_b = [ReferenceStars("APASS", "DR9", refs[0].ra_deg, refs[0].dec_deg,
                             {"B": refs[0].mags["B"], "U": refs[0].mags["B"] + 0.5},
                             {"B": refs[0].mag_errs["B"], "U": refs[0].mag_errs["B"]})]
    res2 = run(stars, only_b)
    assert res2.status == "failed"
    assert "declared filter" in res2.reason and res2.band is None
    no_nan(res2.to_dict())
    # forcing B is still possible
    assert run(stars, only_b, force_filter="APASS/B").band == "B"
    # with no declared filter the smallest scatter wins: B
    assert run(stars, refs, declared_filter="").band == "B"


def test_declared_filter_argument_overrides_header(field):
    stars, refs = field
    res = run(stars, refs, declared_filter="V")
    assert res.band in ("V", "g") and res.declared_filter == "V"


def test_target_absent_gives_limit():
    stars, refs = make_field(3, target=False)
    res = run(stars, refs)
    assert res.status == "limit" and res.is_limit
    assert res.mag_err is None and res.total_err is None
    assert res.limit_sigma == 5.0 and "relation" in res.limit_method
    calibrated = np.asarray(stars.mag) - res.zeropoint
    assert res.mag > np.percentile(calibrated, 90)
    assert abs(res.mag - MAG_LIMIT_5SIGMA) < 0.4
    assert res.target_sep_arcsec is None and res.ra_deg is None
    no_nan(res.to_dict())


def test_limit_falls_back_to_faintest_star():
    stars, refs = make_field(4, target=False)
    flat = StarTable(stars.ra_deg, stars.dec_deg, stars.mag, np.full(len(stars), 0.05), "FITS", "MAG", len(stars))
    res = run(flat, refs)
    assert res.status == "limit"
    assert res.limit_method.startswith("faintest star")
    assert res.mag == pytest.approx(np.max(flat.mag) - res.zeropoint)


def test_zero_matches_fail_without_nan():
    stars, refs = make_field(5, shift_refs_deg=1.0)
    res = run(stars, refs)
    assert res.status == "failed"
    assert res.reason == "no reference stars matched within 2.0 arcsec"
    assert res.mag is None and res.zeropoint is None and res.npoints == 0
    assert all(not f.passed and f.npoints == 0 for f in res.fits)
    no_nan(res.to_dict())
    assert run(stars, [], ).reason == "no reference catalogue covers the field"


def test_too_few_matches_reason():
    stars, refs = make_field(6, with_gaia=False)
    ref = refs[0]
    few = ReferenceStars("APASS", "DR9", ref.ra_deg[:3], ref.dec_deg[:3],
                         {"V": ref.mags["V"][:3] * 0 + 14.0}, {"V": np.full(3, 0.02)})
    res = run(stars, [few])
    assert res.status == "failed"
    assert res.reason.startswith("only ") and "APASS/V, need 5" in res.reason
    no_nan(res.to_dict())


def test_empty_catalogue():
    _, refs = make_field(7)
    empty = StarTable(np.empty(0), np.empty(0), np.empty(0), np.empty(0), "FITS", "MAG", 0)
    res = run(empty, refs)
    assert res.status == "failed" and res.n_catalogue_stars == 0
    no_nan(res.to_dict())


def test_two_objects_tied_for_target():
    stars, refs = make_field(8, target=False)
    ra = np.append(stars.ra_deg, [RA0, RA0])
    dec = np.append(stars.dec_deg, [DEC0 + 1.0 * AS, DEC0 - 1.0 * AS])
    mag = np.append(stars.mag, [-4.0, -4.0])
    err = np.append(stars.mag_err, [0.05, 0.05])
    tied = StarTable(ra, dec, mag, err, "FITS", "MAG", ra.size)
    # the user's radius (the automatic one, ~0.9" for this field's 0.3" jitter, would miss both)
    a = run(tied, refs, match_radius_arcsec=2.0)
    b = run(tied, refs, match_radius_arcsec=2.0)
    assert a.status == "calibrated" and a.to_dict() == b.to_dict()
    assert a.match_radius_method == "user"
    assert a.target_sep_arcsec == pytest.approx(1.0, abs=1e-6)
    # different magnitudes: the brighter wins, whatever the order
    mag2 = mag.copy()
    mag2[-1] = -5.0
    c = run(StarTable(ra, dec, mag2, err, "FITS", "MAG", ra.size), refs, match_radius_arcsec=2.0)
    assert c.ra_deg == pytest.approx(RA0) and c.dec_deg == pytest.approx(DEC0 - AS)


def test_outlier_rows_in_catalogue_are_cleaned(field):
    stars, refs = field
    ra = np.append(stars.ra_deg, refs[0].ra_deg[:3])
    dec = np.append(stars.dec_deg, refs[0].dec_deg[:3])
    mag = np.append(stars.mag, [78.0, 12.0, 13.0])
    err = np.append(stars.mag_err, [0.1, 60000.0, 1.5])
    res = run(StarTable(ra, dec, mag, err, "FITS", "MAG", ra.size, {}, {"FILTER": "r"}), refs)
    assert res.status == "calibrated" and res.n_catalogue_stars == len(stars)


def test_result_serialises_and_records_provenance(auto):
    d = auto.to_dict()
    no_nan(d)
    assert d["algorithm_version"] == ALGORITHM_VERSION
    assert d["params"] == CalibrationParams().to_dict() and d["params_hash"] == CalibrationParams().hash()
    assert d["refcat_versions"] == {"APASS": "DR9", "GaiaDR2": "DR2"}
    m = d["matched"]
    assert len(m["ref_mag"]) == len(m["inst_mag"]) == len(m["err_mag"]) == len(m["outlier"]) == auto.npoints
    assert all(isinstance(x, bool) for x in m["outlier"])
    assert {"survey", "band", "zeropoint", "zeropoint_err", "scatter", "outlier_fraction", "npoints", "passed",
            "reason"} <= set(d["fits"][0])
    s = auto.summary_dict()
    assert s["status"] == "calibrated" and s["filter"] == "APASS/r" and s["n_catalogue_stars"] > 0


def test_params_hash():
    p = CalibrationParams()
    assert len(p.hash()) == 16 and int(p.hash(), 16) >= 0
    assert p.hash() == CalibrationParams().hash()
    assert CalibrationParams(min_npoints=6).hash() != p.hash()
    with pytest.raises(ValidationError, match="frozen"):
        p.min_npoints = 3  # frozen


def test_parse_force_filter_and_band_hints():
    assert parse_force_filter("no") is None and parse_force_filter(None) is None
    assert parse_force_filter("APASS/V") == ("APASS", "V")
    assert parse_force_filter("any/r") == (None, "r")
    assert parse_force_filter("GaiaSP/any") == ("GaiaSP", None)
    assert band_hint("r").bands[:2] == ("r", "R")
    assert band_hint("SDSS-r'").key == "r'"
    assert "U" not in band_hint("rp").bands and "J" not in band_hint("Clear").bands
    assert band_hint("Ks").bands == ("K", "Ks")
    assert band_hint("Bessell B").bands == ("B", "g")
    assert band_hint(None) is None and band_hint("Halpha") is None
    assert band_hint("clear").tiers[0] == ("G", "r", "V")
