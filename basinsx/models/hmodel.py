"""HMODEL (Schoups & Vrugt 2010; Vrugt et al. 2026) as a continuous-time ODE.

States ``[I, S_u, S_f, S_s, q_cum]``: interception, unsaturated zone, fast and slow linear
reservoirs. Thresholds use the normalised exponential ``ef(r, a) = (1 - e^(-a r)) / (1 - e^(-a))``
(0 at r = 0, 1 at r = 1, linear for a -> 0)::

    r_i = I / imax,  E_i = E_p ef(r_i, 5),  P_e = P ef(r_i, -5)          (throughfall when full)
    r_u = S_u / sumax,  E_u = (E_p - E_i) ef(r_u, alpha_E),  Perc = qsmax ef(r_u, alpha_F)
    R_u = P_e r_u                                                      (saturation excess)
    dI/dt = P - E_i - P_e,  dS_u/dt = P_e - R_u - E_u - Perc
    dS_f/dt = R_u - S_f / kf,  dS_s/dt = Perc - S_s / ks,  dq_cum/dt = S_f / kf + S_s / ks

The shape 5 of the interception functions is fixed (not calibrated). ``kf`` and ``ks`` have
lower bounds of 0.1 d and 1 d instead of 0 (a zero residence time is singular).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .base import SNOW_CODES, ModelSpec, Parameter
from .implicit import dirk
from .integrate import SOLVER_OPTIONS, Kernel, cache_on_kernels, heun, rhs_functions
from .rosenbrock import rosenbrock
from .smooth import exp_flux

A_I = 5.0  # shape of the interception evaporation / throughfall functions


@njit(cache=True)
def rhs_core(x, th, p, e, f, a, b, dfdp, jac):
    """Right-hand side of the states and its Jacobians ``a = df/dx``, ``b = df/dtheta``, ``dfdp``."""
    imax, sumax, qsmax, ae, af, kf, ks = th[0], th[1], th[2], th[3], th[4], th[5], th[6]
    ri = x[0] / imax
    ru = x[1] / sumax
    ei, ei_r, _ = exp_flux(ri, A_I)
    pf, pf_r, _ = exp_flux(ri, -A_I)
    eu, eu_r, eu_a = exp_flux(ru, ae)
    pc, pc_r, pc_a = exp_flux(ru, af)
    evi = e * ei
    pe = p * pf
    epr = e - evi
    evu = epr * eu
    perc = qsmax * pc
    rsu = pe * ru
    f[0] = p - evi - pe
    f[1] = pe - rsu - evu - perc
    f[2] = rsu - x[2] / kf
    f[3] = perc - x[3] / ks
    f[4] = x[2] / kf + x[3] / ks
    if not jac:
        return
    a[:, :] = 0.0
    b[:, :] = 0.0
    ri_m = -ri / imax
    ru_m = -ru / sumax
    evi_i = e * ei_r / imax
    evi_m = e * ei_r * ri_m
    pe_i = p * pf_r / imax
    pe_m = p * pf_r * ri_m
    evu_i = -evi_i * eu
    evu_m = -evi_m * eu
    evu_u = epr * eu_r / sumax
    evu_s = epr * eu_r * ru_m
    perc_u = qsmax * pc_r / sumax
    perc_s = qsmax * pc_r * ru_m
    rsu_i = pe_i * ru
    rsu_m = pe_m * ru
    rsu_u = pe / sumax
    rsu_s = pe * ru_m
    # interception
    a[0, 0] = -evi_i - pe_i
    b[0, 0] = -evi_m - pe_m
    dfdp[0] = 1.0 - pf
    # unsaturated zone
    a[1, 0] = pe_i - rsu_i - evu_i
    a[1, 1] = -rsu_u - evu_u - perc_u
    b[1, 0] = pe_m - rsu_m - evu_m
    b[1, 1] = -rsu_s - evu_s - perc_s
    b[1, 2] = -pc
    b[1, 3] = -epr * eu_a
    b[1, 4] = -qsmax * pc_a
    dfdp[1] = pf * (1.0 - ru)
    # fast and slow reservoirs, outflow
    a[2, 0] = rsu_i
    a[2, 1] = rsu_u
    a[2, 2] = -1.0 / kf
    b[2, 0] = rsu_m
    b[2, 1] = rsu_s
    b[2, 5] = x[2] / (kf * kf)
    dfdp[2] = pf * ru
    a[3, 1] = perc_u
    a[3, 3] = -1.0 / ks
    b[3, 1] = perc_s
    b[3, 2] = pc
    b[3, 4] = qsmax * pc_a
    b[3, 6] = x[3] / (ks * ks)
    dfdp[3] = 0.0
    a[4, 2] = 1.0 / kf
    a[4, 3] = 1.0 / ks
    b[4, 5] = -x[2] / (kf * kf)
    b[4, 6] = -x[3] / (ks * ks)
    dfdp[4] = 0.0


@njit(cache=True)
def initial(theta):
    """Empty stores (the warm-up period fills them)."""
    return np.zeros(5), np.zeros((5, 7))


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
#: ros34pw2 (the default: it meets the flow bound on 200 Latin-hypercube sets and beats adaptive Heun) needs a
#: tighter tolerance than its default for the flow to stay within 1e-3 of a tight reference across the bounds
#: (the interception store's kinks; ``benchmarks/ode_integrators.py --lhs``).
TOLERANCE = {"ros34pw2": 3e-5}
SPEC = ModelSpec(
    "hmodel",
    (Parameter("imax", "mm", (0.5, 10.0), positive=True, description="interception capacity"),
     Parameter("sumax", "mm", (10.0, 1000.0), positive=True, description="unsaturated-zone capacity"),
     Parameter("qsmax", "mm d-1", (0.0, 100.0), description="maximum percolation"),
     Parameter("alpha_e", "1", (1e-6, 100.0), description="evaporation shape"),
     Parameter("alpha_f", "1", (-10.0, 10.0), description="percolation shape"),
     Parameter("kf", "d", (0.1, 10.0), positive=True, description="fast-reservoir residence time"),
     Parameter("ks", "d", (1.0, 150.0), positive=True, description="slow-reservoir residence time")),
    ("interception", "unsaturated", "fast", "slow", "q_cum"),
    Kernel(initial, _run), solver_options={**SOLVER_OPTIONS, "method": "ros34pw2", "rtol": TOLERANCE,
                                           "atol": TOLERANCE},
    snow=tuple(SNOW_CODES), reference="Schoups & Vrugt 2010",
)
