"""The error budget and the limits, by injection: pulls of unit width, limits at the true depth."""
from __future__ import annotations

import math

import numpy as np
import pytest

from services.calibration.science.calibrate import CalibrationResult, calibrate
from services.calibration.science.limit import limiting_magnitude
from services.calibration.science.simulate import FieldSpec, simulate


def run(sim, **kw) -> CalibrationResult:
    return calibrate(sim.stars, sim.references, target_ra_deg=sim.target_ra_deg,
                     target_dec_deg=sim.target_dec_deg, declared_filter=sim.declared_filter_argument, **kw)


def spec(i: int, **over) -> FieldSpec:
    """Varied, seeded observations: size, band, colour term, outliers, scatter, target S/N."""
    rng = np.random.default_rng([77, i])
    kw = dict(seed=int(rng.integers(2**31)), n_catalogue=int(10 ** rng.uniform(1.6, 3.0)),
              band=str(rng.choice(["r", "V", "g", "i", "B"])), colour_term=float(rng.uniform(-0.12, 0.12)),
              outlier_fraction=float(rng.uniform(0.0, 0.3)), intrinsic_scatter_mag=float(rng.uniform(0.0, 0.04)),
              target_snr=float(10 ** rng.uniform(1.0, 3.0)), jitter_arcsec=float(rng.uniform(0.1, 0.8)),
              depth_mag=float(rng.uniform(17.5, 20.5)), cut_snr=float(rng.uniform(3.0, 8.0)))
    kw["declared_filter"] = kw["band"]
    kw.update(over)
    return FieldSpec(**kw)


@pytest.fixture(scope="module")
def pulls():
    out = []
    for i in range(50):
        sim = simulate(spec(i))
        res = run(sim)
        if res.status != "calibrated":
            continue
        truth = sim.truth.target_mags[res.band]
        budget = math.sqrt(res.mag_err**2 + res.small_sample_factor**2 * (res.zp_err**2 + res.calib_err**2)
                           + (res.colour_err or 0.0) ** 2)
        assert res.total_err == pytest.approx(budget)
        out.append((res.mag - truth) / res.total_err)
    return np.array(out)


def test_target_pulls_have_unit_width(pulls):
    print(f"{pulls.size} targets: pull mean {pulls.mean():+.3f}, sd {pulls.std(ddof=1):.3f}")
    assert pulls.size >= 35
    assert 0.8 < pulls.std(ddof=1) < 1.25
    assert abs(pulls.mean()) < 0.3


def test_instrumental_error_alone_is_too_small():
    # the original's mag_err leaves out the zero point and the scatter: at high S/N it is far too small
    sim = simulate(spec(3, target_snr=800.0, intrinsic_scatter_mag=0.03))
    res = run(sim)
    assert res.status == "calibrated"
    assert res.mag_err < 0.005 < 0.02 < res.total_err


@pytest.mark.parametrize("cut_snr", [3.0, 5.0, 10.0])
def test_limit_is_the_true_detection_threshold(cut_snr):
    resid = []
    for seed in range(4):
        sim = simulate(spec(100 + seed, target_snr=None, cut_snr=cut_snr, n_catalogue=600, colour_term=0.0))
        res = run(sim)
        assert res.status == "limit" and res.is_limit and res.mag_err is None and res.limit_err > 0
        assert res.limit_sigma == pytest.approx(max(5.0, cut_snr), rel=0.1)
        resid.append(res.mag - sim.truth.depth_in(res.band))
    print(f"cut S/N {cut_snr:g}: limit - true threshold {np.round(resid, 3)}")
    assert np.all(np.abs(resid) < 0.15)


def test_faintest_star_would_have_been_wrong():
    # a catalogue cut at S/N 3: the original's "faintest star" limit is ~0.5 mag too deep
    sim = simulate(spec(200, target_snr=None, cut_snr=3.0, n_catalogue=800, colour_term=0.0))
    res = run(sim)
    faintest = float(np.max(sim.stars.mag)) - res.zeropoint
    depth = sim.truth.depth_in(res.band)
    assert abs(res.mag - depth) < 0.15 < faintest - depth


def test_limit_sigma_is_configurable():
    from services.calibration.science.calibrate import CalibrationParams

    sim = simulate(spec(201, target_snr=None, cut_snr=2.0, n_catalogue=800, colour_term=0.0))
    five, three = run(sim), run(sim, params=CalibrationParams(limit_sigma=3.0))
    assert three.limit_sigma == 3.0 and five.limit_sigma == 5.0
    assert three.mag - five.mag == pytest.approx(2.5 * math.log10(5.0 / 3.0), abs=0.1)


def test_limit_uncertainty_from_the_relation():
    rng = np.random.default_rng(5)
    mag = rng.uniform(12.0, 20.0, 400)
    err = 0.2171 * 10 ** (0.4 * (mag - 19.5)) * np.exp(rng.normal(0, 0.05, 400))
    lim = limiting_magnitude(mag, err)
    assert lim.mag == pytest.approx(19.5, abs=0.03) and 0 < lim.mag_err < 0.03 and lim.sigma == 5.0
