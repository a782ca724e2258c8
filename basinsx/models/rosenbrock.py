"""A linearly implicit (Rosenbrock-W) integrator of a model ODE together with its forward sensitivity equations.

ROS34PW2 (Rang & Angermann 2005): four stages, third order with a second-order embedded solution,
L-stable and stiffly accurate, and a W-method: it keeps its order for any matrix ``W`` in
``I - h gamma W``, not only the exact Jacobian. It integrates the augmented system
``z = [x | S]`` (``x' = f(x)``, ``S' = A(x) S + B(x)`` with ``A = df/dx``, ``B = df/dtheta``,
forcing constant within a day, so autonomous within a step) with one matrix per step,
``M = I - h gamma A(x_n)`` for the states and for every sensitivity column: the augmented
Jacobian's coupling block ``d(A S + B)/dx`` is left out, which a W-method tolerates. No Newton
iterations; each stage is one evaluation of ``f`` (with ``A`` and ``B`` when sensitivities are
wanted) and one solve with ``M`` for ``d + 1`` right-hand sides. ``z`` and the stages are kept flat, row by
row (``z[i (d + 1)] = x_i``, then ``S_i``): the combinations of stages are then plain loops over
``m (d + 1)`` numbers, which the compiler vectorises (a third less time per run than the row-wise
loops, with the same results to the bit). In the transformed form of
Hairer & Wanner (IV.7, ``u_i = sum_j gamma_ij k_j``)::

    (I - h gamma A(x_n)) u_i = h gamma (F(z + sum_{j<i} a_ij u_j) + sum_{j<i} c_ij / h u_j)
    z_new = z + sum_i m_i u_i,   error = sum_i e_i u_i

The sensitivities are those of the continuous solution to the tolerance (the scheme's own
discrete-map derivative would need the derivative of ``A``). The error is controlled on the
states and, with ``sens``, on the sensitivities as well (weighted RMS norm as in
:func:`basinsx.models.integrate.heun`, step exponent 1/3); so the flow of a run with
sensitivities differs from one without within the tolerance. ``M`` is triangular for every
built-in model (each store drains into the next): it is then solved by substitution, skipping
its structural zeros, else LU-factorised. Steps end at day boundaries; a step whose solve
fails is rejected and quartered.

As :func:`basinsx.models.integrate.heun`, :func:`rosenbrock` is inlined into each model module's
cached ``_run`` (its cache keyed on this file too, :func:`basinsx.models.integrate.cache_on_kernels`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .implicit import lu_factor, lu_solve
from .integrate import model_rhs

#: The Rosenbrock-W schemes, in the order of their codes (``method`` minus 5 in the kernels).
SCHEMES = ("ros34pw2",)


def transformed(gamma, alpha, gam, b, b_hat):
    """Hairer & Wanner's transformed coefficients ``(a, c, m, e)`` of a Rosenbrock scheme given as
    ``alpha_ij``, ``gamma_ij`` (strictly lower), the diagonal ``gamma`` and the weights ``b``, ``b_hat``."""
    g = np.asarray(gam, float) + gamma * np.eye(len(b))
    gi = np.linalg.inv(g)
    c = -np.tril(gi, -1)
    return np.asarray(alpha, float) @ gi, c, np.asarray(b, float) @ gi, (np.asarray(b) - np.asarray(b_hat)) @ gi


_ROS34PW2 = transformed(
    4.3586652150845900e-01,
    [[0.0, 0.0, 0.0, 0.0], [8.7173304301691801e-01, 0.0, 0.0, 0.0],
     [8.4457060015369423e-01, -1.1299064236397981e-01, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]],
    [[0.0, 0.0, 0.0, 0.0], [-8.7173304301691801e-01, 0.0, 0.0, 0.0],
     [-9.0338057013044082e-01, 5.4180672388095326e-02, 0.0, 0.0],
     [2.4212380706095346e-01, -1.2232505839045147e+00, 5.4526025533510214e-01, 0.0]],
    [2.4212380706095346e-01, -1.2232505839045147e+00, 1.5452602553351023e+00, 4.3586652150845900e-01],
    [3.7810903145819369e-01, -9.6042292212423178e-02, 5.0e-01, 2.1793326075422950e-01],
)
#: Per scheme (padded to 4 stages): stage coefficients ``a`` and ``c``, weights ``m`` and error weights ``e``.
STAGE_A = np.array([_ROS34PW2[0]])
STAGE_C = np.array([_ROS34PW2[1]])
WEIGHTS = np.array([_ROS34PW2[2]])
ERR_WEIGHTS = np.array([_ROS34PW2[3]])
N_STAGES = np.array([4])
DIAGONAL = np.array([4.3586652150845900e-01])
#: step-size exponent ``1 / (q + 1)``, ``q`` the order of the embedded solution
EXPONENT = np.array([1.0 / 3.0])


@njit(cache=True)
def w_matrix(a, hg, w, wi):
    """``w = I - h gamma A`` and, if it is lower triangular, the reciprocals of its diagonal in ``wi``.

    Returns 1 (triangular), 0 (full) or -1 (a zero or non-finite diagonal of a triangular ``w``).
    """
    m = a.shape[0]
    lower = 1
    for i in range(m):
        for j in range(m):
            w[i, j] = -hg * a[i, j]
            if j > i and a[i, j] != 0.0:
                lower = 0
        w[i, i] += 1.0
    if lower:
        for i in range(m):
            wi[i] = 1.0 / w[i, i]
            if not math.isfinite(wi[i]) or w[i, i] == 0.0:
                return -1
    return lower


@njit(inline="always")
def rosenbrock(core, snow, scheme, theta, forcing, x0, s0, warmup, sens, rtol, atol, h0, hmin, hmax):
    """Integrate a model day by day with the Rosenbrock-W scheme ``SCHEMES[scheme]``; see the module docstring.

    Arguments and results as :func:`basinsx.models.integrate.heun` without ``fixed`` and ``n_sub``
    (``x0`` is overwritten with the states after the last day).
    """
    m = x0.shape[0]
    d = theta.shape[0]
    n = forcing.shape[1]
    nf = forcing.shape[0]
    nc = 1 + d if sens else 1  # columns of z = [x | S]
    nl = m * nc
    ns = N_STAGES[scheme]
    g = DIAGONAL[scheme]
    ex = EXPONENT[scheme]
    sa = STAGE_A[scheme]
    sc = STAGE_C[scheme]
    mw = WEIGHTS[scheme]
    ew = ERR_WEIGHTS[scheme]
    q = np.zeros(n - warmup)
    jac = np.zeros((n - warmup if sens else 0, d))
    z = np.zeros(nl)  # [x | S] row by row: z[i * nc] = x_i, z[i * nc + 1 + j] = S_ij
    for i in range(m):
        z[i * nc] = x0[i]
        if sens:
            for j in range(d):
                z[i * nc + 1 + j] = s0[i, j]
    u = np.zeros((4, nl))
    zi = np.zeros(nl)
    zn = np.zeros(nl)
    ue = np.zeros(nl)
    f = np.zeros(m)
    fx = np.zeros(m)
    ax = np.zeros((m, m))
    bx = np.zeros((m, d))
    ai = np.zeros((m, m))
    bi = np.zeros((m, d))
    dfdp = np.zeros(m)
    w = np.zeros((m, m))
    wi = np.zeros(m)
    piv = np.zeros(m, dtype=np.int64)
    ut = np.zeros((m, nc))
    forc = np.zeros(nf)
    xs = np.zeros(m)
    h = h0
    for day in range(n):
        for i in range(nf):
            forc[i] = forcing[i, day]
        for j in range(nc):
            z[(m - 1) * nc + j] = 0.0
        have_x = False  # A and B at the step's start (new forcing, or a new x)
        t = 0.0
        while t < 1.0 - 1e-12:
            h_prop = h
            h = min(h, 1.0 - t)
            hg = g * h
            if not have_x:
                for i in range(m):
                    xs[i] = z[i * nc]
                model_rhs(core, snow, xs, theta, forc, fx, ax, bx, dfdp, True)
                have_x = True
            lower = w_matrix(ax, hg, w, wi)
            ok = lower >= 0
            if ok and lower == 0:
                ok = lu_factor(w, piv)
            for st in range(ns):
                if not ok:
                    break
                if st == 0:
                    # the stage at the step's start: f, A and B are those of the matrix
                    _rows(u, 0, z, fx, ax, bx, nc, sens)
                else:
                    zi[:] = z
                    for p in range(st):
                        cp = sa[st, p]
                        for k in range(nl):
                            zi[k] += cp * u[p, k]
                    for i in range(m):
                        xs[i] = zi[i * nc]
                    model_rhs(core, snow, xs, theta, forc, f, ai, bi, dfdp, sens)
                    _rows(u, st, zi, f, ai, bi, nc, sens)
                # u[st] = h gamma (F + sum_p c[st, p] / h u[p]), then solved with the step's matrix
                for p in range(st):
                    cp = sc[st, p] / h
                    for k in range(nl):
                        u[st, k] += cp * u[p, k]
                for k in range(nl):
                    u[st, k] *= hg
                if lower:
                    for i in range(m):
                        for k in range(i):
                            wik = w[i, k]
                            if wik != 0.0:
                                for j in range(nc):
                                    u[st, i * nc + j] -= wik * u[st, k * nc + j]
                        for j in range(nc):
                            u[st, i * nc + j] *= wi[i]
                else:
                    for i in range(m):
                        for j in range(nc):
                            ut[i, j] = u[st, i * nc + j]
                    lu_solve(w, piv, ut)
                    for i in range(m):
                        for j in range(nc):
                            u[st, i * nc + j] = ut[i, j]
            err = np.inf
            if ok:
                err = 0.0
                zn[:] = z
                ue[:] = 0.0
                for p in range(ns):
                    cm = mw[p]
                    ce = ew[p]
                    for k in range(nl):
                        zn[k] += cm * u[p, k]
                        ue[k] += ce * u[p, k]
                for k in range(nl):
                    e = ue[k] / (atol + rtol * max(abs(z[k]), abs(zn[k])))
                    err += e * e
                err = math.sqrt(err / nl)
                ok = math.isfinite(err)
                if not ok:
                    err = np.inf
            accept = ok and (err <= 1.0 or h <= hmin)
            if not ok and h <= hmin:
                q[:] = np.nan  # no finite step even at the shortest: report divergence
                return q, jac
            if accept:
                for k in range(nl):
                    z[k] = zn[k]
                have_x = False
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
            q[day - warmup] = z[(m - 1) * nc]
            for j in range(1, nc):
                jac[day - warmup, j - 1] = z[(m - 1) * nc + j]
    for i in range(m):
        x0[i] = z[i * nc]
    return q, jac


@njit(inline="always")
def _rows(u, st, zs, f, a, b, nc, sens):
    """``u[st] = [f | A S + B]`` at the stage's ``zs``, over the structural nonzeros of ``A``."""
    m = f.shape[0]
    for i in range(m):
        r = i * nc
        u[st, r] = f[i]
        for j in range(1, nc):
            u[st, r + j] = b[i, j - 1]
        if sens:
            for q in range(m):
                aiq = a[i, q]
                if aiq != 0.0:
                    for j in range(1, nc):
                        u[st, r + j] += aiq * zs[q * nc + j]
