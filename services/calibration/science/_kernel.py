"""Private: the mixture likelihood of ``_mixture.py`` and its projected Newton minimiser, compiled.

The same model, sums and algorithm as :class:`_mixture.LinearMixture` (``evaluate``) and
:func:`_mixture.newton`, written as loops over the stars and compiled by numba: one pass over the
stars gives -lnL, its gradient and its Hessian, where the array form needs some thirty numpy calls
(each with its own overhead, which dominates for the few hundred stars of a field). The array form
stays the reference the tests compare this one with.

Compiled on first use and cached on disk (numba's ``cache=True``: beside this file, else in the
user's cache folder), so only the first process after an install pays the compilation (seconds).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

LOG_2PI = math.log(2.0 * math.pi)

#: How :func:`newton_fit` ended (its ``status``), as :func:`_mixture.newton` words it.
MESSAGES = ("projected gradient below tolerance", "no further change", "no further decrease",
            "the likelihood is not finite at the start", "the Hessian is not finite", "the line search failed",
            "iteration limit reached", "joined the optimum already found")
CONVERGED = (True, True, True, False, False, False, False, True)
JOINED = 7
#: How close (in every fit parameter) a path must come to an optimum already found to count as joining it.
JOIN_DISTANCE = 1e-3


@njit(cache=True, nogil=True)
def log_sigmoid(u: float) -> float:
    """ln(1 / (1 + exp(-u))), without overflow (compiled, and callable from Python as well)."""
    if u >= 0.0:
        return -math.log1p(math.exp(-u))
    return u - math.log1p(math.exp(u))


@njit(cache=True, nogil=True)
def evaluate(theta: Any, d: Any, e2: Any, x: Any, c0: float, scale: float, log_bg: Any, prior_mu: float,
             prior_w: float, grad: Any, hess: Any) -> float:
    """-lnL (plus the prior) at ``theta``; its gradient and Hessian written into ``grad``, ``hess``.

    ``prior_w <= 0``: no prior. ``x`` is the design (n x k); ``theta = (beta (k), log s, logit f)``.
    """
    n, k = x.shape
    p = k + 2
    log_s, u = theta[k], theta[k + 1]
    s2 = math.exp(2.0 * log_s)
    log_f, log_1mf = log_sigmoid(u), log_sigmoid(-u)
    f = math.exp(log_f)
    for a in range(p):
        grad[a] = 0.0
        for b in range(p):
            hess[a, b] = 0.0
    dvec = np.empty(p)
    g0 = g1 = h00 = h10 = h11 = h20 = h21 = h22 = 0.0
    total = 0.0
    sum_r = 0.0
    for i in range(n):
        lin = 0.0
        for j in range(k):
            lin += theta[j] * x[i, j]
        resid = d[i] - (c0 + scale * lin)
        v = s2 + e2[i]
        q = resid / v
        rq2 = resid * q
        log_good = log_1mf - 0.5 * (LOG_2PI + math.log(v) + rq2)
        log_b = log_f + log_bg[i]
        # ln(good + background) without overflow, and the good membership r = good / (good + background),
        # from one exponential of the difference of the two logs
        if log_good >= log_b:
            ex = math.exp(log_b - log_good)
            ll = log_good + math.log1p(ex)
            r = 1.0 / (1.0 + ex)
        else:
            ex = math.exp(log_good - log_b)
            ll = log_b + math.log1p(ex)
            r = ex / (1.0 + ex)
        total += ll
        sum_r += r
        w = r * (1.0 - r)
        t = s2 / v
        if k == 1:  # the constant zero point: the same sums as below, in scalars
            sx0 = scale * x[i, 0]
            d0 = sx0 * q
            d1 = t * (rq2 - 1.0)
            g0 += r * d0
            g1 += r * d1
            h00 += w * d0 * d0 - r / v * sx0 * sx0
            h10 += w * d1 * d0 - r * 2.0 * t * q * sx0
            h11 += w * d1 * d1 + r * (2.0 * t * rq2 * (1.0 - 2.0 * t) - 2.0 * t * (1.0 - t))
            h20 -= w * d0
            h21 -= w * d1
            h22 += w
            continue
        # D: the gradient of ln(good) minus that of ln(background), per star
        for j in range(k):
            dvec[j] = scale * x[i, j] * q
        dvec[k] = t * (rq2 - 1.0)
        dvec[k + 1] = -1.0
        for a in range(k + 1):
            grad[a] -= r * dvec[a]
        # sum of r (1 - r) D D^T, and r times the second derivatives of ln(good)
        for a in range(p):
            for b in range(a + 1):
                hess[a, b] += w * dvec[a] * dvec[b]
        for a in range(k):
            sxa = scale * x[i, a]
            for b in range(a + 1):
                hess[a, b] -= r / v * sxa * scale * x[i, b]
            hess[k, a] -= r * 2.0 * t * q * sxa
        hess[k, k] += r * (2.0 * t * rq2 * (1.0 - 2.0 * t) - 2.0 * t * (1.0 - t))
    if k == 1:
        grad[0], grad[1] = -g0, -g1
        hess[0, 0], hess[1, 0], hess[1, 1] = h00, h10, h11
        hess[2, 0], hess[2, 1], hess[2, 2] = h20, h21, h22
    fn = float(n)
    grad[k + 1] = -(fn - sum_r - f * fn)
    hess[k + 1, k + 1] -= fn * f * (1.0 - f)
    for a in range(p):
        for b in range(a + 1):
            hess[a, b] = -hess[a, b]
            hess[b, a] = hess[a, b]
    value = -total
    if prior_w > 0.0:
        z = min((log_s - prior_mu) / prior_w, 0.0)
        value += 0.5 * z * z
        grad[k] += z / prior_w
        if z < 0.0:
            hess[k, k] += 1.0 / (prior_w * prior_w)
    return value


@njit(cache=True, nogil=True)
def _cholesky_solve(a: Any, b: Any, out: Any) -> bool:
    """``a out = b`` by Cholesky; False when ``a`` is not positive definite."""
    p = b.size
    low = np.zeros((p, p))
    for i in range(p):
        for j in range(i + 1):
            acc = a[i, j]
            for m in range(j):
                acc -= low[i, m] * low[j, m]
            if i == j:
                if not acc > 0.0:
                    return False
                low[i, i] = math.sqrt(acc)
            else:
                low[i, j] = acc / low[j, j]
    y = np.empty(p)
    for i in range(p):
        acc = b[i]
        for m in range(i):
            acc -= low[i, m] * y[m]
        y[i] = acc / low[i, i]
    for i in range(p - 1, -1, -1):
        acc = y[i]
        for m in range(i + 1, p):
            acc -= low[m, i] * out[m]
        out[i] = acc / low[i, i]
    return True


@njit(cache=True, nogil=True)
def _newton_step(hess: Any, grad: Any) -> Any:
    """The Newton step where the Hessian is positive definite, else that of the Hessian with its
    eigenvalues made positive (a modified Newton step)."""
    p = grad.size
    step = np.empty(p)
    if _cholesky_solve(hess, -grad, step):
        return step
    lam, vec = np.linalg.eigh(0.5 * (hess + hess.T))
    top = 0.0
    for i in range(p):
        top = max(top, abs(lam[i]))
    floor = max(top, 1.0) * 1e-8
    proj = vec.T @ grad
    for i in range(p):
        proj[i] = proj[i] / max(abs(lam[i]), floor)
    return -(vec @ proj)


@njit(cache=True, nogil=True)
def newton_fit(x0: Any, lower: Any, upper: Any, d: Any, e2: Any, x: Any, c0: float, scale: float, log_bg: Any,
               prior_mu: float, prior_w: float, max_iter: int, gtol: float, known: Any) -> Any:
    """:func:`_mixture.newton`, compiled: ``(theta, -lnL, gradient, status, iterations, evaluations)``,
    ``status`` an index into :data:`MESSAGES`. ``known``: an optimum found from another start (empty:
    none); a path that comes within :data:`JOIN_DISTANCE` of it stops there (status :data:`JOINED`):
    it would only converge to the same point."""
    p = x0.size
    th = np.minimum(np.maximum(x0.copy(), lower), upper)
    g = np.empty(p)
    h = np.empty((p, p))
    g_new = np.empty(p)
    h_new = np.empty((p, p))
    th_new = np.empty(p)
    fv = evaluate(th, d, e2, x, c0, scale, log_bg, prior_mu, prior_w, g, h)
    ok = math.isfinite(fv)
    for j in range(p):
        ok = ok and math.isfinite(g[j])
    n_eval, it = 1, 0
    status = 3
    if not ok:
        return th, fv, g, status, it, n_eval
    status = 6
    free = np.empty(p, dtype=np.int64)
    while it < max_iter:
        n_free = 0
        projected = 0.0
        for j in range(p):
            held = (th[j] <= lower[j] and g[j] > 0.0) or (th[j] >= upper[j] and g[j] < 0.0)
            if not held:
                free[n_free] = j
                n_free += 1
                projected = max(projected, abs(g[j]))
        if projected <= gtol:
            status = 0
            break
        finite = True
        for a in range(p):
            for b in range(p):
                finite = finite and math.isfinite(h[a, b])
        if not finite:
            status = 4
            break
        step = np.zeros(p)
        if n_free == p:
            step = _newton_step(h, g)
        else:
            sub_h = np.empty((n_free, n_free))
            sub_g = np.empty(n_free)
            for a in range(n_free):
                sub_g[a] = g[free[a]]
                for b in range(n_free):
                    sub_h[a, b] = h[free[a], free[b]]
            sub = _newton_step(sub_h, sub_g)
            for a in range(n_free):
                step[free[a]] = sub[a]
        t = 1.0
        accepted = False
        f_new = fv
        while t > 1e-12:
            slope = 0.0
            for j in range(p):
                th_new[j] = min(max(th[j] + t * step[j], lower[j]), upper[j])
                slope += g[j] * (th_new[j] - th[j])
            f_new = evaluate(th_new, d, e2, x, c0, scale, log_bg, prior_mu, prior_w, g_new, h_new)
            n_eval += 1
            if math.isfinite(f_new) and f_new <= fv + 1e-4 * slope:
                accepted = True
                break
            t *= 0.5
        it += 1
        if not accepted:  # no step lowers -lnL: at the optimum within rounding, or a poor direction
            status = 2 if projected <= 1e-4 * max(1.0, abs(fv)) else 5
            break
        moved = 0.0
        for j in range(p):
            moved = max(moved, abs(th_new[j] - th[j]))
        decrease = fv - f_new
        th[:] = th_new
        g[:] = g_new
        h[:, :] = h_new
        fv = f_new
        if moved <= 1e-12 or (decrease <= 1e-15 * max(1.0, abs(fv)) and moved <= 1e-9):
            status = 1
            break
        if known.size == p:
            far = 0.0
            for j in range(p):
                far = max(far, abs(th[j] - known[j]))
            if far < JOIN_DISTANCE:
                status = JOINED
                break
    return th, fv, g, status, it, n_eval


@njit(cache=True, nogil=True)
def profile_covariance(theta: Any, lower: Any, upper: Any, d: Any, e2: Any, x: Any, c0: float, scale: float,
                       log_bg: Any, prior_mu: float, prior_w: float) -> Any:
    """:func:`_mixture.profile_covariance`, compiled: the k x k covariance, or a 0 x 0 array for none."""
    n, k = x.shape
    p = k + 2
    g = np.empty(p)
    hess = np.empty((p, p))
    evaluate(theta, d, e2, x, c0, scale, log_bg, prior_mu, prior_w, g, hess)
    none = np.empty((0, 0))
    for a in range(p):
        for b in range(p):
            if not math.isfinite(hess[a, b]):
                return none
    free = np.empty(2, dtype=np.int64)
    n_free = 0
    for j in range(k, p):
        if theta[j] - lower[j] > 1e-6 and upper[j] - theta[j] > 1e-6:
            free[n_free] = j
            n_free += 1
    info = hess[:k, :k].copy()
    if n_free > 0:
        # Schur complement through the pseudo-inverse of the nuisance block (flat directions dropped)
        h_nn = np.empty((n_free, n_free))
        h_in = np.empty((k, n_free))
        for a in range(n_free):
            for b in range(n_free):
                h_nn[a, b] = hess[free[a], free[b]]
            for i in range(k):
                h_in[i, a] = hess[i, free[a]]
        lam, vec = np.linalg.eigh(h_nn)
        cutoff = 0.0
        for a in range(n_free):
            cutoff = max(cutoff, abs(lam[a]))
        cutoff *= 1e-8
        for a in range(n_free):
            if abs(lam[a]) > cutoff:
                for i in range(k):
                    pi = 0.0
                    for b in range(n_free):
                        pi += h_in[i, b] * vec[b, a]
                    for j in range(k):
                        pj = 0.0
                        for b in range(n_free):
                            pj += h_in[j, b] * vec[b, a]
                        info[i, j] -= pi * pj / lam[a]
    info = 0.5 * (info + info.T)
    for a in range(k):
        for b in range(k):
            if not math.isfinite(info[a, b]):
                return none
    if np.linalg.eigvalsh(info).min() <= 0.0:
        return none
    cov = np.linalg.inv(info)
    for a in range(k):
        if not (math.isfinite(cov[a, a]) and cov[a, a] > 0.0):
            return none
        for b in range(k):
            if not math.isfinite(cov[a, b]):
                return none
    return cov


@njit(cache=True, nogil=True)
def offsets_em(x: Any, y: Any, big_r: float, x0: float, y0: float, sigma: float, f: float,
               max_iter: int) -> Any:
    """The expectation-maximisation loop of :func:`match_radius.fit_offsets`, compiled:
    ``(concentrated, x0, y0, sigma, f, n_good)``; ``concentrated`` False when the good weight fell
    below 2 (then the values are those before that step)."""
    n = x.size
    bg = 1.0 / (math.pi * big_r * big_r)
    prev = -np.inf
    r_good = np.ones(n)
    for _ in range(max_iter):
        s2 = sigma * sigma
        norm = max(1.0 - math.exp(-big_r * big_r / (2.0 * s2)), 1e-12)
        ll = 0.0
        w = 0.0
        sx = 0.0
        sy = 0.0
        for i in range(n):
            d2 = (x[i] - x0) ** 2 + (y[i] - y0) ** 2
            num = (1.0 - f) * math.exp(-0.5 * d2 / s2) / (2.0 * math.pi * s2 * norm)
            tot = num + f * bg
            ll += math.log(tot)
            r = num / tot
            r_good[i] = r
            w += r
            sx += r * x[i]
            sy += r * y[i]
        if w < 2.0:
            return False, x0, y0, sigma, f, w
        x0 = sx / w
        y0 = sy / w
        ss = 0.0
        for i in range(n):
            ss += r_good[i] * ((x[i] - x0) ** 2 + (y[i] - y0) ** 2)
        sigma = max(math.sqrt(ss / (2.0 * w)), 1e-3)
        f = min(max(1.0 - w / n, 1e-6), 1.0 - 1e-6)
        if ll - prev < 1e-9 * max(1.0, abs(ll)):
            break
        prev = ll
    n_good = 0.0
    for i in range(n):
        n_good += r_good[i]
    return True, x0, y0, sigma, f, n_good


@njit(cache=True, nogil=True)
def robust_scales(d: Any, e: Any, mad_to_sigma: float, floor: float) -> Any:
    """The scales a zero-point fit starts from, in one compiled pass: ``(c0, sigma0, median e, |d - c0|,
    median of |d - c0| beyond 3 sigma0 (0 when none), how many are beyond)`` with ``c0 = median d`` and
    ``sigma0`` its sigma_MAD (when more than half the points tie: the largest of the standard deviation,
    the median error and ``floor``)."""
    c0 = np.median(d)
    dev = np.abs(d - c0)
    sigma0 = mad_to_sigma * np.median(dev)
    med_e = np.median(e)
    if not sigma0 > 0.0:
        sigma0 = max(np.std(d), med_e, floor)
    far = dev[dev > 3.0 * sigma0]
    far_median = np.median(far) if far.size else 0.0
    return c0, sigma0, med_e, dev, far_median, far.size
