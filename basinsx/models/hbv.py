"""Daily HBV (HBV-light structure, Seibert & Vis 2012) with forward-mode sensitivities.

Per day, with precipitation ``P``, potential evapotranspiration ``E`` and mean temperature ``T``:

* **Snow**: ``P`` falls as snow ``sfcf P`` when ``T < tt``, as rain otherwise. Melt
  ``min(cfmax (T - tt), snowpack)`` for ``T > tt`` goes to the liquid water held in the pack;
  refreezing ``min(cfr cfmax (tt - T), meltwater)`` for ``T < tt`` goes back to the pack; the pack
  holds liquid water up to ``cwh snowpack``, the rest leaves it (``tosoil``).
* **Soil moisture** ``SM``: of the water input ``I = rain + tosoil`` the fraction ``(SM/fc)^beta``
  (at most 1) recharges the upper zone, the rest fills ``SM``; what exceeds ``fc`` goes to the
  upper zone too. Actual evapotranspiration ``min(SM, E min(1, SM/(lp fc)))``.
* **Response**: the upper zone ``SUZ`` percolates ``min(perc, SUZ)`` to the lower zone ``SLZ``,
  then releases ``Q0 = k0 max(SUZ - uzl, 0)`` and, from what is left, ``Q1 = k1 SUZ``; the lower
  zone releases ``Q2 = k2 SLZ`` (in this order, as Beck et al. 2020 and hydrodl2 compute it, so
  any ``k <= 1`` keeps the stores non-negative; HBV-light's manual takes Q0 and Q1 from one level).
* **Routing**: ``Q0 + Q1 + Q2`` is spread over the next ``ceil(maxbas)`` days by the triangular
  weights ``w_i = G(i + 1) - G(i)``, ``G`` the integral of the isosceles triangle of base ``maxbas``
  and area 1 (so a non-integer ``maxbas`` is smooth in the weights, ``maxbas = 1`` is no routing).

All stores start empty (no parameter dependence of the initial state). The sensitivities are
the exact derivatives of this discrete map, carried step by step as in ``_grcore`` (forward
mode). Thresholds (``T`` against ``tt``, and every ``min``/``max``) take the derivative of the
branch that is active: one-sided derivatives, no smoothing. The rain/snow switch makes the flow
jump where ``tt`` crosses a day's temperature (its derivative there is not defined; ``J`` gives
the derivative of the branch, i.e. of the melt and refreezing terms); the other switches are
kinks (continuous flow, jumping derivative). The weights ``G`` are continuously differentiable in
``maxbas``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .base import ModelSpec, Parameter

# parameter indices in theta
TT, CFMAX, SFCF, CFR, CWH, FC, LP, BETA, PERC, UZL, K0, K1, K2, MAXBAS = range(14)

#: HBV-light parameters in the order of ``theta``; ranges of Beck et al. (2020) as hydrodl2 codes them (``sfcf``,
#: ``maxbas``: see ``docs/models.md``).
PARAMETERS = (
    Parameter("tt", "degC", (-2.5, 2.5), description="threshold temperature of snowfall and melt"),
    Parameter("cfmax", "mm degC-1 d-1", (0.5, 10.0), description="degree-day factor"),
    Parameter("sfcf", "1", (0.4, 1.2), description="snowfall correction factor"),
    Parameter("cfr", "1", (0.0, 0.1), description="refreezing coefficient"),
    Parameter("cwh", "1", (0.0, 0.2), description="water holding capacity of the snowpack"),
    Parameter("fc", "mm", (50.0, 1000.0), positive=True, description="soil moisture capacity (field capacity)"),
    Parameter("lp", "1", (0.2, 1.0), positive=True, description="fraction of fc above which ET is potential"),
    Parameter("beta", "1", (1.0, 6.0), positive=True, description="shape of the soil recharge function"),
    Parameter("perc", "mm d-1", (0.0, 10.0), description="maximum percolation to the lower zone"),
    Parameter("uzl", "mm", (0.0, 100.0), description="upper-zone threshold of the quick outflow Q0"),
    Parameter("k0", "d-1", (0.05, 0.9), description="quick upper-zone recession coefficient"),
    Parameter("k1", "d-1", (0.01, 0.5), description="upper-zone recession coefficient"),
    Parameter("k2", "d-1", (0.001, 0.2), description="lower-zone recession coefficient"),
    Parameter("maxbas", "d", (1.0, 7.0), positive=True, description="base of the triangular routing function"),
)
STATES = ("snowpack", "meltwater", "soil", "upper", "lower", "routing")
#: Days of generated runoff the ``routing`` state holds (newest first): enough for ``maxbas <= 8``.
ROUTING_DAYS = 7


@njit(cache=True)
def _triangle_cdf(u, m):
    """Share of the triangle of base ``m`` (area 1) left of ``u`` and its derivative with respect to ``m``."""
    if u <= 0.0:
        return 0.0, 0.0
    if u >= m:
        return 1.0, 0.0
    if u <= 0.5 * m:
        return 2.0 * u * u / (m * m), -4.0 * u * u / (m * m * m)
    v = m - u
    return 1.0 - 2.0 * v * v / (m * m), -4.0 * u * v / (m * m * m)


@njit(cache=True)
def maxbas_weights(maxbas):
    """The triangular routing weights (``ceil(maxbas)`` days) and their derivatives with respect to ``maxbas``."""
    nb = max(1, int(math.ceil(maxbas)))
    w = np.zeros(nb)
    dw = np.zeros(nb)
    for i in range(nb):
        a, da = _triangle_cdf(float(i + 1), maxbas)
        b, db = _triangle_cdf(float(i), maxbas)
        w[i] = a - b
        dw[i] = da - db
    return w, dw


@njit(cache=True)
def hbv_run(theta, forcing, warmup, sens, x0):
    """Run HBV with forward-mode sensitivities and keep the water-balance terms.

    Parameters
    ----------
    theta : ndarray (14,)
        Parameters of :data:`PARAMETERS`, physical units.
    forcing : ndarray (3, T)
        ``prcp, pet, tmean`` (mm/d, mm/d, degC); PET already >= 0.
    warmup : int
        Days run before the reported period.
    sens : bool
        Carry the derivatives; otherwise ``J`` is empty.
    x0 : ndarray (5 + ROUTING_DAYS,)
        Initial states in the order of :data:`STATES` (``routing``: the runoff generated on the last
        :data:`ROUTING_DAYS` days, newest first); NaN for the default, an empty store. Constants: their
        derivative is zero.

    Returns
    -------
    q : ndarray (T - warmup,)
        Routed daily flow, mm/d.
    J : ndarray (T - warmup, 14) or (0, 14)
        d q / d theta.
    water_in : float
        Rain plus corrected snowfall (``sfcf`` times the snow) over the whole run, mm.
    et : float
        Actual evapotranspiration over the whole run, mm.
    storage : ndarray (6,)
        Final storages of :data:`STATES`, mm (``routing``: generated runoff not yet released).
    x_end : ndarray (5 + ROUTING_DAYS,)
        The states after the last day, in the layout of ``x0``.
    """
    d = theta.shape[0]
    n = forcing.shape[1]
    nd = d if sens else 0
    tt, cfmax, sfcf, cfr, cwh = theta[TT], theta[CFMAX], theta[SFCF], theta[CFR], theta[CWH]
    fc, lp, beta, perc, uzl = theta[FC], theta[LP], theta[BETA], theta[PERC], theta[UZL]
    k0, k1, k2 = theta[K0], theta[K1], theta[K2]
    w, dwm = maxbas_weights(theta[MAXBAS])
    nb = w.shape[0]

    q = np.zeros(n - warmup)
    jac = np.zeros((n - warmup if sens else 0, d))
    x = np.where(np.isnan(x0), 0.0, x0)
    sp = x[0]  # snowpack
    wc = x[1]  # liquid water in the snowpack
    sm = x[2]  # soil moisture
    uz = x[3]  # upper zone
    lz = x[4]  # lower zone
    nh = max(nb, ROUTING_DAYS)
    hist = np.zeros(nh)  # generated runoff of the last days, newest first (shifted before each day)
    hist[:ROUTING_DAYS] = x[5:]
    dsp = np.zeros(nd)
    dwc = np.zeros(nd)
    dsm = np.zeros(nd)
    duz = np.zeros(nd)
    dlz = np.zeros(nd)
    dhist = np.zeros((nh, nd))
    dx = np.zeros(nd)  # scratch: derivative of the flux at hand
    dto = np.zeros(nd)
    drec = np.zeros(nd)
    dexc = np.zeros(nd)
    dpc = np.zeros(nd)
    water_in = 0.0
    et_sum = 0.0

    for k in range(n):
        p = forcing[0, k]
        e = forcing[1, k]
        t = forcing[2, k]

        # snow: the switch at T = tt passes no derivative (one-sided: the branch taken)
        cold = t < tt
        if cold:
            rain = 0.0
            sp += sfcf * p
            if sens:
                dsp[SFCF] += p
        else:
            rain = p
        water_in += rain + (sfcf * p if cold else 0.0)
        if t > tt:
            melt = cfmax * (t - tt)
            if melt < sp:
                for j in range(nd):
                    dx[j] = 0.0
                if sens:
                    dx[TT] = -cfmax
                    dx[CFMAX] = t - tt
            else:
                melt = sp
                for j in range(nd):
                    dx[j] = dsp[j]
            sp -= melt
            wc += melt
            for j in range(nd):
                dsp[j] -= dx[j]
                dwc[j] += dx[j]
        elif cold:
            refr = cfr * cfmax * (tt - t)
            if refr <= wc:
                for j in range(nd):
                    dx[j] = 0.0
                if sens:
                    dx[TT] = cfr * cfmax
                    dx[CFMAX] = cfr * (tt - t)
                    dx[CFR] = cfmax * (tt - t)
                if refr == wc:  # a tie (e.g. cfr = cwh = 0): min(refr, wc) grows by the lesser with a parameter
                    for j in range(nd):
                        dx[j] = min(dx[j], dwc[j])
            else:
                refr = wc
                for j in range(nd):
                    dx[j] = dwc[j]
            sp += refr
            wc -= refr
            for j in range(nd):
                dsp[j] += dx[j]
                dwc[j] -= dx[j]
        tosoil = wc - cwh * sp
        if tosoil > 0.0:
            for j in range(nd):
                dto[j] = dwc[j] - cwh * dsp[j]
            if sens:
                dto[CWH] -= sp
            wc -= tosoil
            for j in range(nd):
                dwc[j] -= dto[j]
        else:
            tosoil = 0.0
            for j in range(nd):
                dto[j] = 0.0

        # soil moisture: recharge (SM/fc)^beta of the input, excess over fc, then ET
        inflow = rain + tosoil
        x = sm / fc
        if x >= 1.0:
            sw = 1.0
            for j in range(nd):
                dx[j] = 0.0
        elif x > 0.0:
            sw = x**beta
            for j in range(nd):
                dxr = dsm[j] / fc - (x / fc if j == FC else 0.0)
                dx[j] = beta * sw / x * dxr + (sw * math.log(x) if j == BETA else 0.0)
        else:
            sw = 0.0
            for j in range(nd):
                dx[j] = 0.0
        rec = inflow * sw
        for j in range(nd):
            drec[j] = dto[j] * sw + inflow * dx[j]
            dsm[j] += dto[j] - drec[j]
        sm += inflow - rec
        exc = sm - fc
        if exc > 0.0:
            for j in range(nd):
                dexc[j] = dsm[j] - (1.0 if j == FC else 0.0)
                dsm[j] = 1.0 if j == FC else 0.0
            sm = fc
        else:
            exc = 0.0
            for j in range(nd):
                dexc[j] = 0.0
        lpfc = lp * fc
        ef = sm / lpfc
        if ef >= 1.0:
            eta = e
            for j in range(nd):
                dx[j] = 0.0
        else:
            eta = e * ef
            for j in range(nd):
                dx[j] = e * (dsm[j] / lpfc - (ef / lp if j == LP else 0.0) - (ef / fc if j == FC else 0.0))
        if eta > sm:
            eta = sm
            for j in range(nd):
                dx[j] = dsm[j]
        sm -= eta
        et_sum += eta
        for j in range(nd):
            dsm[j] -= dx[j]

        # response: percolation, then Q0 and Q1 from the same upper-zone level, Q2 from the lower zone
        uz += rec + exc
        for j in range(nd):
            duz[j] += drec[j] + dexc[j]
        if uz > perc:
            pc = perc
            for j in range(nd):
                dpc[j] = 1.0 if j == PERC else 0.0
        else:
            pc = uz
            for j in range(nd):
                dpc[j] = duz[j]
        uz -= pc
        lz += pc
        over = uz - uzl
        q0 = k0 * over if over > 0.0 else 0.0
        uz -= q0
        q1 = k1 * uz
        uz -= q1
        q2 = k2 * lz
        lz -= q2
        for j in range(nd):
            duz[j] -= dpc[j]
            dlz[j] += dpc[j]
            dq0 = k0 * (duz[j] - (1.0 if j == UZL else 0.0)) + (over if j == K0 else 0.0) if over > 0.0 else 0.0
            duz[j] -= dq0
            dq1 = k1 * duz[j] + (uz + q1 if j == K1 else 0.0)
            duz[j] -= dq1
            dq2 = k2 * dlz[j] + (lz + q2 if j == K2 else 0.0)
            dlz[j] -= dq2
            dx[j] = dq0 + dq1 + dq2

        # triangular routing of the generated runoff
        for i in range(nh - 1, 0, -1):
            hist[i] = hist[i - 1]
            for j in range(nd):
                dhist[i, j] = dhist[i - 1, j]
        hist[0] = q0 + q1 + q2
        for j in range(nd):
            dhist[0, j] = dx[j]
        if k >= warmup:
            qk = 0.0
            for i in range(nb):
                qk += w[i] * hist[i]
            q[k - warmup] = qk
            if sens:
                for j in range(d):
                    s = 0.0
                    for i in range(nb):
                        s += w[i] * dhist[i, j]
                    jac[k - warmup, j] = s
                for i in range(nb):
                    jac[k - warmup, MAXBAS] += dwm[i] * hist[i]

    # runoff generated but not yet released: the share of each of the last days still to come
    pending = 0.0
    for i in range(nb - 1):
        released = 0.0
        for m in range(i + 1):
            released += w[m]
        pending += (1.0 - released) * hist[i]
    storage = np.array([sp, wc, sm, uz, lz, pending])
    x_end = np.concatenate((np.array([sp, wc, sm, uz, lz]), hist[:ROUTING_DAYS]))
    return q, jac, water_in, et_sum, storage, x_end


def hbv_kernel(theta, forcing, warmup, sens, snow, x0=None):
    """Run HBV and its Jacobian (see :func:`hbv_run`); ``snow`` is always 0 (the model has its own snow routine).

    Without ``x0`` returns ``(q, J)``, with it ``(q, J, x_end)`` (the contract of ``ModelSpec.kernel``).
    """
    if x0 is not None and theta[MAXBAS] > ROUTING_DAYS + 1:
        raise ValueError(f"hbv: initial and final states hold {ROUTING_DAYS} days of routing, enough for maxbas "
                         f"<= {ROUTING_DAYS + 1}; got maxbas = {theta[MAXBAS]}")
    start = np.full(5 + ROUTING_DAYS, np.nan) if x0 is None else np.asarray(x0, dtype=np.float64)
    q, jac, _, _, _, x_end = hbv_run(theta, forcing, warmup, sens, start)
    return (q, jac) if x0 is None else (q, jac, x_end)


SPEC = ModelSpec("hbv", PARAMETERS, STATES, hbv_kernel, forcings=("prcp", "pet", "tmean"), snow=(),
                 continuation=True, state_sizes={"routing": ROUTING_DAYS},
                 reference="Bergström 1995; Lindström et al. 1997; Seibert & Vis 2012 (HBV-light)")
