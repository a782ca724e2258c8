"""L-stable diagonally implicit Runge-Kutta integrators of a model ODE with staggered-direct forward sensitivities.

Three stiffly accurate, L-stable schemes on ``dx/dt = f(x)`` with forcing constant within a day,
``Y_i = x + h sum_{j<i} a_ij K_j + h gamma K_i``, ``K_i = f(Y_i)``, ``x_new = Y_last`` (:data:`COEF`):

* ``"sdirk"``: two-stage SDIRK2 (Alexander 1977), ``gamma = 1 - 1/sqrt(2)``, error estimated from
  the embedded first-order solution ``x + h K1`` (step exponent 1/2);
* ``"trbdf2"``: TR-BDF2 as a three-stage ESDIRK (explicit first stage; Hosea & Shampine 1996),
  second order, error estimated against its third-order companion (exponent 1/3);
* ``"esdirk3"``: ESDIRK3(2)4L[2]SA (Kennedy & Carpenter 2003), four stages, third order with a
  second-order embedded solution (exponent 1/3).

Each implicit stage is solved by simplified Newton with one matrix ``I - h gamma A(x)`` per step
(``A = df/dx`` the model's hand-coded Jacobian at the step's start, one LU for all stages; m <= 10
states), until the weighted RMS norm of the update is below ``NEWTON_TOL`` of the tolerance; where
it does not converge (the Jacobian at x misleads across the kink of a store), the stage is retried
with full Newton (matrix refreshed every iteration), and if that fails too the step is rejected
and quartered. ``K_i = (Y_i - z_i) / (h gamma)`` from the converged stage.

Sensitivities (staggered direct method), once a step is accepted: at each implicit stage the
Jacobians ``A_i``, ``B_i = df/dtheta`` are evaluated at the converged ``Y_i`` and::

    (I - h gamma A_i) S_i = S + h sum_{j<i} a_ij (A_j S_j + B_j) + h gamma B_i,   S_new = S_last

the exact derivative of the discrete map at fixed step sizes (up to the Newton residual). ``f``,
``A`` and ``B`` at the last stage are those at the next step's start (first same as last), so
with sensitivities a step costs one Jacobian evaluation per implicit stage, without them one.
The flow does not depend on whether sensitivities are computed (same steps, same iterates).

Error control: ``err = (I - h gamma A(x))^-1 h sum_i (b_i - bhat_i) K_i`` (filtered by the Newton
matrix as in Hairer & Wanner's RADAU5, so that stiff components that the scheme damps do not cut
the step), weighted RMS norm over the states, ``|err_i| / (atol + rtol max(|x_i|, |x_new_i|))``,
step factor ``max(0.2, min(5, 0.9 err^-k))``, ``k`` the scheme's exponent. Steps end at day
boundaries.

As :func:`basinsx.models.integrate.heun`, :func:`dirk` is inlined into each model module's cached
``_run`` (its cache keyed on this file too, :func:`basinsx.models.integrate.cache_on_kernels`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .integrate import model_rhs, tangent

#: The diagonally implicit schemes, in the order of their codes (``method`` minus 2 in the kernels).
SCHEMES = ("sdirk", "trbdf2", "esdirk3")
_R2 = math.sqrt(2.0)
_D = 1.0 - _R2 / 2.0  # SDIRK2's gamma = TR-BDF2's diagonal
_W = _R2 / 4.0
_G3 = 1767732205903.0 / 4055673282236.0
_E3 = (1471266399579.0 / 7840856788654.0, -4482444167858.0 / 7529755066697.0,
       11266239266428.0 / 11593286722821.0, _G3)
#: Butcher matrices padded to 4 stages; all stiffly accurate (the last row is ``b``).
COEF = np.array([
    [[_D, 0.0, 0.0, 0.0], [1.0 - _D, _D, 0.0, 0.0], [0.0] * 4, [0.0] * 4],
    [[0.0] * 4, [_D, _D, 0.0, 0.0], [_W, _W, _D, 0.0], [0.0] * 4],
    [[0.0] * 4, [_G3, _G3, 0.0, 0.0],
     [2746238789719.0 / 10658868560708.0, -640167445237.0 / 6845629431997.0, _G3, 0.0], list(_E3)],
])
#: ``b - b_hat``: SDIRK2's first-order ``x + h K1``; TR-BDF2's third-order weights (Hosea & Shampine
#: 1996); ESDIRK3(2)4L[2]SA's second-order weights (Kennedy & Carpenter 2003).
ERR_WEIGHTS = np.array([
    [1.0 - _D - 1.0, _D, 0.0, 0.0],
    [_W - (1.0 - _W) / 3.0, _W - (3.0 * _W + 1.0) / 3.0, _D - _D / 3.0, 0.0],
    [_E3[0] - 2756255671327.0 / 12835298489170.0, _E3[1] + 10771552573575.0 / 22201958757719.0,
     _E3[2] - 9247589265047.0 / 10645013368117.0, _E3[3] - 2193209047091.0 / 5459859503100.0],
])
N_STAGES = np.array([2, 3, 4])
DIAGONAL = np.array([_D, _D, _G3])
#: step-size exponent ``1 / (q + 1)``, ``q`` the order of the embedded (lower-order) solution
EXPONENT = np.array([0.5, 1.0 / 3.0, 1.0 / 3.0])
#: Newton iterations per stage (simplified, then full) before the step is rejected and quartered.
MAX_NEWTON = 8
#: Newton stops when the weighted RMS norm of its update falls below this fraction of the tolerance.
NEWTON_TOL = 1e-2


@njit(cache=True)
def lu_factor(a, piv):
    """LU factorisation with partial pivoting in place; False if a pivot is zero or not finite."""
    n = a.shape[0]
    for k in range(n):
        p = k
        big = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > big:
                big = abs(a[i, k])
                p = i
        if not big > 0.0 or not math.isfinite(big):
            return False
        piv[k] = p
        if p != k:
            for j in range(n):
                a[k, j], a[p, j] = a[p, j], a[k, j]
        inv = 1.0 / a[k, k]
        for i in range(k + 1, n):
            lik = a[i, k] * inv
            a[i, k] = lik
            if lik != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= lik * a[k, j]
    return True


@njit(cache=True)
def lu_solve(lu, piv, b):
    """Solve ``A X = b`` in place for the columns of ``b`` (n, k) from :func:`lu_factor`."""
    n, k = b.shape
    for c in range(k):
        for i in range(n):
            p = piv[i]
            if p != i:
                b[i, c], b[p, c] = b[p, c], b[i, c]
        for i in range(1, n):
            acc = b[i, c]
            for j in range(i):
                acc -= lu[i, j] * b[j, c]
            b[i, c] = acc
        for i in range(n - 1, -1, -1):
            acc = b[i, c]
            for j in range(i + 1, n):
                acc -= lu[i, j] * b[j, c]
            b[i, c] = acc / lu[i, i]


@njit(cache=True)
def _stage_matrix(a, hg, lu):
    """``lu = I - h gamma A``."""
    m = a.shape[0]
    for i in range(m):
        for j in range(m):
            lu[i, j] = -hg * a[i, j]
        lu[i, i] += 1.0



@njit(inline="always")
def _newton(core, snow, z, y, theta, forc, hg, f, a, b, dfdp, lu, piv, r, x, rtol, atol, tol, full):
    """Newton on ``y = z + h gamma f(y)`` from the guess in ``y``: simplified with the factorised ``lu``,
    or with ``full`` the matrix ``I - h gamma A(y)`` refreshed every iteration (in ``lu``, ``a``, ``b``)."""
    m = y.shape[0]
    prev = np.inf
    for _ in range(MAX_NEWTON):
        model_rhs(core, snow, y, theta, forc, f, a, b, dfdp, full)
        if full:
            _stage_matrix(a, hg, lu)
            if not lu_factor(lu, piv):
                return False
        for i in range(m):
            r[i, 0] = y[i] - z[i] - hg * f[i]
        lu_solve(lu, piv, r)
        nrm = 0.0
        for i in range(m):
            e = r[i, 0] / (atol + rtol * max(abs(x[i]), abs(y[i])))
            nrm += e * e
            y[i] -= r[i, 0]
        nrm = math.sqrt(nrm / m)
        if not math.isfinite(nrm) or (nrm > prev and nrm > tol):
            return False
        if nrm <= tol:
            return True
        prev = nrm
    return False


@njit(inline="always")
def dirk(core, snow, scheme, theta, forcing, x0, s0, warmup, sens, rtol, atol, h0, hmin, hmax):
    """Integrate a model day by day with the adaptive scheme ``SCHEMES[scheme]``; see the module docstring.

    Arguments and results as :func:`basinsx.models.integrate.heun` without ``fixed`` and ``n_sub``
    (``x0`` is overwritten with the states after the last day).
    """
    m = x0.shape[0]
    d = theta.shape[0]
    n = forcing.shape[1]
    nf = forcing.shape[0]
    ds_ = d if sens else 0
    ns = N_STAGES[scheme]
    g = DIAGONAL[scheme]
    ex = EXPONENT[scheme]
    coef = COEF[scheme]
    ew = ERR_WEIGHTS[scheme]
    first = 1 if coef[0, 0] == 0.0 else 0  # an explicit first stage (ESDIRK): Y0 = x, K0 = f(x)
    q = np.zeros(n - warmup)
    jac = np.zeros((n - warmup if sens else 0, d))
    x = x0.copy()
    s = np.zeros((m, ds_))
    if sens:
        s[:, :] = s0
    ys = np.zeros((4, m))
    ks = np.zeros((4, m))
    kss = np.zeros((4, m, ds_))
    z = np.zeros(m)
    f = np.zeros(m)
    fx = np.zeros(m)
    ax = np.zeros((m, m))
    bx = np.zeros((m, d))
    ai = np.zeros((m, m))
    bi = np.zeros((m, d))
    dfdp = np.zeros(m)
    lu = np.zeros((m, m))
    lus = np.zeros((m, m))
    piv = np.zeros(m, dtype=np.int64)
    pivs = np.zeros(m, dtype=np.int64)
    r = np.zeros((m, 1))
    si = np.zeros((m, ds_))
    forc = np.zeros(nf)
    tol = NEWTON_TOL
    h = h0
    for day in range(n):
        for i in range(nf):
            forc[i] = forcing[i, day]
        x[m - 1] = 0.0
        for j in range(ds_):
            s[m - 1, j] = 0.0
        have_x = False  # f and its Jacobians at x (new forcing)
        t = 0.0
        while t < 1.0 - 1e-12:
            h_prop = h
            h = min(h, 1.0 - t)
            hg = g * h
            if not have_x:
                model_rhs(core, snow, x, theta, forc, fx, ax, bx, dfdp, True)
                have_x = True
            # one Newton matrix I - h gamma A(x) for every stage of the step
            _stage_matrix(ax, hg, lu)
            ok = lu_factor(lu, piv)
            for i in range(m):
                ys[0, i] = x[i]
                ks[0, i] = fx[i]
            for st in range(first, ns):
                if not ok:
                    break
                for i in range(m):
                    acc = x[i]
                    for j in range(st):
                        acc += h * coef[st, j] * ks[j, i]
                    z[i] = acc
                # simplified Newton; where the Jacobian at x misleads (across a kink of a store), full Newton
                for full in range(2):
                    for i in range(m):
                        ys[st, i] = z[i] + hg * ks[max(st - 1, 0), i]
                    ok = _newton(core, snow, z, ys[st], theta, forc, hg, f, ai, bi, dfdp, lus if full else lu,
                                 pivs if full else piv, r, x, rtol, atol, tol, full == 1)
                    if ok:
                        break
                for i in range(m):
                    ks[st, i] = (ys[st, i] - z[i]) / hg
            err = np.inf
            if ok:
                # embedded estimate, filtered by the Newton matrix (stiff components the scheme damps)
                for i in range(m):
                    acc = 0.0
                    for j in range(ns):
                        acc += ew[j] * ks[j, i]
                    r[i, 0] = h * acc
                lu_solve(lu, piv, r)
                err = 0.0
                for i in range(m):
                    e = r[i, 0] / (atol + rtol * max(abs(x[i]), abs(ys[ns - 1, i])))
                    err += e * e
                err = math.sqrt(err / m)
            accept = ok and (err <= 1.0 or h <= hmin)
            if accept and sens:
                # staggered direct: (I - h gamma A_i) S_i = S + h sum_j a_ij (A_j S_j + B_j) + h gamma B_i
                if first:
                    tangent(s, ax, bx, kss[0])
                for st in range(first, ns):
                    model_rhs(core, snow, ys[st], theta, forc, f, ai, bi, dfdp, True)
                    _stage_matrix(ai, hg, lus)
                    if not lu_factor(lus, pivs):
                        ok = accept = False
                        break
                    for i in range(m):
                        for j in range(d):
                            acc = s[i, j] + hg * bi[i, j]
                            for p in range(st):
                                acc += h * coef[st, p] * kss[p, i, j]
                            si[i, j] = acc
                    lu_solve(lus, pivs, si)
                    tangent(si, ai, bi, kss[st])
                if accept:
                    s[:, :] = si
                    # first same as last: f and the Jacobians at the new x
                    fx[:] = f
                    ax[:, :] = ai
                    bx[:, :] = bi
            if not ok and h <= hmin:
                q[:] = np.nan  # no convergence even at the shortest step: report divergence
                return q, jac
            if accept:
                for i in range(m):
                    x[i] = ys[ns - 1, i]
                have_x = sens
                t += h
            if not ok:
                h_new = 0.25 * h
            else:
                fac = 5.0 if err == 0.0 else max(0.2, min(5.0, 0.9 * err**-ex))
                h_new = h * fac
                if accept and h < h_prop:
                    # cut short by the end of the day: keep the proposal the error still allows
                    h_new = h_prop if err == 0.0 else max(h_new, min(h_prop, 0.9 * h * err**-ex))
            h = min(hmax, max(hmin, h_new))
        if day >= warmup:
            q[day - warmup] = x[m - 1]
            for j in range(ds_):
                jac[day - warmup, j] = s[m - 1, j]
    x0[:] = x
    return q, jac
