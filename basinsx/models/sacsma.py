"""Daily SAC-SMA (Sacramento Soil Moisture Accounting, Burnash 1995) with gamma unit-hydrograph routing.

The soil-moisture accounting follows the NWS subroutine ``FLAND1`` (the code Newman et al. 2015
ran as the CAMELS benchmark) operation by operation, without frozen ground:

* **ET** (demand ``E`` = PET): ``E1 = E UZTWC/UZTWM`` from upper-zone tension water, the unmet
  rest from upper-zone free water (``E2``); free water moves to tension water when it is
  relatively fuller (``UZRAT``); ``E3 = RED LZTWC/(UZTWM + LZTWM)`` from lower-zone tension
  water, which is resupplied from the lower-zone free water above the reserve ``RSERV``;
  ``E5`` from the additional impervious area store ``ADIMC``.
* **Input**: the water input ``P`` first fills ``UZTWC``; the excess ``TWX`` is spread over
  ``NINC = int(1 + 0.2 (UZFWC + TWX))`` increments of ``1/NINC`` day (the internal time-step
  subdivision: no increment moves more than 5 mm), each with baseflow
  ``LZFPC (1 - (1 - LZPK)^(1/NINC))`` and ``LZFSC (1 - (1 - LZSK)^(1/NINC))``, percolation
  ``(LZFPM dlzp + LZFSM dlzs) UZFWC/UZFWM (1 + ZPERC DEFR^REXP)`` limited by ``UZFWC`` and the
  lower-zone deficiency, interflow ``UZFWC (1 - (1 - UZK)^(1/NINC))``, the split of percolation
  between tension (``1 - PFREE``) and the primary/supplemental free stores, surface runoff of
  the excess over ``UZFWM``, and direct runoff ``PINC ((ADIMC - UZTWC)/LZTWM)^2`` of the
  ADIMP area.
* **Channel inflow** ``TCI = P PCTIM + ADIMP (direct + surface runoff of the ADIMP area) +
  PAREA (surface runoff + interflow + baseflow)``, ``PAREA = 1 - PCTIM - ADIMP``.
* **Routing**: ``q_t = sum_i u_i TCI_(t-i+1)``, ``u_i`` proportional to the gamma density of
  shape ``uh_shape`` and scale ``uh_scale`` at ``t = i`` days (``i = 1, 2, ...``), normalised
  to sum 1 (``DUAMEL`` of the NCAR SAC-SMA/Snow-17 code; the ordinates are cut where they fall
  below 1e-12 of the sum, past the mode, at most :data:`NUH`).

``RIVA = SIDE = 0`` (no riparian ET, no deep recharge) and ``RSERV = 0.3`` are fixed, as in the
13-parameter SAC-SMA of Duan et al. (1992) and Vrugt et al. (2003), whose ranges the
parameters take. States (``Model.states``): the five soil stores, ``adimc`` and ``uh``, the channel
inflow of the last :data:`NUH` days (newest first), which lets a run continue another exactly
(``initial_states``, ``return_states``). Default start: the five soil stores half full,
``ADIMC = 0.5 (UZTWM + LZTWM)``, no inflow history.

Sensitivities are forward mode: every state carries its derivative with respect to ``theta``
through every operation of the daily map, the increments included (``NINC`` is piecewise
constant in the parameters: the flow jumps, slightly, where it switches). Every threshold
(``min``, ``max``, the clamps of ``FLAND1`` such as ``LZFPC <= 1e-4 -> 0``) passes the
derivative of the branch taken: one-sided derivatives, no smoothing.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .base import SNOW_CODES, ModelSpec, Parameter
from .snow import snow_step

# parameter indices in theta
UZTWM, UZFWM, UZK, ZPERC, REXP, LZTWM, LZFSM, LZFPM, LZSK, LZPK, PFREE, PCTIM, ADIMP, SHAPE, SCALE = range(15)
N_PARAMS = 15
#: Lower-zone free water held in reserve (fraction of LZFPM + LZFSM), fixed.
RSERV = 0.3
#: Longest unit hydrograph (days).
NUH = 128
#: Initial fill of the soil stores (fraction of their capacity).
INIT_FILL = 0.5

#: SAC-SMA parameters in the order of ``theta``; ranges of Duan et al. (1992) / Vrugt et al. (2003),
#: the gamma unit hydrograph's chosen here (see ``docs/models.md``).
PARAMETERS = (
    Parameter("uztwm", "mm", (1.0, 150.0), positive=True, description="upper-zone tension water capacity"),
    Parameter("uzfwm", "mm", (1.0, 150.0), positive=True, description="upper-zone free water capacity"),
    Parameter("uzk", "d-1", (0.1, 0.5), positive=True, description="interflow depletion rate of upper-zone free water"),
    Parameter("zperc", "1", (1.0, 250.0), positive=True, description="maximum percolation rate (multiple of the base)"),
    Parameter("rexp", "1", (1.0, 5.0), positive=True, description="exponent of the percolation curve"),
    Parameter("lztwm", "mm", (1.0, 500.0), positive=True, description="lower-zone tension water capacity"),
    Parameter("lzfsm", "mm", (1.0, 1000.0), positive=True, description="lower-zone supplemental free water capacity"),
    Parameter("lzfpm", "mm", (1.0, 1000.0), positive=True, description="lower-zone primary free water capacity"),
    Parameter("lzsk", "d-1", (0.01, 0.25), positive=True, description="supplemental baseflow depletion rate"),
    Parameter("lzpk", "d-1", (0.0001, 0.025), positive=True, description="primary baseflow depletion rate"),
    Parameter("pfree", "1", (0.0, 0.6), description="fraction of percolation going directly to free water"),
    Parameter("pctim", "1", (0.0, 0.1), description="permanently impervious fraction of the basin"),
    Parameter("adimp", "1", (0.0, 0.4), description="additional (variable) impervious fraction"),
    Parameter("uh_shape", "1", (1.0, 5.0), positive=True, description="shape of the gamma unit hydrograph"),
    Parameter("uh_scale", "d", (0.1, 3.0), positive=True, description="scale of the gamma unit hydrograph"),
)
STATES = ("uztwc", "uzfwc", "lztwc", "lzfsc", "lzfpc", "adimc", "uh")


@njit(cache=True)
def gamma_uh(shape, scale):
    """Ordinates ``u`` (m,) of the gamma unit hydrograph and ``du`` (m, 2), their derivatives by shape and scale.

    ``u_i`` is proportional to ``t^(shape - 1) exp(-t/scale)`` at ``t = i + 1`` days, normalised to
    sum 1 (the constant ``Gamma(shape) scale^shape`` cancels); cut past the mode where
    ``u_i < 1e-12`` (at most :data:`NUH` ordinates).
    """
    lg = np.empty(NUH)
    for i in range(NUH):
        t = i + 1.0
        lg[i] = (shape - 1.0) * math.log(t / scale) - t / scale
    top = lg.max()
    g = np.exp(lg - top)
    total = g.sum()
    m = NUH
    mode = int(np.argmax(g))
    for i in range(mode + 1, NUH):
        if g[i] < 1e-12 * total:
            m = i
            break
    u = g[:m] / g[:m].sum()
    du = np.empty((m, 2))
    ma = 0.0
    mb = 0.0
    for i in range(m):
        t = i + 1.0
        du[i, 0] = math.log(t / scale)
        du[i, 1] = -(shape - 1.0) / scale + t / (scale * scale)
        ma += u[i] * du[i, 0]
        mb += u[i] * du[i, 1]
    for i in range(m):
        du[i, 0] = u[i] * (du[i, 0] - ma)
        du[i, 1] = u[i] * (du[i, 1] - mb)
    return u, du


@njit(cache=True)
def sacsma_run(theta, forcing, warmup, sens, snow, x0, budget):
    """Run SAC-SMA (optionally behind a snow module) and its Jacobian; optionally the daily water budget.

    Parameters
    ----------
    theta : ndarray (d,)
        The 15 parameters of :data:`PARAMETERS` (then the snow module's), physical units.
    forcing : ndarray (n_forcing, T)
        ``prcp, pet`` (then ``tmean`` with the degree-day snow), mm/d and degC; PET already >= 0.
        Snow code 2: rows ``w, pet, dw/dtheta_k...`` for the snow module's (last) parameters.
    warmup : int
        Days run before the reported period.
    sens : bool
        Carry the derivatives; otherwise ``J`` is empty.
    snow : int
        0: none; 1: the degree-day snow module in front; 2: water input from CemaNeige run beforehand.
    x0 : ndarray (7 + NUH,)
        Initial states ``swe, uztwc, uzfwc, lztwc, lzfsc, lzfpc, adimc`` and the channel inflow of the
        :data:`NUH` days before the run (newest first), mm and mm/d; NaN: the default start (the soil
        stores at :data:`INIT_FILL` of their capacity with that derivative, ``adimc`` at
        ``INIT_FILL (uztwm + lztwm)``, the snow pack and the inflow history zero). Given levels are
        constants.
    budget : ndarray (T, 4) or (0, 4)
        If it has T rows, receives per day the water input, the actual ET, the channel inflow
        (before routing) and the storage ``PAREA (UZTWC + UZFWC + LZTWC + LZFSC + LZFPC) + ADIMP ADIMC``
        at the end of the day (mm).

    Returns
    -------
    q : ndarray (T - warmup,)
        Daily routed flow, mm/d.
    J : ndarray (T - warmup, d) or (0, d)
        d q / d theta.
    x_end : ndarray (7 + NUH,)
        The states after the last day, laid out as ``x0``.
    """
    d = theta.shape[0]
    n = forcing.shape[1]
    nd = d if sens else 0
    dc = d - forcing.shape[0] + 2 if snow == 2 else nd
    uztwm = theta[UZTWM]
    uzfwm = theta[UZFWM]
    uzk = theta[UZK]
    zperc = theta[ZPERC]
    rexp = theta[REXP]
    lztwm = theta[LZTWM]
    lzfsm = theta[LZFSM]
    lzfpm = theta[LZFPM]
    lzsk = theta[LZSK]
    lzpk = theta[LZPK]
    pfree = theta[PFREE]
    pctim = theta[PCTIM]
    adimp = theta[ADIMP]
    parea = 1.0 - pctim - adimp
    saved = RSERV * (lzfpm + lzfsm)
    u, du = gamma_uh(theta[SHAPE], theta[SCALE])
    m = u.shape[0]

    q = np.zeros(n - warmup)
    jac = np.zeros((n - warmup if sens else 0, d))
    # channel inflow of the last NUH days, ring buffer: day k in slot k % NUH, the given history before day 0
    hist = np.zeros(NUH)
    dhist = np.zeros((NUH, nd))
    for i in range(NUH):
        if not np.isnan(x0[7 + i]):
            hist[NUH - 1 - i] = x0[7 + i]
    keep = budget.shape[0] == n

    start = np.empty(6)
    caps = (uztwm, uzfwm, lztwm, lzfsm, lzfpm, uztwm + lztwm)
    for i in range(6):
        start[i] = INIT_FILL * caps[i] if np.isnan(x0[1 + i]) else x0[1 + i]
    uztwc, uzfwc, lztwc, lzfsc, lzfpc, adimc = start[0], start[1], start[2], start[3], start[4], start[5]
    d_uztwc = np.zeros(nd)
    d_uzfwc = np.zeros(nd)
    d_lztwc = np.zeros(nd)
    d_lzfsc = np.zeros(nd)
    d_lzfpc = np.zeros(nd)
    d_adimc = np.zeros(nd)
    if sens:  # a default start keeps its derivative, a given level is a constant
        if np.isnan(x0[1]):
            d_uztwc[UZTWM] = INIT_FILL
        if np.isnan(x0[2]):
            d_uzfwc[UZFWM] = INIT_FILL
        if np.isnan(x0[3]):
            d_lztwc[LZTWM] = INIT_FILL
        if np.isnan(x0[4]):
            d_lzfsc[LZFSM] = INIT_FILL
        if np.isnan(x0[5]):
            d_lzfpc[LZFPM] = INIT_FILL
        if np.isnan(x0[6]):
            d_adimc[UZTWM] = INIT_FILL
            d_adimc[LZTWM] = INIT_FILL
    # derivatives of the day's intermediate quantities
    dp = np.zeros(nd)
    de1 = np.zeros(nd)
    de2 = np.zeros(nd)
    de3 = np.zeros(nd)
    de5 = np.zeros(nd)
    dred = np.zeros(nd)
    dtwx = np.zeros(nd)
    dpinc = np.zeros(nd)
    dduz = np.zeros(nd)
    ddlzp = np.zeros(nd)
    ddlzs = np.zeros(nd)
    daddro = np.zeros(nd)
    dadsur = np.zeros(nd)
    dbf = np.zeros(nd)
    dperc = np.zeros(nd)
    dpercf = np.zeros(nd)
    dpercs = np.zeros(nd)
    dsbf = np.zeros(nd)
    dssur = np.zeros(nd)
    dsif = np.zeros(nd)
    dsdro = np.zeros(nd)
    dtci = np.zeros(nd)
    dswe = np.zeros(nd)
    dw = np.zeros(d)
    swe = 0.0 if np.isnan(x0[0]) else x0[0]

    for k in range(n):
        e = forcing[1, k]
        if snow == 1:
            swe, p = snow_step(swe, dswe, forcing[0, k], forcing[2, k], theta, N_PARAMS, dw)
            for j in range(nd):
                dp[j] = dw[j]
        else:
            p = forcing[0, k]
            for j in range(dc, nd):
                dp[j] = forcing[2 + j - dc, k]

        # ---- evapotranspiration from the upper zone
        e1 = e * uztwc / uztwm
        for j in range(nd):
            de1[j] = e * d_uztwc[j] / uztwm - (e1 / uztwm if j == UZTWM else 0.0)
        red = e - e1
        uztwc -= e1
        for j in range(nd):
            dred[j] = -de1[j]
            d_uztwc[j] -= de1[j]
            de2[j] = 0.0
        e2 = 0.0
        rebalance = True
        if uztwc < 0.0:
            # E1 cannot exceed UZTWC; the rest of the demand from UZFWC
            e1 += uztwc
            red = e - e1
            uztwc = 0.0
            for j in range(nd):
                de1[j] += d_uztwc[j]
                dred[j] = -de1[j]
                d_uztwc[j] = 0.0
            if uzfwc >= red:
                e2 = red
                uzfwc -= e2
                red = 0.0
                for j in range(nd):
                    de2[j] = dred[j]
                    d_uzfwc[j] -= de2[j]
                    dred[j] = 0.0
            else:
                e2 = uzfwc
                uzfwc = 0.0
                red -= e2
                rebalance = False
                for j in range(nd):
                    de2[j] = d_uzfwc[j]
                    d_uzfwc[j] = 0.0
                    dred[j] -= de2[j]
        if rebalance and uztwc / uztwm < uzfwc / uzfwm:
            # free water relatively fuller than tension water: share it out
            cap = uztwm + uzfwm
            uzrat = (uztwc + uzfwc) / cap
            for j in range(nd):
                dr = (d_uztwc[j] + d_uzfwc[j] - (uzrat if j == UZTWM or j == UZFWM else 0.0)) / cap
                d_uztwc[j] = uztwm * dr + (uzrat if j == UZTWM else 0.0)
                d_uzfwc[j] = uzfwm * dr + (uzrat if j == UZFWM else 0.0)
            uztwc = uztwm * uzrat
            uzfwc = uzfwm * uzrat
        if uztwc < 0.00001:
            uztwc = 0.0
            d_uztwc[:] = 0.0
        if uzfwc < 0.00001:
            uzfwc = 0.0
            d_uzfwc[:] = 0.0

        # ---- evapotranspiration from the lower zone, resupply of its tension water
        tw = uztwm + lztwm
        e3 = red * lztwc / tw
        for j in range(nd):
            de3[j] = (dred[j] * lztwc + red * d_lztwc[j] - (e3 if j == UZTWM or j == LZTWM else 0.0)) / tw
        lztwc -= e3
        for j in range(nd):
            d_lztwc[j] -= de3[j]
        if lztwc < 0.0:
            e3 += lztwc
            lztwc = 0.0
            for j in range(nd):
                de3[j] += d_lztwc[j]
                d_lztwc[j] = 0.0
        ratlzt = lztwc / lztwm
        lzcap = lztwm + lzfpm + lzfsm - saved
        ratlz = (lztwc + lzfpc + lzfsc - saved) / lzcap
        if ratlzt < ratlz:
            dl = (ratlz - ratlzt) * lztwm
            for j in range(nd):
                dsv = RSERV if j == LZFPM or j == LZFSM else 0.0
                dcap = (1.0 if j == LZTWM or j == LZFPM or j == LZFSM else 0.0) - dsv
                drz = (d_lztwc[j] + d_lzfpc[j] + d_lzfsc[j] - dsv - ratlz * dcap) / lzcap
                # d(del) = (drz - d ratlzt) lztwm + (ratlz - ratlzt) dlztwm, d ratlzt lztwm = dlztwc - ratlzt dlztwm
                ddl = drz * lztwm - d_lztwc[j] + (ratlz if j == LZTWM else 0.0)
                d_lztwc[j] += ddl
                d_lzfsc[j] -= ddl
            lztwc += dl
            lzfsc -= dl
            if lzfsc < 0.0:
                lzfpc += lzfsc
                lzfsc = 0.0
                for j in range(nd):
                    d_lzfpc[j] += d_lzfsc[j]
                    d_lzfsc[j] = 0.0
        if lztwc < 0.00001:
            lztwc = 0.0
            d_lztwc[:] = 0.0

        # ---- evapotranspiration from the ADIMP area
        a5 = (adimc - e1 - uztwc) / tw
        e5 = e1 + (red + e2) * a5
        for j in range(nd):
            da5 = (d_adimc[j] - de1[j] - d_uztwc[j] - (a5 if j == UZTWM or j == LZTWM else 0.0)) / tw
            de5[j] = de1[j] + (dred[j] + de2[j]) * a5 + (red + e2) * da5
        adimc -= e5
        for j in range(nd):
            d_adimc[j] -= de5[j]
        if adimc < 0.0:
            e5 += adimc
            adimc = 0.0
            for j in range(nd):
                de5[j] += d_adimc[j]
                d_adimc[j] = 0.0
        et_adimp = e5 * adimp

        # ---- water input: upper-zone tension water first, the excess TWX to the increments
        twx = p + uztwc - uztwm
        if twx < 0.0:
            uztwc += p
            twx = 0.0
            for j in range(nd):
                d_uztwc[j] += dp[j]
                dtwx[j] = 0.0
        else:
            uztwc = uztwm
            for j in range(nd):
                dtwx[j] = dp[j] + d_uztwc[j] - (1.0 if j == UZTWM else 0.0)
                d_uztwc[j] = 1.0 if j == UZTWM else 0.0
        adimc += p - twx
        for j in range(nd):
            d_adimc[j] += dp[j] - dtwx[j]
        roimp = p * pctim

        # ---- increments: none moves more than 5 mm of UZFWC + TWX
        ninc = int(1.0 + 0.2 * (uzfwc + twx))
        dinc = 1.0 / ninc
        pinc = twx / ninc
        duz = 1.0 - (1.0 - uzk) ** dinc
        dlzp = 1.0 - (1.0 - lzpk) ** dinc
        dlzs = 1.0 - (1.0 - lzsk) ** dinc
        for j in range(nd):
            dpinc[j] = dtwx[j] / ninc
            dduz[j] = dinc * (1.0 - uzk) ** (dinc - 1.0) if j == UZK else 0.0
            ddlzp[j] = dinc * (1.0 - lzpk) ** (dinc - 1.0) if j == LZPK else 0.0
            ddlzs[j] = dinc * (1.0 - lzsk) ** (dinc - 1.0) if j == LZSK else 0.0
            dsbf[j] = 0.0
            dssur[j] = 0.0
            dsif[j] = 0.0
            dsdro[j] = 0.0
        sbf = 0.0
        ssur = 0.0
        sif = 0.0
        sdro = 0.0
        for _ in range(ninc):
            adsur = 0.0
            for j in range(nd):
                dadsur[j] = 0.0
            # direct runoff from the ADIMP area
            ratio = (adimc - uztwc) / lztwm
            if ratio < 0.0:
                ratio = 0.0
                for j in range(nd):
                    daddro[j] = 0.0
            else:
                for j in range(nd):
                    dratio = (d_adimc[j] - d_uztwc[j] - (ratio if j == LZTWM else 0.0)) / lztwm
                    daddro[j] = dpinc[j] * ratio * ratio + 2.0 * pinc * ratio * dratio
            addro = pinc * ratio * ratio

            # baseflow, primary and supplemental
            bf = lzfpc * dlzp
            for j in range(nd):
                dbf[j] = d_lzfpc[j] * dlzp + lzfpc * ddlzp[j]
            lzfpc -= bf
            if lzfpc > 0.0001:
                for j in range(nd):
                    d_lzfpc[j] -= dbf[j]
            else:
                bf += lzfpc
                lzfpc = 0.0
                for j in range(nd):
                    dbf[j] = d_lzfpc[j]
                    d_lzfpc[j] = 0.0
            sbf += bf
            for j in range(nd):
                dsbf[j] += dbf[j]
            bf = lzfsc * dlzs
            for j in range(nd):
                dbf[j] = d_lzfsc[j] * dlzs + lzfsc * ddlzs[j]
            lzfsc -= bf
            if lzfsc > 0.0001:
                for j in range(nd):
                    d_lzfsc[j] -= dbf[j]
            else:
                bf += lzfsc
                lzfsc = 0.0
                for j in range(nd):
                    dbf[j] = d_lzfsc[j]
                    d_lzfsc[j] = 0.0
            sbf += bf
            for j in range(nd):
                dsbf[j] += dbf[j]

            if pinc + uzfwc <= 0.01:
                uzfwc += pinc
                for j in range(nd):
                    d_uzfwc[j] += dpinc[j]
            else:
                # percolation, from UZFWC before PINC is added
                percm = lzfpm * dlzp + lzfsm * dlzs
                lzc = lztwm + lzfpm + lzfsm
                defr = 1.0 - (lztwc + lzfpc + lzfsc) / lzc
                fz = 1.0
                if defr > 0.0:
                    dr_ = defr ** rexp
                    fz = 1.0 + zperc * dr_
                perc = percm * uzfwc / uzfwm * fz
                for j in range(nd):
                    dpercm = lzfpm * ddlzp[j] + lzfsm * ddlzs[j]
                    if j == LZFPM:
                        dpercm += dlzp
                    elif j == LZFSM:
                        dpercm += dlzs
                    dfz = 0.0
                    if defr > 0.0:
                        ddefr = -(d_lztwc[j] + d_lzfpc[j] + d_lzfsc[j]
                                  - (1.0 - defr) * (1.0 if j == LZTWM or j == LZFPM or j == LZFSM else 0.0)) / lzc
                        dfz = zperc * rexp * defr ** (rexp - 1.0) * ddefr
                        if j == ZPERC:
                            dfz += dr_
                        elif j == REXP:
                            dfz += zperc * dr_ * math.log(defr)
                    dperc[j] = (dpercm * uzfwc / uzfwm + percm * d_uzfwc[j] / uzfwm
                                - (percm * uzfwc / (uzfwm * uzfwm) if j == UZFWM else 0.0)) * fz \
                        + percm * uzfwc / uzfwm * dfz
                if perc >= uzfwc:
                    perc = uzfwc
                    for j in range(nd):
                        dperc[j] = d_uzfwc[j]
                uzfwc -= perc
                for j in range(nd):
                    d_uzfwc[j] -= dperc[j]
                check = lztwc + lzfpc + lzfsc + perc - lzc
                if check > 0.0:
                    perc -= check
                    uzfwc += check
                    for j in range(nd):
                        dchk = d_lztwc[j] + d_lzfpc[j] + d_lzfsc[j] + dperc[j] \
                            - (1.0 if j == LZTWM or j == LZFPM or j == LZFSM else 0.0)
                        dperc[j] -= dchk
                        d_uzfwc[j] += dchk

                # interflow (PINC not yet added)
                dl = uzfwc * duz
                sif += dl
                for j in range(nd):
                    ddl = d_uzfwc[j] * duz + uzfwc * dduz[j]
                    dsif[j] += ddl
                    d_uzfwc[j] -= ddl
                uzfwc -= dl

                # percolation: lower-zone tension water first, except the PFREE share
                perct = perc * (1.0 - pfree)
                if perct + lztwc > lztwm:
                    percf = perct + lztwc - lztwm
                    lztwc = lztwm
                    for j in range(nd):
                        dpt = dperc[j] * (1.0 - pfree) - (perc if j == PFREE else 0.0)
                        dpercf[j] = dpt + d_lztwc[j] - (1.0 if j == LZTWM else 0.0)
                        d_lztwc[j] = 1.0 if j == LZTWM else 0.0
                else:
                    lztwc += perct
                    percf = 0.0
                    for j in range(nd):
                        d_lztwc[j] += dperc[j] * (1.0 - pfree) - (perc if j == PFREE else 0.0)
                        dpercf[j] = 0.0
                percf += perc * pfree
                for j in range(nd):
                    dpercf[j] += dperc[j] * pfree + (perc if j == PFREE else 0.0)
                # the rest to the free stores, by their relative size and emptiness (also when it is 0, which
                # changes no store but carries dpercf: at pfree = 0 d(percf)/d(pfree) = perc)
                fsum = lzfpm + lzfsm
                hpl = lzfpm / fsum
                ratlp = lzfpc / lzfpm
                ratls = lzfsc / lzfsm
                den = (1.0 - ratlp) + (1.0 - ratls)
                # both free stores full (0/0 in FLAND1): all of it to the primary store (then its overflow)
                fracp = hpl * 2.0 * (1.0 - ratlp) / den if den > 0.0 else 1.0
                capped = fracp > 1.0
                if capped:
                    fracp = 1.0
                percp = percf * fracp
                percs = percf - percp
                for j in range(nd):
                    dfp = 0.0
                    if not capped and den > 0.0:
                        dhpl = ((1.0 - hpl) if j == LZFPM else (-hpl if j == LZFSM else 0.0)) / fsum
                        drp = (d_lzfpc[j] - (ratlp if j == LZFPM else 0.0)) / lzfpm
                        drs = (d_lzfsc[j] - (ratls if j == LZFSM else 0.0)) / lzfsm
                        dfp = (2.0 * dhpl * (1.0 - ratlp) - 2.0 * hpl * drp - fracp * (-drp - drs)) / den
                    dpercs[j] = dpercf[j] * (1.0 - fracp) - percf * dfp
                lzfsc += percs
                for j in range(nd):
                    d_lzfsc[j] += dpercs[j]
                if lzfsc > lzfsm:
                    percs = percs - lzfsc + lzfsm
                    lzfsc = lzfsm
                    for j in range(nd):
                        dpercs[j] += -d_lzfsc[j] + (1.0 if j == LZFSM else 0.0)
                        d_lzfsc[j] = 1.0 if j == LZFSM else 0.0
                lzfpc += percf - percs
                for j in range(nd):
                    d_lzfpc[j] += dpercf[j] - dpercs[j]
                if lzfpc > lzfpm:
                    excess = lzfpc - lzfpm
                    lztwc += excess
                    lzfpc = lzfpm
                    for j in range(nd):
                        d_lztwc[j] += d_lzfpc[j] - (1.0 if j == LZFPM else 0.0)
                        d_lzfpc[j] = 1.0 if j == LZFPM else 0.0

                # PINC to UZFWC, its excess over UZFWM to surface runoff
                if pinc != 0.0:
                    if pinc + uzfwc > uzfwm:
                        sur = pinc + uzfwc - uzfwm
                        uzfwc = uzfwm
                        ssur += sur * parea
                        fr = 1.0 - addro / pinc
                        adsur = sur * fr
                        ssur += adsur * adimp
                        for j in range(nd):
                            dsur = dpinc[j] + d_uzfwc[j] - (1.0 if j == UZFWM else 0.0)
                            d_uzfwc[j] = 1.0 if j == UZFWM else 0.0
                            dpa = -1.0 if j == PCTIM or j == ADIMP else 0.0
                            dadsur[j] = dsur * fr - sur * (daddro[j] - addro * dpinc[j] / pinc) / pinc
                            dssur[j] += dsur * parea + sur * dpa + dadsur[j] * adimp + (adsur if j == ADIMP else 0.0)
                    else:
                        uzfwc += pinc
                        for j in range(nd):
                            d_uzfwc[j] += dpinc[j]

            # ADIMP area water balance
            adimc += pinc - addro - adsur
            for j in range(nd):
                d_adimc[j] += dpinc[j] - daddro[j] - dadsur[j]
            amax = uztwm + lztwm
            if adimc > amax:
                addro += adimc - amax
                adimc = amax
                for j in range(nd):
                    dam = 1.0 if j == UZTWM or j == LZTWM else 0.0
                    daddro[j] += d_adimc[j] - dam
                    d_adimc[j] = dam
            sdro += addro * adimp
            for j in range(nd):
                dsdro[j] += daddro[j] * adimp + (addro if j == ADIMP else 0.0)
            if adimc < 0.00001:
                adimc = 0.0
                d_adimc[:] = 0.0

        # ---- channel inflow (RIVA = SIDE = 0: no riparian ET, all baseflow to the channel)
        tci = roimp + sdro + ssur + sif * parea + sbf * parea
        for j in range(nd):
            dpa = -1.0 if j == PCTIM or j == ADIMP else 0.0
            dtci[j] = dp[j] * pctim + (p if j == PCTIM else 0.0) + dsdro[j] + dssur[j] \
                + (dsif[j] + dsbf[j]) * parea + (sif + sbf) * dpa
        if adimc < uztwc:
            adimc = uztwc
            for j in range(nd):
                d_adimc[j] = d_uztwc[j]
        if keep:
            budget[k, 0] = p
            budget[k, 1] = (e1 + e2 + e3) * parea + et_adimp
            budget[k, 2] = tci
            budget[k, 3] = parea * (uztwc + uzfwc + lztwc + lzfsc + lzfpc) + adimp * adimc

        # ---- gamma unit-hydrograph routing
        slot = k % NUH
        hist[slot] = tci
        for j in range(nd):
            dhist[slot, j] = dtci[j]
        if k >= warmup:
            qk = 0.0
            for i in range(m):
                qk += u[i] * hist[(k - i) % NUH]
            q[k - warmup] = qk
            if sens:
                for i in range(m):
                    s = (k - i) % NUH
                    ui = u[i]
                    for j in range(nd):
                        jac[k - warmup, j] += ui * dhist[s, j]
                    jac[k - warmup, SHAPE] += du[i, 0] * hist[s]
                    jac[k - warmup, SCALE] += du[i, 1] * hist[s]
    x_end = np.empty(7 + NUH)
    x_end[0] = swe
    x_end[1:7] = (uztwc, uzfwc, lztwc, lzfsc, lzfpc, adimc)
    for i in range(NUH):
        x_end[7 + i] = hist[(n - 1 - i) % NUH]
    return q, jac, x_end


def sacsma_kernel(theta, forcing, warmup, sens, snow, x0=None):
    """Run SAC-SMA and its Jacobian (see :func:`sacsma_run`): ``(q, J)``, or ``(q, J, x_end)`` with ``x0``.

    ``x0`` is the flat vector of ``Model.states`` (``swe`` first with the degree-day snow, the
    ``uh`` history of :data:`NUH` days of channel inflow, newest first, last); NaN keeps a default.
    """
    full = np.full(7 + NUH, np.nan)
    first = 0 if snow == 1 else 1
    if x0 is not None:
        full[first:] = x0
    q, jac, x_end = sacsma_run(theta, forcing, warmup, sens, snow, full, np.zeros((0, 4)))
    return (q, jac) if x0 is None else (q, jac, x_end[first:])


SPEC = ModelSpec("sacsma", PARAMETERS, STATES, sacsma_kernel, snow=tuple(SNOW_CODES),
                 continuation=True, state_sizes={"uh": NUH},
                 # each store's capacity curve and deficiency ratio need its level within the capacity
                 capacities={"uztwc": "uztwm", "uzfwc": "uzfwm", "lztwc": "lztwm", "lzfsc": "lzfsm", "lzfpc": "lzfpm",
                             "adimc": ("uztwm", "lztwm")},
                 reference="Burnash 1995; Newman et al. 2015 (gamma unit hydrograph); ranges Duan et al. 1992")
