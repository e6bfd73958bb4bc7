"""The mixture likelihood's analytic derivatives against finite differences of its value, the compiled
kernel against the array form, and the Newton optimiser built on them against a quasi-Newton one."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from services.calibration.science import _kernel
from services.calibration.science._mixture import LinearMixture, newton, profile_covariance


def _model(seed: int, with_colour: bool, prior: tuple[float, float] | None) -> LinearMixture:
    rng = np.random.default_rng(seed)
    n = 300
    e = rng.uniform(0.01, 0.2, n)
    colour = rng.normal(0.6, 0.3, n)
    d = -22.0 + 0.08 * colour + rng.normal(0.0, np.hypot(e, 0.03))
    d[:30] += rng.uniform(-2.0, 2.0, 30)  # outliers
    c0 = float(np.median(d))
    b = 0.5
    design = np.column_stack([np.ones(n), (colour - 0.6) / 0.3]) if with_colour else np.ones((n, 1))
    return LinearMixture(d, e, design, c0, 0.05, -np.log(2 * b) - np.abs(d - c0) / b, prior)


def _case(seed: int, with_colour: bool, prior: tuple[float, float] | None) -> tuple[LinearMixture, np.ndarray]:
    model = _model(seed, with_colour, prior)
    return model, _theta(seed, model.n_lin)


#: Every model of the tests: constant or with a colour term, with and without the soft floor on the scatter.
MODELS = pytest.mark.parametrize(("with_colour", "prior"), [(c, p) for c in (False, True) for p in (None, (0.05, 1.0))])


def _theta(seed: int, n_lin: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    return np.concatenate([rng.normal(0.0, 0.5, n_lin), [np.log(rng.uniform(0.005, 0.1)), rng.normal(-2.0, 1.0)]])


@MODELS
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gradient_and_hessian_match_finite_differences(with_colour, prior, seed):
    model, theta = _case(seed, with_colour, prior)
    value, grad = model.value_and_grad(theta)
    step = 1e-5
    num_grad = np.empty_like(theta)
    num_hess = np.empty((theta.size, theta.size))
    for j in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[j] += step
        tm[j] -= step
        num_grad[j] = (model.value_and_grad(tp)[0] - model.value_and_grad(tm)[0]) / (2 * step)
        num_hess[:, j] = (model.grad(tp) - model.grad(tm)) / (2 * step)
    assert np.isfinite(value)
    np.testing.assert_allclose(grad, num_grad, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.hessian(theta), 0.5 * (num_hess + num_hess.T), rtol=1e-5, atol=1e-3)


@MODELS
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_evaluate_gives_the_value_gradient_and_hessian_of_the_separate_methods(with_colour, prior, seed):
    model, theta = _case(seed, with_colour, prior)
    value, grad, hess = model.evaluate(theta)
    value_ref, grad_ref = model.value_and_grad(theta)
    assert value == pytest.approx(value_ref, rel=1e-12)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-9, atol=1e-9)
    if model.n_lin == 1:  # the constant model's written-out sums against the general matrix form
        v_gen, g_gen, h_gen = model._evaluate_general(theta)
        assert value == pytest.approx(v_gen, rel=1e-12)
        np.testing.assert_allclose(grad, g_gen, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(hess, h_gen, rtol=1e-9, atol=1e-9)


@MODELS
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_compiled_evaluation_is_the_array_form(with_colour, prior, seed):
    model, theta = _case(seed, with_colour, prior)
    value, grad, hess = model.evaluate(theta)
    g, h = np.empty_like(theta), np.empty((theta.size, theta.size))
    v = _kernel.evaluate(theta, *model.kernel_args(), g, h)
    assert v == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(g, grad, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(h, hess, rtol=1e-9, atol=1e-9)


def _profile_covariance_in_arrays(model, theta, lower, upper):
    """The profile covariance by numpy's own linear algebra (pseudo-inverse of the nuisance block)."""
    k, p = model.n_lin, theta.size
    hess = model.hessian(theta)
    hess = 0.5 * (hess + hess.T)
    free = [j for j in range(k, p) if theta[j] - lower[j] > 1e-6 and upper[j] - theta[j] > 1e-6]
    info = hess[:k, :k]
    if free:
        h_in = hess[:k, free]
        info = info - h_in @ np.linalg.pinv(hess[np.ix_(free, free)], rcond=1e-8, hermitian=True) @ h_in.T
    return np.linalg.inv(0.5 * (info + info.T))


