"""GR4J as a continuous-time ODE (Santos et al. 2018 state-space form; Vrugt et al. 2026).

States ``[S, U1_1, U1_2, U2_1..U2_4, R, q_cum]``: the unit hydrographs are replaced by Nash
cascades (UH1: 2 linear stores, UH2: 4 linear stores, each with residence time ``x4 / 2``),
and the daily store updates by their instantaneous rates::

    P_n = smooth_pos(P - E),  E_n = smooth_pos(E - P),  r = S / x1
    P_s = P_n (1 - r^2),  E_s = E_n r (2 - r),  Perc = x1 r^5 / (4 (9/4)^4)
    dS/dt = P_s - E_s - Perc,  P_r = P_n - P_s + Perc  (0.9 to UH1, 0.1 to UH2)
    rho = smooth_pos(R / x3),  F = x2 rho^3.5,  Q_r = x3 rho^5 / 4
    dR/dt = Q_UH1 + F - Q_r,  Q_d = smooth_pos(Q_UH2 + F),  dq_cum/dt = Q_r + Q_d

The percolation and routing outflows are the small-step limits of GR4J's daily formulas.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .base import SNOW_CODES, ModelSpec
from .gr4j import INIT_LEVELS, PARAMETERS
from .implicit import dirk
from .integrate import SOLVER_OPTIONS, Kernel, cache_on_kernels, heun, rhs_functions
from .rosenbrock import rosenbrock
from .smooth import smooth_pos

_C4 = 4.0 * 25.62890625  # 4 (9/4)^4
# Smoothing width of the thresholds (mm/d; store fraction for rho): wide enough that the
# right-hand side stays smooth on the scale of a finite-difference check or a Heun step.
EPS = 1e-3


@njit(cache=True)
def rhs_core(x, th, p, e, f, a, b, dfdp, jac):
    """Right-hand side of the states and its Jacobians ``a = df/dx``, ``b = df/dtheta``, ``dfdp``."""
    x1, x2, x3, x4 = th[0], th[1], th[2], th[3]
    s, r_ = x[0], x[7]
    k = 2.0 / x4
    pn, dpn = smooth_pos(p - e, EPS)
    en, den = smooth_pos(e - p, EPS)
    r = s / x1
    r4 = r * r * r * r
    ps = pn * (1.0 - r * r)
    es = en * r * (2.0 - r)
    perc = x1 * r4 * r / _C4
    pr = pn - ps + perc
    rho, drho = smooth_pos(r_ / x3, EPS)
    rho25 = rho * rho * np.sqrt(rho)
    fx = x2 * rho25 * rho
    qr = x3 * rho * rho * rho * rho * rho / 4.0
    q1 = k * x[2]
    z = k * x[6] + fx
    qd, dqd = smooth_pos(z, EPS)

    f[0] = ps - es - perc
    f[1] = 0.9 * pr - k * x[1]
    f[2] = k * (x[1] - x[2])
    f[3] = 0.1 * pr - k * x[3]
    for i in range(4, 7):
        f[i] = k * (x[i - 1] - x[i])
    f[7] = q1 + fx - qr
    f[8] = qr + qd
    if not jac:
        return
    a[:, :] = 0.0
    b[:, :] = 0.0
    # production store
    ps_s = -2.0 * pn * r / x1
    es_s = en * (2.0 - 2.0 * r) / x1
    perc_s = 5.0 * r4 / _C4
    ps_x1 = -ps_s * r
    es_x1 = -es_s * r
    perc_x1 = -4.0 * r4 * r / _C4
    a[0, 0] = ps_s - es_s - perc_s
    b[0, 0] = ps_x1 - es_x1 - perc_x1
    ps_p = dpn * (1.0 - r * r)
    es_p = -den * r * (2.0 - r)
    dfdp[0] = ps_p - es_p
    pr_s = -ps_s + perc_s
    pr_x1 = -ps_x1 + perc_x1
    pr_p = dpn - ps_p
    # Nash cascades: d(k u)/dx4 = -k u / x4
    a[1, 0] = 0.9 * pr_s
    b[1, 0] = 0.9 * pr_x1
    dfdp[1] = 0.9 * pr_p
    a[3, 0] = 0.1 * pr_s
    b[3, 0] = 0.1 * pr_x1
    dfdp[3] = 0.1 * pr_p
    a[1, 1] = -k
    b[1, 3] = k * x[1] / x4
    a[3, 3] = -k
    b[3, 3] = k * x[3] / x4
    for i in (2, 4, 5, 6):
        a[i, i - 1] = k
        a[i, i] = -k
        b[i, 3] = -k * (x[i - 1] - x[i]) / x4
    for i in (2, 4, 5, 6, 7, 8):
        dfdp[i] = 0.0
    # exchange and routing store
    rho_r = drho / x3
    rho_x3 = -drho * r_ / (x3 * x3)
    f_r = 3.5 * x2 * rho25 * rho_r
    f_x3 = 3.5 * x2 * rho25 * rho_x3
    f_x2 = rho25 * rho
    qr_rho = 1.25 * x3 * rho * rho * rho * rho
    qr_r = qr_rho * rho_r
    qr_x3 = rho * rho * rho * rho * rho / 4.0 + qr_rho * rho_x3
    a[7, 2] = k
    a[7, 7] = f_r - qr_r
    b[7, 1] = f_x2
    b[7, 2] = f_x3 - qr_x3
    b[7, 3] = -q1 / x4
    # outflow
    a[8, 7] = qr_r + dqd * f_r
    a[8, 6] = dqd * k
    b[8, 1] = dqd * f_x2
    b[8, 2] = qr_x3 + dqd * f_x3
    b[8, 3] = -dqd * k * x[6] / x4


@njit(cache=True)
def initial(theta):
    """Initial states (airGR's store levels, empty cascades) and their parameter derivatives."""
    x0 = np.zeros(9)
    s0 = np.zeros((9, 4))
    x0[0] = INIT_LEVELS[0] * theta[0]
    x0[7] = INIT_LEVELS[1] * theta[2]
    s0[0, 0] = INIT_LEVELS[0]
    s0[7, 2] = INIT_LEVELS[1]
    return x0, s0


@njit(cache=True)
def _run(theta, forcing, x0, s0, warmup, sens, snow, method, n_sub, rtol, atol, h0, hmin, hmax):
    if method >= 5:
        return rosenbrock(rhs_core, snow, method - 5, theta, forcing, x0, s0, warmup, sens, rtol, atol, h0, hmin,
                          hmax)
    if method >= 2:
        return dirk(rhs_core, snow, method - 2, theta, forcing, x0, s0, warmup, sens, rtol, atol, h0, hmin, hmax)
    return heun(rhs_core, snow, theta, forcing, x0, s0, warmup, sens, method == 1, n_sub, rtol, atol, h0, hmin, hmax)


cache_on_kernels(_run)
_rhs, _rhs_snow = rhs_functions(rhs_core)
#: Per-method tolerances: at large ``x1`` (small flows) the implicit schemes need tighter ones than their
#: defaults for the flow to stay within 1e-3 of a tight reference (``benchmarks/ode_integrators.py --lhs``).
TOLERANCE = {"sdirk": 3e-4, "trbdf2": 5e-6, "esdirk3": 5e-6, "ros34pw2": 3e-5}
SPEC = ModelSpec("gr4j_ode", PARAMETERS,
                 ("production", "uh1_1", "uh1_2", "uh2_1", "uh2_2", "uh2_3", "uh2_4", "routing", "q_cum"),
                 Kernel(initial, _run), solver_options={**SOLVER_OPTIONS, "rtol": TOLERANCE, "atol": TOLERANCE},
                 snow=tuple(SNOW_CODES), reference="Santos et al. 2018")
