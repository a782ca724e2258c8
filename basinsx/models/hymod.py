"""HYMOD (Boyle 2001; Vrugt et al. 2026) as a continuous-time ODE with smoothed thresholds.

States ``[S, F1, F2, F3, S_s, q_cum]``: a soil store with a Pareto distribution of capacities,
three linear quick-flow stores and one slow store::

    u = smooth_pos(1 - S / cmax)                       (unfilled fraction, >= 0)
    P_e = P (1 - u^bexp),  E = E_p (1 - u)             (excess rain; ET ~ E_p min(S / cmax, 1))
    dS/dt = P - P_e - E
    dF1/dt = alpha P_e - kq F1,  dF2/dt = kq (F1 - F2),  dF3/dt = kq (F2 - F3)
    dS_s/dt = (1 - alpha) P_e - ks S_s,  dq_cum/dt = kq F3 + ks S_s
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .base import SNOW_CODES, ModelSpec, Parameter
from .implicit import dirk
from .integrate import SOLVER_OPTIONS, Kernel, cache_on_kernels, heun, rhs_functions
from .rosenbrock import rosenbrock
from .smooth import smooth_pos

#: Smoothing width of the unfilled soil fraction; it bounds u^(bexp - 1) near saturation,
#: which would otherwise make the soil store infinitely stiff for bexp < 1.
EPS_U = 1e-2


@njit(cache=True)
def rhs_core(x, th, p, e, f, a, b, dfdp, jac):
    """Right-hand side of the states and its Jacobians ``a = df/dx``, ``b = df/dtheta``, ``dfdp``."""
    cmax, bexp, alpha, ks, kq = th[0], th[1], th[2], th[3], th[4]
    s = x[0]
    u, du = smooth_pos(1.0 - s / cmax, EPS_U)
    ub = u**bexp
    pe = p * (1.0 - ub)
    f[0] = p * ub - e * (1.0 - u)
    f[1] = alpha * pe - kq * x[1]
    f[2] = kq * (x[1] - x[2])
    f[3] = kq * (x[2] - x[3])
    f[4] = (1.0 - alpha) * pe - ks * x[4]
    f[5] = kq * x[3] + ks * x[4]
    if not jac:
        return
    a[:, :] = 0.0
    b[:, :] = 0.0
    u_s = -du / cmax
    u_c = du * s / (cmax * cmax)
    dub = bexp * ub / u  # u > 0 (smooth_pos): one pow fewer than u**(bexp - 1)
    ub_s = dub * u_s
    ub_c = dub * u_c
    ub_b = ub * math.log(u)
    a[0, 0] = p * ub_s + e * u_s
    b[0, 0] = p * ub_c + e * u_c
    b[0, 1] = p * ub_b
    dfdp[0] = ub
    pe_p = 1.0 - ub
    for row, share in ((1, alpha), (4, 1.0 - alpha)):
        a[row, 0] = -share * p * ub_s
        b[row, 0] = -share * p * ub_c
        b[row, 1] = -share * p * ub_b
        dfdp[row] = share * pe_p
    b[1, 2] = pe
    b[4, 2] = -pe
    a[1, 1] = -kq
    b[1, 4] = -x[1]
    for i in (2, 3):
        a[i, i - 1] = kq
        a[i, i] = -kq
        b[i, 4] = x[i - 1] - x[i]
        dfdp[i] = 0.0
    a[4, 4] = -ks
    b[4, 3] = -x[4]
    a[5, 3] = kq
    a[5, 4] = ks
    b[5, 3] = x[4]
    b[5, 4] = x[3]
    dfdp[5] = 0.0


@njit(cache=True)
def initial(theta):
    """Empty stores (the warm-up period fills them)."""
    return np.zeros(6), np.zeros((6, 5))


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
SPEC = ModelSpec(
    "hymod",
    (Parameter("cmax", "mm", (10.0, 1000.0), positive=True, description="maximum soil storage"),
     Parameter("bexp", "1", (0.1, 2.0), description="Pareto shape of the storage distribution"),
     Parameter("alpha", "1", (0.1, 0.99), description="quick-flow fraction"),
     Parameter("ks", "d-1", (0.001, 0.1), description="slow-store rate"),
     Parameter("kq", "d-1", (0.1, 0.99), description="quick-store rate")),
    ("soil", "quick_1", "quick_2", "quick_3", "slow", "q_cum"),
    # ros34pw2 meets the flow bound on 200 Latin-hypercube sets and beats adaptive Heun (docs/benchmarks/models.md)
    Kernel(initial, _run), solver_options={**SOLVER_OPTIONS, "method": "ros34pw2"}, snow=tuple(SNOW_CODES),
    reference="Boyle 2001",
)
