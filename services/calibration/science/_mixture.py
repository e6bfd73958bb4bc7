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

from services.calibration.science import _kernel
from services.calibration.science._kernel import LOG_2PI, log_sigmoid

LOGIT_BOUND = 12.0  # f in [6e-6, 1 - 6e-6] during the fit
#: Converged when the largest free gradient element of -lnL is below this: for a few hundred stars the
#: zero point is then within 1e-8 mag of the optimum (tighter only spends iterations on rounding).
GTOL = 1e-6


class LinearMixture:
    """-lnL of the mixture and its analytic gradient in ``theta``."""

    def __init__(self, d: NDArray[np.float64], e: NDArray[np.float64], design: NDArray[np.float64], centre: float,
                 scale: float, log_bg: NDArray[np.float64], scatter_prior: tuple[float, float] | None = None) -> None:
        # contiguous float64 arrays: the one signature the compiled kernel is built (and cached) for
        self.d = np.ascontiguousarray(d, dtype=np.float64)
        # optional one-sided log-normal prior on s, (median, width of ln s): a soft floor that only
        # penalises s below the median; -lnL then is -ln(posterior)
        self.prior = None if scatter_prior is None else (float(np.log(scatter_prior[0])), float(scatter_prior[1]))
        self.e2 = np.ascontiguousarray(e * e, dtype=np.float64)
        self.x = np.ascontiguousarray(design, dtype=np.float64)
        self.n_lin = design.shape[1]
        self.c0 = centre
        self.scale = scale
        self.log_bg = np.ascontiguousarray(log_bg, dtype=np.float64)

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
        log_f, log_1mf = log_sigmoid(u), log_sigmoid(-u)
        log_good = log_1mf - 0.5 * (LOG_2PI + np.log(v) + resid * resid / v)
        ll = np.logaddexp(log_good, log_f + self.log_bg)
        r_good = np.exp(log_good - ll)
        return ll, r_good, resid, s2, math.exp(log_f)

    def kernel_args(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, float,
                                   NDArray[np.float64], float, float]:
        """The model as the compiled kernel takes it: ``(d, e^2, design, centre, scale, log_bg, ln median of
        the prior, its width)``, width 0 for no prior."""
        mu, width = (0.0, 0.0) if self.prior is None else self.prior
        return self.d, self.e2, self.x, float(self.c0), float(self.scale), self.log_bg, mu, width

    def _prior_z(self, theta: NDArray[np.float64]) -> float:
        """The one-sided prior's standardised distance below its median (0 above it, or no prior)."""
        if self.prior is None:
            return 0.0
        return min((float(theta[self.n_lin]) - self.prior[0]) / self.prior[1], 0.0)

    def _prior_terms(self, theta: NDArray[np.float64]) -> tuple[float, float, float]:
        """The prior's part of -lnL and its first and second derivatives in ``log s`` (zeros without one)."""
        if self.prior is None:
            return 0.0, 0.0, 0.0
        z = self._prior_z(theta)
        return 0.5 * z * z, z / self.prior[1], (1.0 / self.prior[1] ** 2 if z < 0.0 else 0.0)

    def value_and_grad(self, theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        ll, r_good, resid, s2, f = self.parts(theta)
        v = s2 + self.e2
        w = r_good * resid / v
        grad = np.empty(self.n_lin + 2)
        for j in range(self.n_lin):
            grad[j] = -self.scale * float(np.dot(self.x[:, j], w))
        g_logs = float(np.dot(r_good, (resid * resid / v - 1.0) * s2 / v))
        grad[self.n_lin + 1] = -(float(r_good.size) - float(r_good.sum()) - f * r_good.size)
        p_value, p_grad, _ = self._prior_terms(theta)
        grad[self.n_lin] = p_grad - g_logs
        return float(-ll.sum()) + p_value, grad

    def hessian(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """The analytic Hessian of -lnL (plus the prior) in ``theta``.

        With ``g`` the good and ``b`` the background term of star *i* and ``r`` its good membership,
        ``d2 ln(g + b) = r d2 ln g + (1 - r) d2 ln b + r (1 - r) D D^T`` with ``D = d ln g - d ln b``.
        """
        return self.evaluate(theta)[2]

    def evaluate(self, theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
        """-lnL (plus the prior), its gradient and its Hessian, from one pass over the stars."""
        if self.n_lin == 1:
            return self._evaluate_constant(theta)
        return self._evaluate_general(theta)

    def _evaluate_general(self, theta: NDArray[np.float64]
                          ) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`evaluate` for any design, in matrix form."""
        ll, r, resid, s2, f = self.parts(theta)
        k, p = self.n_lin, self.n_lin + 2
        v = s2 + self.e2
        q = resid / v
        sx = self.scale * self.x
        grad_good = np.empty((r.size, p))  # D: the gradient of ln g minus that of ln b, per star
        grad_good[:, :k] = sx * q[:, None]
        grad_good[:, k] = s2 * (resid * q - 1.0) / v
        grad_good[:, k + 1] = -1.0
        # the gradient of -lnL: -sum r D, but for the u element, which the background shares (-f per star)
        grad = -(r @ grad_good)
        grad[k + 1] = -(float(r.size) - float(r.sum()) - f * r.size)
        h = (grad_good * (r * (1.0 - r))[:, None]).T @ grad_good  # sum of r (1 - r) D D^T
        # r d2 ln g (d2 ln b is zero but for the u-u element, which is -f (1 - f) in both)
        h[:k, :k] -= (sx * (r / v)[:, None]).T @ sx
        cross = -(sx * (r * 2.0 * s2 * q / v)[:, None]).sum(axis=0)
        h[:k, k] += cross
        h[k, :k] += cross
        h[k, k] += float(np.sum(r * (2.0 * s2 * resid * q / v * (1.0 - 2.0 * s2 / v) - 2.0 * s2 / v * (1.0 - s2 / v))))
        h[k + 1, k + 1] -= r.size * f * (1.0 - f)
        hess = -h
        p_value, p_grad, p_curv = self._prior_terms(theta)
        grad[k] += p_grad
        hess[k, k] += p_curv
        return float(-ll.sum()) + p_value, grad, hess

    def _evaluate_constant(self, theta: NDArray[np.float64]
                           ) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`evaluate` for a constant zero point (one linear parameter): the same sums written
        out as dot products, a third of the array operations of the general form."""
        beta, log_s, u = float(theta[0]), float(theta[1]), float(theta[2])
        sc = self.scale
        s2 = math.exp(2.0 * log_s)
        v = s2 + self.e2
        resid = self.d - (self.c0 + sc * beta)
        log_f, log_1mf = log_sigmoid(u), log_sigmoid(-u)
        q = resid / v
        rq2 = resid * q  # resid^2 / v
        log_good = log_1mf - 0.5 * (LOG_2PI + np.log(v) + rq2)
        ll = np.logaddexp(log_good, log_f + self.log_bg)
        r = np.exp(log_good - ll)
        f, n = math.exp(log_f), float(r.size)
        t = s2 / v
        a = t * (rq2 - 1.0)  # d ln g / d log s
        w = r * (1.0 - r)
        wq, wa = w * q, w * a
        sum_r = float(r.sum())
        g = np.array([-sc * float(r @ q), -float(r @ a), -(n - sum_r - f * n)])
        h00 = sc * sc * (float(wq @ q) - float(r @ (1.0 / v)))
        h01 = sc * (float(wq @ a) - 2.0 * float(r @ (q * t)))
        h02 = -sc * float(wq.sum())
        h11 = float(wa @ a) + float(r @ (2.0 * t * rq2 * (1.0 - 2.0 * t) - 2.0 * t * (1.0 - t)))
        h12 = -float(wa.sum())
        h22 = float(w.sum()) - n * f * (1.0 - f)
        p_value, p_grad, p_curv = self._prior_terms(theta)
        g[1] += p_grad
        hess = -np.array([[h00, h01, h02], [h01, h11 - p_curv, h12], [h02, h12, h22]])
        return float(-ll.sum()) + p_value, g, hess

    def grad(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.value_and_grad(theta)[1]


def newton(model: LinearMixture, x0: NDArray[np.float64], lower: NDArray[np.float64], upper: NDArray[np.float64],
           *, max_iter: int = 100, gtol: float = GTOL, known: NDArray[np.float64] | None = None) -> OptimizeResult:
    """Minimise -lnL within the bounds by projected Newton steps with the analytic Hessian.

    A parameter on a bound with the gradient pushing outwards is held there; the others take the
    (modified) Newton step of their block, shortened by backtracking until -lnL decreases enough
    (Armijo) and clipped to the bounds. Converged when the projected gradient is below ``gtol``
    or no step lowers -lnL at all (the optimum within rounding). Quadratic convergence: a handful
    of iterations where a quasi-Newton method needs tens of evaluations. Runs compiled
    (``_kernel.newton_fit``: one pass over the stars per evaluation). ``known``: an optimum found
    from another start; a path that comes within ``_kernel.JOIN_DISTANCE`` of it stops (message
    "joined the optimum already found").
    """
    theta, fun, jac, status, nit, nfev = _kernel.newton_fit(
        np.asarray(x0, dtype=np.float64), np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64),
        *model.kernel_args(), int(max_iter), float(gtol),
        np.empty(0) if known is None else np.asarray(known, dtype=np.float64))
    result = OptimizeResult()
    result.update(x=theta, fun=float(fun), jac=jac, success=_kernel.CONVERGED[status], message=_kernel.MESSAGES[status],
                  nit=int(nit), nfev=int(nfev))
    return result


#: Below this many stars the likelihood has more local optima and each fit is cheap: every start is also
#: run by L-BFGS-B, whose longer path finds an optimum the Newton path misses in about 1 such fit in 150
#: (and the other way round about as often: the better of the two is kept).
FEW_STARS = 40


def optimise(model: LinearMixture, starts: list[NDArray[np.float64]], lower: NDArray[np.float64],
             upper: NDArray[np.float64]) -> OptimizeResult | None:
    """Minimise -lnL from every start (best kept): projected Newton; L-BFGS-B as well below
    ``FEW_STARS`` stars or where Newton does not converge; Nelder-Mead if nothing converged. A
    Newton path that joins the optimum of an earlier start is stopped there."""
    best = None
    bounds = list(zip(lower, upper, strict=True))
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        for x0 in starts:
            # a later start that runs into the optimum of an earlier one stops there (it adds nothing)
            known = best.x if best is not None and best.success else None
            tries = [newton(model, x0, lower, upper, known=known)]
            if not tries[0].success or model.d.size < FEW_STARS:
                tries.append(minimize(model.value_and_grad, np.clip(x0, lower, upper), jac=True, method="L-BFGS-B",
                                      bounds=bounds, options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8}))
            if tries[0].message == _kernel.MESSAGES[_kernel.JOINED]:
                tries = tries[1:]
            for res in tries:
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
    cov = _kernel.profile_covariance(np.asarray(theta, dtype=np.float64), np.asarray(lower, dtype=np.float64),
                                     np.asarray(upper, dtype=np.float64), *model.kernel_args())
    return None if cov.size == 0 else np.asarray(cov, dtype=np.float64)
