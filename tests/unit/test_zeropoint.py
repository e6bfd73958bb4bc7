"""Zero-point mixture fit: injection-recovery with known truth, and degenerate input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from services.calibration.science.zeropoint import ZeropointFit, fit_zeropoint

ZP_TRUE = 25.0


def simulate(seed: int, n: int = 200, f_out: float = 0.2, scatter: float = 0.02):
    """200 stars, errors 0.01-0.1, intrinsic scatter 0.02, outliers displaced by +-(0.3-3) mag."""
    rng = np.random.default_rng(seed)
    err = rng.uniform(0.01, 0.1, n)
    diff = ZP_TRUE + rng.normal(0.0, np.sqrt(scatter**2 + err**2))
    is_out = rng.random(n) < f_out
    k = int(is_out.sum())
    diff[is_out] += rng.choice([-1.0, 1.0], k) * rng.uniform(0.3, 3.0, k)
    return diff, err, is_out


def assert_clean(fit: ZeropointFit) -> None:
    for name in ("zeropoint", "zeropoint_err", "scatter", "outlier_fraction", "outlier_scale_mag",
                 "neg_log_likelihood"):
        value = getattr(fit, name)
        assert value is None or math.isfinite(value), name
    assert np.all(np.isfinite(fit.outlier_prob))
    assert fit.outlier.dtype == bool
    if not fit.ok:
        assert isinstance(fit.reason, str) and fit.reason


@pytest.fixture(scope="module")
def injection():
    rows = []
    for seed in range(200):
        diff, err, is_out = simulate(seed)
        fit = fit_zeropoint(diff, err)
        assert fit.ok, fit.reason
        assert_clean(fit)
        rows.append((fit.zeropoint - ZP_TRUE, fit.zeropoint_err, fit.outlier_fraction - is_out.mean(),
                     fit.scatter, fit.n_outliers - int(is_out.sum())))
    return np.array(rows)


def test_injection_bias(injection):
    bias = injection[:, 0].mean()
    print(f"mean bias {bias:+.5f} mag, rms {injection[:, 0].std():.5f}")
    assert abs(bias) < 0.01
    # far tighter in practice: the mean of 200 fits with errors ~0.0035 mag
    assert abs(bias) < 5 * injection[:, 1].mean() / np.sqrt(len(injection))


def test_injection_pulls_have_unit_width(injection):
    pull = injection[:, 0] / injection[:, 1]
    print(f"pull mean {pull.mean():+.3f}, std {pull.std(ddof=1):.3f}")
    assert 0.8 <= pull.std(ddof=1) <= 1.25
    assert abs(pull.mean()) < 0.25


def test_injection_outlier_fraction_recovered(injection):
    df = injection[:, 2]
    print(f"outlier fraction - truth: mean {df.mean():+.4f}, max |.| {np.abs(df).max():.4f}")
    assert np.all(np.abs(df) < 0.07)


def test_injection_scatter_recovered(injection):
    assert abs(np.median(injection[:, 3]) - 0.02) < 0.006


def test_no_outliers_matches_weighted_mean():
    rng = np.random.default_rng(7)
    err = rng.uniform(0.01, 0.05, 300)
    diff = 3.0 + rng.normal(0.0, err)
    fit = fit_zeropoint(diff, err)
    w = 1.0 / err**2
    wmean = np.sum(w * diff) / np.sum(w)
    assert fit.ok
    assert abs(fit.zeropoint - wmean) < 0.2 * fit.zeropoint_err
    assert fit.zeropoint_err == pytest.approx(1.0 / np.sqrt(w.sum()), rel=0.1)
    assert fit.outlier_fraction < 0.02
    assert fit.scatter < 0.01


def test_outlier_flags_mark_displaced_stars():
    diff, err, is_out = simulate(11)
    fit = fit_zeropoint(diff, err)
    far = is_out & (np.abs(diff - ZP_TRUE) > 0.6)
    assert np.all(fit.outlier[far])
    assert np.mean(fit.outlier[~is_out]) < 0.02
    assert fit.npoints == diff.size
    assert fit.n_outliers == int(fit.outlier.sum())


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_points(n):
    fit = fit_zeropoint(np.full(n, 1.5) + np.arange(n) * 0.01, np.full(n, 0.05))
    assert not fit.ok
    assert fit.npoints == n
    assert_clean(fit)
    if n == 0:
        assert fit.zeropoint is None
    else:
        assert fit.zeropoint == pytest.approx(1.5 + 0.005 * (n - 1))


def test_identical_differences():
    fit = fit_zeropoint(np.full(10, 2.0), np.full(10, 0.02))
    assert not fit.ok and "identical" in fit.reason
    assert fit.zeropoint == 2.0
    assert_clean(fit)
    fit0 = fit_zeropoint(np.full(10, 2.0), np.zeros(10))
    assert not fit0.ok
    assert_clean(fit0)


def test_mostly_tied_values_still_fit():
    diff = np.array([1.0] * 8 + [1.02, 0.97, 1.05, 4.0])
    fit = fit_zeropoint(diff, np.full(diff.size, 0.02))
    assert fit.ok
    assert_clean(fit)
    assert abs(fit.zeropoint - 1.0) < 0.02
    assert fit.outlier[-1]


def test_one_huge_outlier():
    rng = np.random.default_rng(3)
    err = np.full(30, 0.03)
    diff = 5.0 + rng.normal(0.0, 0.03, 30)
    diff[4] = 78.0 + 60000.0
    err[4] = 60000.0
    diff[9] = -1e6
    fit = fit_zeropoint(diff, err)
    assert fit.ok
    assert_clean(fit)
    assert abs(fit.zeropoint - 5.0) < 0.03
    assert fit.outlier[9]
    assert fit.scatter < 0.05


def test_non_finite_rows_ignored_and_zero_errors():
    rng = np.random.default_rng(5)
    diff = 1.0 + rng.normal(0.0, 0.05, 20)
    err = np.zeros(20)
    diff[0] = np.nan
    err[1] = np.inf
    err[2] = -0.1
    fit = fit_zeropoint(diff, err)
    assert fit.ok
    assert_clean(fit)
    assert fit.npoints == 17
    assert not fit.used[:3].any() and fit.outlier.size == 20
    assert fit.scatter == pytest.approx(0.05, rel=0.4)


def test_deterministic():
    diff, err, _ = simulate(42)
    a = fit_zeropoint(diff, err)
    b = fit_zeropoint(diff.copy(), err.copy())
    assert (a.zeropoint, a.zeropoint_err, a.scatter, a.outlier_fraction) == (
        b.zeropoint, b.zeropoint_err, b.scatter, b.outlier_fraction)


def test_all_outliers_like_data_does_not_crash():
    rng = np.random.default_rng(9)
    diff = rng.uniform(-3, 3, 40)
    fit = fit_zeropoint(diff, np.full(40, 0.01))
    assert_clean(fit)
