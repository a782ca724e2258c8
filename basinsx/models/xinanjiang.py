"""Daily Xinanjiang model (Zhao 1992) as hydromodel's ``xaj`` computes it, with forward-mode sensitivities.

The structure is hydromodel's ``xaj`` (CSL routing, ``sources`` with the "HF" book), step by step:

* **Evaporation** (three layers) from the potential rate ``E_p = k PET``: upper layer first
  (``E_U = min(E_p, W_U + P)``); the lower layer gives ``(E_p - E_U) W_L / lm`` while
  ``W_L >= c lm``, else ``c (E_p - E_U)`` while ``W_L`` holds it, else all of ``W_L`` and the deep
  layer the rest of ``c (E_p - E_U)`` (at most ``W_D``).
* **Runoff generation** from the net rainfall ``PE = max(P - E, 0)`` with the tension-water
  capacity curve of exponent ``b`` (``WM = um + lm + dm``, ``WMM = WM (1 + b)``, start-of-day
  storage capped at ``WM - 1e-5``); the layers fill top-down; the impervious fraction ``im``
  turns ``im PE`` into direct runoff.
* **Free water** (capacity ``sm``, exponent ``ex``) on the runoff-producing area ``FR = R / PE``
  splits ``R`` into surface runoff, interflow ``ki S FR`` and groundwater ``kg S FR`` (``ki``,
  ``kg`` rescaled to sum ``1 - 1e-5`` when they sum to 1 or more).
* **Routing**: interflow and groundwater through linear reservoirs ``Q <- c Q + (1 - c) R`` (``ci``,
  ``cg``); the total ``QT`` through the channel lag-and-route ``Q_t = cs Q_{t-1} + (1 - cs) QT_{t-l}``.

Departures from hydromodel, all documented in ``docs/models.md``: ``QT_{t-l}`` is interpolated
linearly between the integer lags (equal at integer ``l``, where hydromodel truncates ``int(l)``), so
``l`` has a derivative; the routing states run on through the warm-up and start empty (hydromodel
restarts its channel after the warm-up with ``Q = QT`` for the first ``l`` days); free water held
above ``sm`` when the runoff area shrinks leaves as surface runoff instead of being discarded.

Every step is differentiated exactly (forward mode, as for the GR models): ``J`` is
the derivative of the discrete map. Branches (evaporation cases, full layers, ``R > 0``) and clamps
pass the derivative of the active piece: the map has kinks where one switches and at integer ``l``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .base import SNOW_CODES, ModelSpec, Parameter
from .snow import snow_step

PARAMETERS = (
    Parameter("k", "1", (0.1, 1.0), description="ratio of potential ET to the PET forcing"),
    Parameter("b", "1", (0.1, 0.4), description="exponent of the tension-water capacity curve"),
    Parameter("im", "1", (0.01, 0.1), description="impervious fraction of the basin"),
    Parameter("um", "mm", (0.0, 20.0), description="upper-layer tension-water capacity"),
    Parameter("lm", "mm", (60.0, 90.0), positive=True, description="lower-layer tension-water capacity"),
    Parameter("dm", "mm", (60.0, 120.0), description="deep-layer tension-water capacity"),
    Parameter("c", "1", (0.0, 0.2), description="deep evapotranspiration coefficient"),
    Parameter("sm", "mm", (1.0, 100.0), positive=True, description="areal mean free-water capacity"),
    Parameter("ex", "1", (1.0, 1.5), description="exponent of the free-water capacity curve"),
    Parameter("ki", "d-1", (0.0, 0.7), description="free-water outflow coefficient to interflow"),
    Parameter("kg", "d-1", (0.0, 0.7), description="free-water outflow coefficient to groundwater"),
    Parameter("cs", "1", (0.0, 1.0), description="channel recession constant (per day)"),
    Parameter("l", "d", (1.0, 10.0), positive=True, description="channel lag"),
    Parameter("ci", "1", (0.0, 0.9), description="interflow recession constant (per day)"),
    Parameter("cg", "1", (0.98, 0.998), description="groundwater recession constant (per day)"),
)
#: hydromodel's ``PRECISION``: headroom below WM of the start-of-day storage, and below 1 of ki + kg.
PRECISION = 1e-5
#: Initial fill of the tension-water layers and the free-water store; initial runoff area,
#: interflow and groundwater outflow (mm/d): hydromodel's defaults without warm-up.
INIT_FILL = 0.5
INIT_FR = 0.1
INIT_Q = 0.1
# parameter indices; N_PARAMS: the first snow parameter
K, BX, IM, UM, LM, DM, CE, SM, EX, KI, KG, CS, LAG, CI, CG = range(15)
N_PARAMS = 15
#: Days of channel inflow kept as the state ``lag`` (newest first): a continuation is exact for ``l < LAG_DAYS``.
LAG_DAYS = 11
#: The core states (``Model.states`` without ``swe``); ``lag`` is a vector of ``LAG_DAYS``.
STATES = ("upper", "lower", "deep", "free_water", "runoff_area", "interflow", "groundwater", "channel", "lag")
# offsets in the kernel's state vector: swe, the eight scalar states, the lag
N_STATES = 1 + 8 + LAG_DAYS


@njit(cache=True)
def _pow(x, y):
    """``x ** y`` (x > 0) and its partial derivatives with respect to x and y."""
    v = x**y
    return v, y * v / x, v * math.log(x)


@njit(cache=True)
def _clip(v, dv, hi, j_hi):
    """``v`` clipped to [0, hi]; ``dv`` updated in place (``hi`` is parameter ``j_hi``)."""
    if v < 0.0:
        dv[:] = 0.0
        return 0.0
    if v > hi:
        dv[:] = 0.0
        if j_hi < dv.shape[0]:
            dv[j_hi] = 1.0
        return hi
    return v


@njit(cache=True)
def _start(x0, i, default):
    """Start value of state ``i``: ``x0[i]``, or ``default`` where it is NaN; and whether the default was taken."""
    return (default, True) if np.isnan(x0[i]) else (x0[i], False)


@njit(cache=True)
def _run(theta, forcing, warmup, sens, snow, x0, diag):
    """The model loop from the states ``x0`` (N_STATES, NaN: default start) to ``(q, J, x_end)``.

    ``diag`` (T, 3) receives basin ET, channel inflow QT and storage when it has T rows.
    """
    d = theta.shape[0]
    n = forcing.shape[1]
    nd = d if sens else 0
    dc = d - forcing.shape[0] + 2 if snow == 2 else nd  # first parameter of a snow module run beforehand
    kp, b, im, um, lm, dm, c = theta[K], theta[BX], theta[IM], theta[UM], theta[LM], theta[DM], theta[CE]
    sm, ex, cs, lag, ci, cg = theta[SM], theta[EX], theta[CS], theta[LAG], theta[CI], theta[CG]
    wm = um + lm + dm
    wmm = wm * (1.0 + b)
    ms = sm * (1.0 + ex)
    f1 = 1.0 - im
    dwm = np.zeros(nd)
    dwmm = np.zeros(nd)
    dms = np.zeros(nd)
    dki = np.zeros(nd)
    dkg = np.zeros(nd)
    tot = theta[KI] + theta[KG]
    if tot < 1.0:
        ki, kg = theta[KI], theta[KG]
        if sens:
            dki[KI] = 1.0
            dkg[KG] = 1.0
    else:
        fk = (1.0 - PRECISION) / tot
        ki, kg = fk * theta[KI], fk * theta[KG]
        if sens:
            dki[KI] = fk - ki / tot
            dki[KG] = -ki / tot
            dkg[KG] = fk - kg / tot
            dkg[KI] = -kg / tot
    if sens:
        for j in (UM, LM, DM):
            dwm[j] = 1.0
            dwmm[j] = 1.0 + b
        dwmm[BX] = wm
        dms[SM] = 1.0 + ex
        dms[EX] = sm
    nl = int(lag)
    phi = lag - nl
    nb = max(nl + 2, LAG_DAYS + 1)  # ring buffer of QT: the lag's two days and the state ``lag``
    hist = np.zeros(nb)
    dhist = np.zeros((nb, nd))
    for m in range(1, LAG_DAYS + 1):  # QT of day -m sits where day t = -m would write it
        hist[nb - m] = 0.0 if np.isnan(x0[8 + m]) else x0[8 + m]

    # given states are constants; the defaults keep their derivative
    swe = 0.0 if np.isnan(x0[0]) else x0[0]
    wu, dflt_u = _start(x0, 1, INIT_FILL * um)
    wl, dflt_l = _start(x0, 2, INIT_FILL * lm)
    wd, dflt_d = _start(x0, 3, INIT_FILL * dm)
    s, dflt_s = _start(x0, 4, INIT_FILL * sm)
    fr = _start(x0, 5, INIT_FR)[0]
    qi = _start(x0, 6, INIT_Q)[0]
    qg = _start(x0, 7, INIT_Q)[0]
    qch = _start(x0, 8, 0.0)[0]
    dwu, dwl, dwd, ds, dfr = np.zeros(nd), np.zeros(nd), np.zeros(nd), np.zeros(nd), np.zeros(nd)
    dqi, dqg, dqch = np.zeros(nd), np.zeros(nd), np.zeros(nd)
    if sens:
        dwu[UM] = INIT_FILL if dflt_u else 0.0
        dwl[LM] = INIT_FILL if dflt_l else 0.0
        dwd[DM] = INIT_FILL if dflt_d else 0.0
        ds[SM] = INIT_FILL if dflt_s else 0.0
    dp = np.zeros(nd)
    dep = np.zeros(nd)
    deu, del_, ded, dpe, dw0, dr = np.zeros(nd), np.zeros(nd), np.zeros(nd), np.zeros(nd), np.zeros(nd), np.zeros(nd)
    nwu_d, nwl_d, nwd_d = np.zeros(nd), np.zeros(nd), np.zeros(nd)
    dnfr, dss, drs, dri, drg, dqt = np.zeros(nd), np.zeros(nd), np.zeros(nd), np.zeros(nd), np.zeros(nd), np.zeros(nd)
    dswe = np.zeros(nd)
    dw = np.zeros(d)
    q = np.zeros(n - warmup)
    jac = np.zeros((n - warmup if sens else 0, d))
    keep = diag.shape[0] == n

    for t in range(n):
        pet0 = forcing[1, t]
        if snow == 1:
            swe, p = snow_step(swe, dswe, forcing[0, t], forcing[2, t], theta, N_PARAMS, dw)
            for j in range(nd):
                dp[j] = dw[j]
        else:
            p = forcing[0, t]
            for j in range(dc, nd):
                dp[j] = forcing[2 + j - dc, t]
        ep = kp * pet0
        if sens:
            dep[K] = pet0

        # three-layer evaporation
        rem = 0.0
        if wu + p >= ep:
            eu, el, ed = ep, 0.0, 0.0
            for j in range(nd):
                deu[j] = dep[j]
                del_[j] = 0.0
                ded[j] = 0.0
        else:
            eu = wu + p
            rem = ep - eu
            ed = 0.0
            for j in range(nd):
                deu[j] = dwu[j] + dp[j]
                ded[j] = 0.0
            if wl >= c * lm:
                el = rem * wl / lm
                for j in range(nd):
                    del_[j] = (dep[j] - deu[j]) * wl / lm + rem * dwl[j] / lm - (el / lm if j == LM else 0.0)
            elif wl >= c * rem:
                el = c * rem
                for j in range(nd):
                    del_[j] = c * (dep[j] - deu[j]) + (rem if j == CE else 0.0)
            else:
                el = wl
                ed = c * rem - wl
                for j in range(nd):
                    del_[j] = dwl[j]
                    ded[j] = c * (dep[j] - deu[j]) + (rem if j == CE else 0.0) - dwl[j]
                if ed > wd:  # the deep layer gives what it holds
                    ed = wd
                    for j in range(nd):
                        ded[j] = dwd[j]
        pd = p - eu - el - ed

        # runoff generation on the tension-water capacity curve
        w0 = wu + wl + wd
        capped = w0 >= wm - PRECISION
        w0c = wm - PRECISION if capped else w0
        for j in range(nd):
            dw0[j] = dwm[j] if capped else dwu[j] + dwl[j] + dwd[j]
        r = 0.0
        pe = 0.0
        for j in range(nd):
            dr[j] = 0.0
            dpe[j] = 0.0
        if pd > 0.0:
            pe = pd
            for j in range(nd):
                dpe[j] = dp[j] - deu[j] - del_[j] - ded[j]
            x = 1.0 - w0c / wm
            beta = 1.0 / (1.0 + b)
            xb, xb_x, xb_y = _pow(x, beta)
            a = wmm * (1.0 - xb)
            if pe + a < wmm:
                y = 1.0 - (pe + a) / wmm
                z, z_y, z_b = _pow(y, 1.0 + b)
                r = pe - wm + w0c + wm * z
                for j in range(nd):
                    dx = -dw0[j] / wm + w0c / (wm * wm) * dwm[j]
                    dxb = xb_x * dx - (xb_y * beta * beta if j == BX else 0.0)
                    da = dwmm[j] * (1.0 - xb) - wmm * dxb
                    dy = -(dpe[j] + da) / wmm + (pe + a) / (wmm * wmm) * dwmm[j]
                    dz = z_y * dy + (z_b if j == BX else 0.0)
                    dr[j] = dpe[j] - dwm[j] + dw0[j] + dwm[j] * z + wm * dz
            else:
                r = pe - wm + w0c
                for j in range(nd):
                    dr[j] = dpe[j] - dwm[j] + dw0[j]
            if r < 0.0:
                r = 0.0
                for j in range(nd):
                    dr[j] = 0.0

        # tension-water layers filled top-down (or emptied by evaporation)
        if pd > 0.0:
            wsum = w0 + pe - r
            if wu + pe - r < um:
                nwu = wu + pe - r
                for j in range(nd):
                    nwu_d[j] = dwu[j] + dpe[j] - dr[j]
            else:
                nwu = um
                for j in range(nd):
                    nwu_d[j] = 1.0 if j == UM else 0.0
            if wu + wl + pe - r > um + lm:
                nwd = wsum - um - lm
                for j in range(nd):
                    nwd_d[j] = dwu[j] + dwl[j] + dwd[j] + dpe[j] - dr[j] - (1.0 if j == UM or j == LM else 0.0)
            else:
                nwd = wd
                for j in range(nd):
                    nwd_d[j] = dwd[j]
            nwl = wsum - nwu - nwd
            for j in range(nd):
                nwl_d[j] = dwu[j] + dwl[j] + dwd[j] + dpe[j] - dr[j] - nwu_d[j] - nwd_d[j]
        else:
            nwu = wu + pd
            for j in range(nd):
                nwu_d[j] = dwu[j] + dp[j] - deu[j] - del_[j] - ded[j]
            nwd = wd - ed
            nwl = wl - el
            for j in range(nd):
                nwd_d[j] = dwd[j] - ded[j]
                nwl_d[j] = dwl[j] - del_[j]
        wu = _clip(nwu, nwu_d, um, UM)
        wl = _clip(nwl, nwl_d, lm, LM)
        wd = _clip(nwd, nwd_d, dm, DM)
        for j in range(nd):
            dwu[j] = nwu_d[j]
            dwl[j] = nwl_d[j]
            dwd[j] = nwd_d[j]

        # free water on the runoff-producing area FR: surface runoff, then interflow and groundwater
        rs = 0.0
        for j in range(nd):
            drs[j] = 0.0
        if r > 0.0:
            nfr = r / pe
            ss = fr * s / nfr
            for j in range(nd):
                dnfr[j] = (dr[j] - nfr * dpe[j]) / pe
                dss[j] = (dfr[j] * s + fr * ds[j]) / nfr - ss * dnfr[j] / nfr
            if ss >= sm:  # more free water than the smaller area holds: the excess runs off
                rs = nfr * (pe + ss - sm)
                s = sm
                for j in range(nd):
                    drs[j] = dnfr[j] * (pe + ss - sm) + nfr * (dpe[j] + dss[j] - (1.0 if j == SM else 0.0))
                    ds[j] = 1.0 if j == SM else 0.0
            else:
                x = 1.0 - ss / sm
                beta = 1.0 / (1.0 + ex)
                xb, xb_x, xb_y = _pow(x, beta)
                au = ms * (1.0 - xb)
                full = pe + au >= ms
                if full:
                    inner = pe + ss - sm
                else:
                    y = 1.0 - (pe + au) / ms
                    z, z_y, z_e = _pow(y, 1.0 + ex)
                    inner = pe - sm + ss + sm * z
                rs = nfr * inner
                for j in range(nd):
                    dsm = 1.0 if j == SM else 0.0
                    if full:
                        dinner = dpe[j] + dss[j] - dsm
                    else:
                        dx = -dss[j] / sm + ss / (sm * sm) * dsm
                        dxb = xb_x * dx - (xb_y * beta * beta if j == EX else 0.0)
                        dau = dms[j] * (1.0 - xb) - ms * dxb
                        dy = -(dpe[j] + dau) / ms + (pe + au) / (ms * ms) * dms[j]
                        dz = z_y * dy + (z_e if j == EX else 0.0)
                        dinner = dpe[j] - dsm + dss[j] + dsm * z + sm * dz
                    drs[j] = dnfr[j] * inner + nfr * dinner
                if rs > r:
                    rs = r
                    for j in range(nd):
                        drs[j] = dr[j]
                s = ss + (r - rs) / nfr
                for j in range(nd):
                    ds[j] = dss[j] + (dr[j] - drs[j]) / nfr - (r - rs) / (nfr * nfr) * dnfr[j]
                if s > sm:
                    s = sm
                    for j in range(nd):
                        ds[j] = 1.0 if j == SM else 0.0
            fr = nfr
            for j in range(nd):
                dfr[j] = dnfr[j]
        ri = ki * s * fr
        rg = kg * s * fr
        for j in range(nd):
            dri[j] = dki[j] * s * fr + ki * ds[j] * fr + ki * s * dfr[j]
            drg[j] = dkg[j] * s * fr + kg * ds[j] * fr + kg * s * dfr[j]
            ds[j] = ds[j] * (1.0 - ki - kg) - s * (dki[j] + dkg[j])
        s = s * (1.0 - ki - kg)

        # basin runoff: pervious share of the three sources, impervious runoff, linear reservoirs
        qi_new = ci * qi + (1.0 - ci) * f1 * ri
        qg_new = cg * qg + (1.0 - cg) * f1 * rg
        qt = f1 * rs + im * pe + qi_new + qg_new
        for j in range(nd):
            dim = 1.0 if j == IM else 0.0
            dqi[j] = ci * dqi[j] + (1.0 - ci) * (f1 * dri[j] - ri * dim) + (qi - f1 * ri if j == CI else 0.0)
            dqg[j] = cg * dqg[j] + (1.0 - cg) * (f1 * drg[j] - rg * dim) + (qg - f1 * rg if j == CG else 0.0)
            dqt[j] = f1 * drs[j] - rs * dim + im * dpe[j] + pe * dim + dqi[j] + dqg[j]
        qi, qg = qi_new, qg_new

        # channel: lag l (linear between the integer lags), then a linear reservoir cs
        slot = t % nb
        hist[slot] = qt
        for j in range(nd):
            dhist[slot, j] = dqt[j]
        ia = (t - nl + nb) % nb
        ib = (t - nl - 1 + nb) % nb
        xin = (1.0 - phi) * hist[ia] + phi * hist[ib]
        for j in range(nd):
            dqch[j] = (cs * dqch[j] + (1.0 - cs) * ((1.0 - phi) * dhist[ia, j] + phi * dhist[ib, j])
                       + (qch - xin if j == CS else 0.0) + ((1.0 - cs) * (hist[ib] - hist[ia]) if j == LAG else 0.0))
        qch = cs * qch + (1.0 - cs) * xin

        if keep:
            diag[t, 0] = f1 * (eu + el + ed) + im * (p - pe)
            diag[t, 1] = qt
            diag[t, 2] = f1 * (wu + wl + wd + fr * s) + ci / (1.0 - ci) * qi + cg / (1.0 - cg) * qg
        if t >= warmup:
            q[t - warmup] = qch
            for j in range(nd):
                jac[t - warmup, j] = dqch[j]
    x_end = np.empty(N_STATES)
    x_end[:9] = (swe, wu, wl, wd, s, fr, qi, qg, qch)
    for m in range(1, LAG_DAYS + 1):
        x_end[8 + m] = hist[(n - m + nb) % nb]
    return q, jac, x_end


def _layout(snow):
    """Offsets in the kernel's state vector of the entries of ``Model.states`` (flattened, in their order)."""
    return np.arange(0 if snow == 1 else 1, N_STATES)


