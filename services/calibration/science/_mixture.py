"""Private: the Gaussian + fixed-background mixture likelihood behind the zero-point fits.

Per star *i* with difference ``d_i``, quoted error ``e_i`` and a row ``x_i`` of a design matrix
(``[1]`` for a constant zero point, ``[1, u_i]`` with a scaled colour ``u_i`` for a colour term)::

    p(d_i) = (1 - f) N(d_i | c0 + scale * x_i . beta, s^2 + e_i^2) + f exp(log_bg_i)

optionally times a one-sided log-normal prior on ``s`` (a soft floor; the minimum is then a
posterior mode).

The fit parameters are ``theta = (beta..., log s, logit f)``; the background ``log_bg`` is fixed
(it does not depend on theta), so models with different designs fitted to the same ``d`` have
comparable likelihoods (used for the colour-term choice by an information criterion).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeResult, minimize

LOG_2PI = float(np.log(2.0 * np.pi))
LOGIT_BOUND = 12.0  # f in [6e-6, 1 - 6e-6] during the fit


def _log_sigmoid(u: float) -> float:
    """ln(1 / (1 + exp(-u))), without overflow."""
    return -math.log1p(math.exp(-u)) if u >= 0.0 else u - math.log1p(math.exp(u))


class LinearMixture:
    """-lnL of the mixture and its analytic gradient in ``theta``."""

    def __init__(self, d: NDArray[np.float64], e: NDArray[np.float64], design: NDArray[np.float64], centre: float,
                 scale: float, log_bg: NDArray[np.float64], scatter_prior: tuple[float, float] | None = None) -> None:
        self.d = d
        # optional one-sided log-normal prior on s, (median, width of ln s): a soft floor that only
        # penalises s below the median; -lnL then is -ln(posterior)
        self.prior = None if scatter_prior is None else (float(np.log(scatter_prior[0])), float(scatter_prior[1]))
        self.e2 = e * e
        self.x = np.ascontiguousarray(design)
        self.n_lin = design.shape[1]
        self.c0 = centre
        self.scale = scale
        self.log_bg = log_bg

    def mean(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """Model value of every star for the linear part of ``theta``."""
        # column by column, not a matrix product: BLAS threads cost more than they save here
        lin = float(theta[0]) * self.x[:, 0]
        for j in range(1, self.n_lin):
            lin = lin + float(theta[j]) * self.x[:, j]
        return self.c0 + self.scale * lin

    def parts(self, theta: NDArray[np.float64]
              ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, float]:
        """Per-star log likelihood, good-membership probability, residual; s^2 and f."""
        log_s, u = float(theta[self.n_lin]), float(theta[self.n_lin + 1])
        s2 = math.exp(2.0 * log_s)
        v = s2 + self.e2
        resid = self.d - self.mean(theta)
        log_f, log_1mf = _log_sigmoid(u), _log_sigmoid(-u)
        log_good = log_1mf - 0.5 * (LOG_2PI + np.log(v) + resid * resid / v)
        ll = np.logaddexp(log_good, log_f + self.log_bg)
        r_good = np.exp(log_good - ll)
        return ll, r_good, resid, s2, math.exp(log_f)

    def _prior_z(self, theta: NDArray[np.float64]) -> float:
        """The one-sided prior's standardised distance below its median (0 above it, or no prior)."""
        if self.prior is None:
            return 0.0
        return min((float(theta[self.n_lin]) - self.prior[0]) / self.prior[1], 0.0)

    def value_and_grad(self, theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        ll, r_good, resid, s2, f = self.parts(theta)
        v = s2 + self.e2
        w = r_good * resid / v
        grad = np.empty(self.n_lin + 2)
        for j in range(self.n_lin):
            grad[j] = -self.scale * float(np.dot(self.x[:, j], w))
        g_logs = float(np.dot(r_good, (resid * resid / v - 1.0) * s2 / v))
        grad[self.n_lin + 1] = -(float(r_good.size) - float(r_good.sum()) - f * r_good.size)
        value = float(-ll.sum())
        if self.prior is not None:
            z = self._prior_z(theta)
            value += 0.5 * z * z
            g_logs -= z / self.prior[1]
        grad[self.n_lin] = -g_logs
        return value, grad

    def hessian(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """The analytic Hessian of -lnL (plus the prior) in ``theta``.

        With ``g`` the good and ``b`` the background term of star *i* and ``r`` its good membership,
        ``d2 ln(g + b) = r d2 ln g + (1 - r) d2 ln b + r (1 - r) D D^T`` with ``D = d ln g - d ln b``.
        """
        _, r, resid, s2, f = self.parts(theta)
        k, p = self.n_lin, self.n_lin + 2
        v = s2 + self.e2
        q = resid / v
        sx = self.scale * self.x
        grad_good = np.empty((r.size, p))  # D: the gradient of ln g minus that of ln b, per star
        grad_good[:, :k] = sx * q[:, None]
        grad_good[:, k] = s2 * (resid * q - 1.0) / v
        grad_good[:, k + 1] = -1.0
        h = (grad_good * (r * (1.0 - r))[:, None]).T @ grad_good  # sum of r (1 - r) D D^T
        # r d2 ln g (d2 ln b is zero but for the u-u element, which is -f (1 - f) in both)
        h[:k, :k] -= (sx * (r / v)[:, None]).T @ sx
        cross = -(sx * (r * 2.0 * s2 * q / v)[:, None]).sum(axis=0)
        h[:k, k] += cross
        h[k, :k] += cross
        h[k, k] += float(np.sum(r * (2.0 * s2 * resid * q / v * (1.0 - 2.0 * s2 / v) - 2.0 * s2 / v * (1.0 - s2 / v))))
        h[k + 1, k + 1] -= r.size * f * (1.0 - f)
        hess = -h
        if self.prior is not None and self._prior_z(theta) < 0.0:
            hess[k, k] += 1.0 / self.prior[1] ** 2
        return hess

    def grad(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.value_and_grad(theta)[1]


def optimise(model: LinearMixture, starts: list[NDArray[np.float64]], lower: NDArray[np.float64],
             upper: NDArray[np.float64]) -> OptimizeResult | None:
    """Minimise -lnL with L-BFGS-B from every start (best kept), Nelder-Mead if none converged."""
    best = None
    bounds = list(zip(lower, upper, strict=True))
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        for x0 in starts:
            res = minimize(model.value_and_grad, np.clip(x0, lower, upper), jac=True, method="L-BFGS-B",
                           bounds=bounds, options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8})
            if np.isfinite(res.fun) and np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun - 1e-12):
                best = res
        if best is not None and best.success:
            return best

        def clipped(theta: NDArray[np.float64]) -> float:
            val = model.value_and_grad(np.clip(theta, lower, upper))[0]
            return val if np.isfinite(val) else 1e300

        x0 = starts[0] if best is None else best.x
        nm = minimize(clipped, np.clip(x0, lower, upper), method="Nelder-Mead",
                      options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-10})
        nm_x = np.clip(nm.x, lower, upper)
        nm_fun = model.value_and_grad(nm_x)[0]
        if np.isfinite(nm_fun) and (best is None or nm_fun < best.fun):
            nm.x, nm.fun = nm_x, nm_fun
            best = nm
    return best


