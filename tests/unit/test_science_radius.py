"""The automatic matching radius: recovery of a known astrometric jitter and offset."""
from __future__ import annotations

import math

import numpy as np
import pytest

from services.calibration.science.calibrate import CalibrationParams, calibrate
from services.calibration.science.match_radius import estimate_match_radius, fit_offsets, sky_offsets_arcsec
from services.calibration.science.simulate import FieldSpec, simulate

AS = 1.0 / 3600.0


def field(seed: int, *, jitter: float, offset=(0.4, -0.3), n_ref: int = 1500, n_cat: int = 600,
          n_chance: int = 800, dec0: float = 60.0, ra0: float = 359.99):
    """Reference stars; a catalogue of n_cat of them jittered and offset, plus unrelated stars."""
    rng = np.random.default_rng(seed)
    cos_d = math.cos(math.radians(dec0))
    r_ra = (ra0 + rng.uniform(-0.1, 0.1, n_ref) / cos_d) % 360.0
    r_dec = dec0 + rng.uniform(-0.1, 0.1, n_ref)
    c_ra = (r_ra[:n_cat] + (offset[0] + rng.normal(0, jitter, n_cat)) * AS / cos_d) % 360.0
    c_dec = r_dec[:n_cat] + (offset[1] + rng.normal(0, jitter, n_cat)) * AS
    f_ra = (ra0 + rng.uniform(-0.1, 0.1, n_chance) / cos_d) % 360.0
    f_dec = dec0 + rng.uniform(-0.1, 0.1, n_chance)
    return np.r_[c_ra, f_ra], np.r_[c_dec, f_dec], r_ra, r_dec


def test_offsets_east_north_across_ra_zero():
    dx, dy = sky_offsets_arcsec([0.0001], [45.0], [359.9999], [45.0])
    assert dx[0] == pytest.approx(0.72 * math.cos(math.radians(45.0)), rel=1e-4)
    assert dy[0] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("jitter", [0.1, 0.3, 0.8])
def test_jitter_and_offset_recovered(jitter):
    sig = []
    for seed in range(5):
        ra, dec, r_ra, r_dec = field(seed, jitter=jitter)
        est = estimate_match_radius(ra, dec, r_ra, r_dec, reference="Gaia")
        assert est.method == "auto" and est.reference == "Gaia"
        assert est.offset_x_arcsec == pytest.approx(0.4, abs=0.05 + 0.1 * jitter)
        assert est.offset_y_arcsec == pytest.approx(-0.3, abs=0.05 + 0.1 * jitter)
        sig.append(est.sigma_arcsec)
        expected = min(max(math.hypot(est.offset_x_arcsec, est.offset_y_arcsec) + 3 * est.sigma_arcsec, 0.5), 5.0)
        assert est.radius_arcsec == pytest.approx(expected)
    assert np.mean(sig) == pytest.approx(jitter, rel=0.06)


def test_radius_bounded():
    ra, dec, r_ra, r_dec = field(1, jitter=0.02, offset=(0.0, 0.0))
    assert estimate_match_radius(ra, dec, r_ra, r_dec).radius_arcsec == 0.5
    ra, dec, r_ra, r_dec = field(2, jitter=2.0, offset=(0.5, 0.5), n_chance=0, n_ref=600)
    assert estimate_match_radius(ra, dec, r_ra, r_dec).radius_arcsec == 5.0


def test_too_few_pairs_or_only_chance_pairs_give_the_default():
    ra, dec, r_ra, r_dec = field(3, jitter=0.3, n_cat=4, n_chance=0, n_ref=50)
    est = estimate_match_radius(ra, dec, r_ra, r_dec, default_radius_arcsec=2.0)
    assert est.method == "default" and est.radius_arcsec == 2.0 and "only 4 pairs" in est.reason
    rng = np.random.default_rng(4)
    uniform = np.sqrt(rng.random(300)) * 5.0
    angle = rng.uniform(0, 2 * np.pi, 300)
    fit = fit_offsets(uniform * np.cos(angle), uniform * np.sin(angle), 5.0)
    assert not fit.ok


def run(sim, **kw):
    return calibrate(sim.stars, sim.references, target_ra_deg=sim.target_ra_deg,
                     target_dec_deg=sim.target_dec_deg, declared_filter=sim.declared_filter_argument, **kw)


@pytest.mark.parametrize("jitter", [0.15, 0.6])
def test_calibration_uses_the_automatic_radius(jitter):
    sim = simulate(FieldSpec(seed=21, jitter_arcsec=jitter, offset_arcsec=(0.3, 0.0), n_catalogue=400,
                             target_snr=100.0))
    res = run(sim)
    assert res.match_radius_method == "auto" and res.match_radius_detail["reference"] == "GaiaDR3"
    # the bright stars' centroids add little to the jitter: 3 sigma plus the offset
    assert res.match_radius_arcsec == pytest.approx(0.3 + 3 * jitter, abs=0.15 + 0.3 * jitter)
    assert set(res.survey_match_radius_arcsec) == {"APASS", "GaiaDR3"}
    assert res.status == "calibrated" and res.target_sep_arcsec <= res.match_radius_arcsec


def test_user_radius_wins_and_without_gaia_the_calibrating_survey_is_used():
    sim = simulate(FieldSpec(seed=22, jitter_arcsec=0.3, n_catalogue=400, with_gaia=False, apass_depth_mag=18.0))
    res = run(sim, match_radius_arcsec=1.7)
    assert res.match_radius_method == "user" and res.match_radius_arcsec == 1.7
    assert res.survey_match_radius_arcsec == {"APASS": 1.7}
    auto = run(sim, match_radius_arcsec=None)
    assert auto.match_radius_method == "auto" and auto.match_radius_detail["reference"] == "APASS"
    assert run(sim, match_radius_arcsec=0).match_radius_method == "auto"  # not a radius: automatic


def test_default_radius_when_nothing_matches():
    sim = simulate(FieldSpec(seed=23, n_catalogue=100))
    shifted = [type(r)(r.survey, r.version, r.ra_deg + 1.0, r.dec_deg, r.mags, r.mag_errs) for r in sim.references]
    res = calibrate(sim.stars, shifted, target_ra_deg=sim.target_ra_deg, target_dec_deg=sim.target_dec_deg,
                    params=CalibrationParams(default_match_radius_arcsec=1.5))
    assert res.match_radius_method == "default" and res.match_radius_arcsec == 1.5
    assert res.status == "failed" and res.reason == "no reference stars matched within 1.5 arcsec"