def xinanjiang_kernel(theta, forcing, warmup, sens, snow, x0=None):
    """Run the Xinanjiang model (optionally behind a snow module) and its Jacobian.

    Parameters
    ----------
    theta : ndarray (d,)
        The 15 parameters of ``PARAMETERS`` (then the snow module's), physical units.
    forcing : ndarray (n_forcing, T)
        ``prcp, pet`` (then ``tmean`` with the degree-day snow; CemaNeige: rows ``w, pet,
        dw/dtheta_k...``), mm/d and degC; PET already >= 0.
    warmup : int
        Days run before the reported period.
    sens : bool
        Carry the derivatives; otherwise ``J`` is empty.
    snow : int
        0: none; 1: the degree-day module in front; 2: water input from CemaNeige run beforehand.
    x0 : ndarray, optional
        The states of ``Model.states`` flattened (``swe`` first with the degree-day snow; ``lag``:
        channel inflow of the last ``LAG_DAYS`` days, newest first), NaN for the default start.

    Returns
    -------
    q : ndarray (T - warmup,)
        Daily flow at the outlet, mm/d.
    J : ndarray (T - warmup, d) or (0, d)
        d q / d theta.
    x_end : ndarray
        With ``x0`` only: the states after the last day, laid out as ``x0``.
    """
    layout = _layout(snow)
    full = np.full(N_STATES, np.nan)
    if x0 is not None:
        if theta[LAG] >= LAG_DAYS:
            raise ValueError(f"xinanjiang: initial and final states hold {LAG_DAYS} days of channel inflow, "
                             f"enough for l < {LAG_DAYS}; got l = {theta[LAG]}")
        full[layout] = x0
    q, jac, x_end = _run(theta, forcing, warmup, sens, snow, full, np.zeros((0, 3)))
    return (q, jac) if x0 is None else (q, jac, x_end[layout])