def profile_covariance(model: LinearMixture, theta: NDArray[np.float64], lower: NDArray[np.float64],
                       upper: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Covariance of the linear parameters (in fit units) from the Hessian of -lnL.

    The analytic Hessian; the nuisance parameters ``log s`` and ``logit f``
    are profiled out (Schur complement) unless they sit on a bound; nearly flat nuisance
    directions (``log s`` when s -> 0) are dropped through a pseudo-inverse. None when the
    information matrix is not positive definite.
    """
    p = theta.size
    k = model.n_lin
    hess = model.hessian(theta)
    hess = 0.5 * (hess + hess.T)
    if not np.all(np.isfinite(hess)):
        return None
    tol = 1e-6
    free = [j for j in range(k, p) if theta[j] - lower[j] > tol and upper[j] - theta[j] > tol]
    info = hess[:k, :k]
    if free:
        h_nn = hess[np.ix_(free, free)]
        h_in = hess[:k, free]
        info = info - h_in @ np.linalg.pinv(h_nn, rcond=1e-8, hermitian=True) @ h_in.T
    info = 0.5 * (info + info.T)
    if not np.all(np.isfinite(info)) or np.linalg.eigvalsh(info).min() <= 0.0:
        return None
    cov = np.asarray(np.linalg.inv(info), dtype=np.float64)
    return cov if np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0) else None
