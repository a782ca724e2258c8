"""An L-stable SDIRK2 integrator of a model ODE with staggered-direct forward sensitivities.

Two-stage singly diagonally implicit Runge-Kutta (Alexander 1977), ``gamma = 1 - 1/sqrt(2)``,
stiffly accurate and L-stable, on ``dx/dt = f(x)`` with forcing constant within a day::

    Y1 = x + h gamma f(Y1)
    Y2 = x + h (1 - gamma) K1 + h gamma f(Y2),   K1 = f(Y1) = (Y1 - x) / (h gamma)
    x_new = Y2

Each stage equation is solved by Newton's method on ``I - h gamma df/dx`` from the model's
hand-coded Jacobian, refreshed every iteration (m <= 10 states: an LU costs less than the
right-hand side). Once a stage has converged, its sensitivity ``S_i = dY_i/dtheta`` solves the
linear system with the same matrix at the converged stage (staggered direct method)::

    (I - h gamma A1) S1 = S + h gamma B1,                        A = df/dx, B = df/dtheta
    (I - h gamma A2) S2 = S + h (1 - gamma) (A1 S1 + B1) + h gamma B2,   S_new = S2

which is the exact derivative of the discrete map at fixed step sizes (up to the Newton
residual). Error control: the embedded first-order solution ``x + h K1`` gives
``err = (I - h gamma A2)^-1 h gamma (K2 - K1)`` (filtered by the stage matrix as in Hairer &
Wanner's RADAU5, so that stiff components that the scheme damps do not cut the step), in the
weighted RMS norm of the states, ``|err_i| / (atol + rtol max(|x_i|, |x_new_i|))``, step factor
``max(0.2, min(5, 0.9 err^-1/2))``. A Newton iteration that does not converge within
``MAX_NEWTON`` iterations rejects the step and quarters it. Steps end at day boundaries.

As in :mod:`basinsx.models.integrate`, :func:`sdirk` is inlined into each model module's cached
``_run``; numba keys that cache on the model's file only, so after editing this module remove
``basinsx/models/__pycache__/*.nb[ic]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .integrate import model_rhs

GAMMA = 1.0 - 1.0 / math.sqrt(2.0)
#: Newton iterations per stage before the step is rejected and quartered.
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
def _newton(core, snow, z, y, theta, forc, hg, f, a, b, dfdp, lu, piv, r, x, rtol, atol, tol):
    """Solve ``y = z + h gamma f(y)`` from the guess in ``y``; on success ``f``, ``a``, ``b``, ``lu`` are at ``y``."""
    m = y.shape[0]
    prev = np.inf
    for _ in range(MAX_NEWTON):
        model_rhs(core, snow, y, theta, forc, f, a, b, dfdp, True)
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
        nrm = math.sqrt(nrm / m)
        if not math.isfinite(nrm) or (nrm > prev and nrm > tol):
            return False
        if nrm <= tol:
            # keep y where f and the Jacobians were evaluated: its stage residual is below tol
            return True
        prev = nrm
        for i in range(m):
            y[i] -= r[i, 0]
    return False


@njit(inline="always")
def sdirk(core, snow, theta, forcing, x0, s0, warmup, sens, rtol, atol, h0, hmin, hmax):
    """Integrate a model day by day with adaptive SDIRK2; see the module docstring.

    Arguments and results as :func:`basinsx.models.integrate.heun` without ``fixed`` and ``n_sub``
    (``x0`` is overwritten with the states after the last day).
    """
    m = x0.shape[0]
    d = theta.shape[0]
    n = forcing.shape[1]
    nf = forcing.shape[0]
    ds_ = d if sens else 0
    q = np.zeros(n - warmup)
    jac = np.zeros((n - warmup if sens else 0, d))
    x = x0.copy()
    s = np.zeros((m, ds_))
    if sens:
        s[:, :] = s0
    y1 = np.zeros(m)
    y2 = np.zeros(m)
    z = np.zeros(m)
    f = np.zeros(m)
    k1 = np.zeros(m)
    a = np.zeros((m, m))
    b = np.zeros((m, d))
    a1 = np.zeros((m, m))
    b1 = np.zeros((m, d))
    dfdp = np.zeros(m)
    lu = np.zeros((m, m))
    lu1 = np.zeros((m, m))
    piv = np.zeros(m, dtype=np.int64)
    piv1 = np.zeros(m, dtype=np.int64)
    r = np.zeros((m, 1))
    s1 = np.zeros((m, ds_))
    s2 = np.zeros((m, ds_))
    forc = np.zeros(nf)
    tol = NEWTON_TOL
    h = h0
    for day in range(n):
        for i in range(nf):
            forc[i] = forcing[i, day]
        x[m - 1] = 0.0
        for j in range(ds_):
            s[m - 1, j] = 0.0
        t = 0.0
        while t < 1.0 - 1e-12:
            h_prop = h
            h = min(h, 1.0 - t)
            hg = GAMMA * h
            # stage 1 from the current state
            for i in range(m):
                z[i] = x[i]
                y1[i] = x[i]
            ok = _newton(core, snow, z, y1, theta, forc, hg, f, a1, b1, dfdp, lu1, piv1, r, x, rtol, atol, tol)
            err = np.inf
            if ok:
                for i in range(m):
                    k1[i] = f[i]
                    z[i] = x[i] + (h - hg) * k1[i]
                    y2[i] = x[i] + h * k1[i]
                ok = _newton(core, snow, z, y2, theta, forc, hg, f, a, b, dfdp, lu, piv, r, x, rtol, atol, tol)
            if ok:
                for i in range(m):
                    r[i, 0] = hg * (f[i] - k1[i])
                lu_solve(lu, piv, r)
                err = 0.0
                for i in range(m):
                    e = r[i, 0] / (atol + rtol * max(abs(x[i]), abs(y2[i])))
                    err += e * e
                err = math.sqrt(err / m)
            if not ok and h <= hmin:
                q[:] = np.nan  # no convergence even at the shortest step: report divergence
                return q, jac
            accept = err <= 1.0 or h <= hmin
            if accept:
                if sens:
                    for i in range(m):
                        for j in range(d):
                            s1[i, j] = s[i, j] + hg * b1[i, j]
                    lu_solve(lu1, piv1, s1)
                    # s2 = S + h (1 - gamma) (A1 S1 + B1) + h gamma B2
                    for i in range(m):
                        for j in range(d):
                            acc = b1[i, j]
                            for p in range(m):
                                acc += a1[i, p] * s1[p, j]
                            s2[i, j] = s[i, j] + (h - hg) * acc + hg * b[i, j]
                    lu_solve(lu, piv, s2)
                    s[:, :] = s2
                for i in range(m):
                    x[i] = y2[i]
                t += h
            if not ok:
                h_new = 0.25 * h
            else:
                fac = 5.0 if err == 0.0 else max(0.2, min(5.0, 0.9 / math.sqrt(err)))
                h_new = h * fac
                if accept and h < h_prop:
                    # cut short by the end of the day: keep the proposal the error still allows
                    h_new = h_prop if err == 0.0 else max(h_new, min(h_prop, 0.9 * h / math.sqrt(err)))
            h = min(hmax, max(hmin, h_new))
        if day >= warmup:
            q[day - warmup] = x[m - 1]
            for j in range(ds_):
                jac[day - warmup, j] = s[m - 1, j]
    x0[:] = x
    return q, jac