def water_budget(theta, forcing):
    """Daily basin water budget of a run without snow: evapotranspiration, channel inflow, storage.

    Per unit basin area, the tension and free water count on the pervious fraction ``1 - im``
    and the impervious fraction evaporates ``min(P, E)``; so each day
    ``P - ET - QT = S_t - S_{t-1}`` (up to hydromodel's 1e-5 mm cap of the start-of-day tension
    water). The channel (lag and reservoir ``cs``) passes ``QT`` on to the outlet flow unchanged in sum.

    Parameters
    ----------
    theta : array_like (15,)
        Parameters of ``PARAMETERS``.
    forcing : array_like (2, T)
        ``prcp, pet``, mm/d.

    Returns
    -------
    q, et, qt, storage : ndarray (T,)
        Outlet flow, actual evapotranspiration, channel inflow (mm/d) and storage (mm) at the end of each day.
    """
    f = np.ascontiguousarray(forcing, dtype=np.float64)
    diag = np.zeros((f.shape[1], 3))
    q, _, _ = _run(np.asarray(theta, dtype=np.float64), f, 0, False, 0, np.full(N_STATES, np.nan), diag)
    return q, diag[:, 0], diag[:, 1], diag[:, 2]


def initial_storage(theta) -> float:
    """Basin storage (mm) at the start of a run: the tension, free-water and reservoir stores' initial fill."""
    th = np.asarray(theta, dtype=np.float64)
    im, sm, ci, cg = th[IM], th[SM], th[CI], th[CG]
    soil = INIT_FILL * (th[UM] + th[LM] + th[DM]) + INIT_FR * INIT_FILL * sm
    return (1.0 - im) * soil + ci / (1.0 - ci) * INIT_Q + cg / (1.0 - cg) * INIT_Q


SPEC = ModelSpec(
    "xinanjiang",
    PARAMETERS,
    STATES,
    xinanjiang_kernel,
    snow=tuple(SNOW_CODES),
    continuation=True,
    state_sizes={"lag": LAG_DAYS},
    # tension-water layers, free water and the runoff-area fraction: water above them would be lost silently
    capacities={"upper": "um", "lower": "lm", "deep": "dm", "free_water": "sm", "runoff_area": 1.0},
    reference="Zhao 1992; hydromodel's xaj (Ouyang et al.)",
)
