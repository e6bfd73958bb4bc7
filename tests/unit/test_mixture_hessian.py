"""The mixture likelihood's analytic derivatives against finite differences of its value."""
from __future__ import annotations

import numpy as np
import pytest

from services.calibration.science._mixture import LinearMixture


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


def _theta(seed: int, n_lin: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    return np.concatenate([rng.normal(0.0, 0.5, n_lin), [np.log(rng.uniform(0.005, 0.1)), rng.normal(-2.0, 1.0)]])


@pytest.mark.parametrize("with_colour", [False, True])
@pytest.mark.parametrize("prior", [None, (0.05, 1.0)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gradient_and_hessian_match_finite_differences(with_colour, prior, seed):
    model = _model(seed, with_colour, prior)
    theta = _theta(seed, model.n_lin)
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