@MODELS
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("held", [None, 2])
def test_the_compiled_profile_covariance_is_numpys(with_colour, prior, seed, held):
    model = _model(seed, with_colour, prior)
    k = model.n_lin
    lower = np.array([-40.0] * k + [np.log(1e-4), -12.0])
    upper = np.array([40.0] * k + [np.log(2.0), 12.0])
    theta = newton(model, np.array([0.0] * k + [np.log(0.05), -2.0]), lower, upper).x
    if held is not None:  # a nuisance parameter on its bound is not profiled out
        theta[k + held - 1] = lower[k + held - 1]
    cov = profile_covariance(model, theta, lower, upper)
    assert cov is not None and cov.shape == (k, k)
    np.testing.assert_allclose(cov, _profile_covariance_in_arrays(model, theta, lower, upper), rtol=1e-8)


def test_small_systems_are_solved_and_indefinite_ones_refused():
    rng = np.random.default_rng(7)
    for p in (1, 3, 4):
        m = rng.normal(size=(p, p))
        a = m @ m.T + p * np.eye(p)
        b = rng.normal(size=p)
        out = np.empty(p)
        assert _kernel._cholesky_solve(a, b, out)
        np.testing.assert_allclose(out, np.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
    out = np.empty(2)
    assert not _kernel._cholesky_solve(np.array([[1.0, 2.0], [2.0, 1.0]]), np.ones(2), out)  # eigenvalues 3, -1
    assert not _kernel._cholesky_solve(np.array([[0.0]]), np.ones(1), np.empty(1))
    # an indefinite Hessian still gives a descent direction (the modified Newton step)
    hess, grad = np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([1.0, -0.5])
    assert float(grad @ _kernel._newton_step(hess, grad)) < 0.0


@MODELS
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_newton_reaches_the_optimum_of_l_bfgs_b_from_the_same_start(with_colour, prior, seed):
    model = _model(seed, with_colour, prior)
    k = model.n_lin
    lower = np.array([-40.0] * k + [np.log(1e-4), -12.0])
    upper = np.array([40.0] * k + [np.log(2.0), 12.0])
    start = np.array([0.0] * k + [np.log(0.05), -2.0])
    ours = newton(model, start, lower, upper)
    ref = minimize(model.value_and_grad, start, jac=True, method="L-BFGS-B",
                   bounds=list(zip(lower, upper, strict=True)), options={"maxiter": 500, "ftol": 1e-14, "gtol": 1e-10})
    assert ours.success, ours.message
    assert ours.fun <= ref.fun + 1e-8
    # the zero point (in magnitudes) and the scatter agree far below any quoted error
    assert abs(model.scale * (ours.x[0] - ref.x[0])) < 1e-6
    assert abs(np.exp(ours.x[k]) - np.exp(ref.x[k])) < 1e-6
    assert ours.nit < 30


def test_newton_holds_a_parameter_on_its_bound():
    # no outliers at all: the outlier fraction goes to its lower bound and stays there
    rng = np.random.default_rng(11)
    n = 400
    e = np.full(n, 0.02)
    d = 0.3 + rng.normal(0.0, 0.02, n)
    model = LinearMixture(d, e, np.ones((n, 1)), float(np.median(d)), 0.02, np.full(n, -12.0))
    lower, upper = np.array([-20.0, np.log(1e-4), -12.0]), np.array([20.0, np.log(1.0), 12.0])
    res = newton(model, np.array([1.0, np.log(0.05), -1.0]), lower, upper)
    assert res.success, res.message
    assert res.x[2] == lower[2]
    assert model.c0 + model.scale * res.x[0] == pytest.approx(float(np.mean(d)), abs=3 * 0.02 / np.sqrt(n))
