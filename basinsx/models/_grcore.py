"""The daily GR models (GR4J, GR5J, GR6J) of airGR in one kernel, with forward-mode sensitivities.

airGR's ``frun_GR4J.f90``, ``frun_GR5J.f90`` and ``frun_GR6J.f90`` share the production store,
percolation, unit hydrographs and routing store operation by operation; they differ in the
exchange term, the unit-hydrograph layout and GR6J's exponential store. :func:`gr_kernel`
follows all three (same operations in the same order) with the differences as branches on
``variant``, except that it multiplies by the reciprocals of ``x1``, ``x3`` and ``(9/4)^4``
where airGR divides: a day is a chain of dependent operations (the production store's level
feeds the next day's), and a division's latency is 3x a multiplication's, so a run is 1.2x
faster while its flow stays within about 1e-12 relative of airGR's (no longer bit-equal). It is
written out in one function on purpose: the same code split into helper functions (even
inlined by numba) ran GR4J 2.5x slower. GR4J (without snow, behind the degree-day module or
behind CemaNeige) from the default start with sensitivities (a calibration's gradient runs, the regional
learner) runs in :func:`gr4j_sens` instead: the same flow, the tangents specialised to GR4J.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .snow import EPS_MELT, EPS_T, snow_step

#: Initial fill of the production and routing stores (airGR's default ``IniResLevels``).
INIT_LEVELS = (0.3, 0.5)
NH = 20
#: Offsets of the states in the kernel's state vector ``x0`` (NaN entries: the default start).
SWE, PROD, ROUT, EXP, UH1, UH2, N_STATES = 0, 1, 2, 3, 4, 4 + NH, 4 + 3 * NH
# airGR writes 0.9 and 0.4 without kind: single-precision literals
B = float(np.float32(0.9))  # share of PR routed through UH1 (GR4J, GR6J) or the routing store (GR5J)
C = float(np.float32(0.4))  # share of UH1's output going to GR6J's exponential store
PERC = 25.62890625  # (9/4)^4
IPERC = 1.0 / PERC
D = 2.5  # unit-hydrograph exponent


@njit(cache=True)
def _ss1(i, c):
    """S-curve of UH1 at integer time i and its derivative with respect to x4 = c."""
    fi = float(i)
    if fi <= 0.0:
        return 0.0, 0.0
    if fi < c:
        v = (fi / c) ** D
        return v, -D * v / c
    return 1.0, 0.0


@njit(cache=True)
def _ss2(i, c):
    """S-curve of UH2 at integer time i and its derivative with respect to x4 = c."""
    fi = float(i)
    if fi <= 0.0:
        return 0.0, 0.0
    if fi <= c:
        v = 0.5 * (fi / c) ** D
        return v, -D * v / c
    if fi < 2.0 * c:
        u = 2.0 - fi / c
        return 1.0 - 0.5 * u**D, -0.5 * D * u ** (D - 1.0) * fi / (c * c)
    return 1.0, 0.0


@njit(cache=True)
def unit_hydrographs(x4):
    """Ordinates of UH1 (NH) and UH2 (2 NH) and their derivatives with respect to x4."""
    o1 = np.zeros(NH)
    d1 = np.zeros(NH)
    o2 = np.zeros(2 * NH)
    d2 = np.zeros(2 * NH)
    for i in range(1, NH + 1):
        a, da = _ss1(i, x4)
        b, db = _ss1(i - 1, x4)
        o1[i - 1] = a - b
        d1[i - 1] = da - db
    for i in range(1, 2 * NH + 1):
        a, da = _ss2(i, x4)
        b, db = _ss2(i - 1, x4)
        o2[i - 1] = a - b
        d2[i - 1] = da - db
    return o1, d1, o2, d2



@njit(cache=True)
def gr_kernel(theta, forcing, warmup, sens, snow, variant, x0):
    """Run GR4J, GR5J or GR6J (optionally behind the degree-day snow module) and its Jacobian.

    Parameters
    ----------
    theta : ndarray (d,)
        ``x1 .. x<variant>`` (then the snow module's), physical units.
    forcing : ndarray (n_forcing, T)
        ``prcp, pet`` (then ``tmean`` with the degree-day snow), mm/d and degC; PET already >= 0.
    warmup : int
        Days run before the reported period.
    sens : bool
        Carry the derivatives; otherwise ``J`` is empty.
    snow : int
        0: none; 1: the degree-day snow module in front; 2: the water input comes from a snow module
        run beforehand (CemaNeige): ``forcing`` rows ``w, pet, dw/dtheta_k...`` for the last parameters.
    variant : int
        4, 5 or 6: the airGR model GR<variant>J.
    x0 : ndarray (N_STATES,)
        Initial states at the offsets ``SWE, PROD, ROUT, EXP, UH1, UH2``: absolute levels (mm),
        constants for the derivatives; NaN keeps the default (stores at ``INIT_LEVELS`` of their
        capacity, with that derivative; snow pack, exponential store, unit hydrographs empty).

    Returns
    -------
    q : ndarray (T - warmup,)
        Daily flow, mm/d.
    J : ndarray (T - warmup, d) or (0, d)
        d q / d theta.
    x_end : ndarray (N_STATES,)
        The states after the last day, laid out as ``x0``.
    """
    d = theta.shape[0]
    n = forcing.shape[1]
    x1 = theta[0]
    x2 = theta[1]
    x3 = theta[2]
    x4 = theta[3]
    x5 = theta[4] if variant >= 5 else 0.0
    x6 = theta[5] if variant == 6 else 1.0
    o1, do1, o2, do2 = unit_hydrographs(x4)
    # reciprocals: multiplications in place of airGR's divisions shorten each day's chain (module docstring)
    ix1 = 1.0 / x1
    ix3 = 1.0 / x3
    ix6 = 1.0 / x6
    nuh1 = max(1, min(NH - 1, int(x4 + 1.0)))
    nuh2 = max(1, min(2 * NH - 1, 2 * int(x4 + 1.0)))
    # what reaches the routing store and the direct branch: fr * uh1[0] and fd * uh2[0], except in
    # GR5J, whose single unit hydrograph (base 2 x4) takes all of PR and is split 90/10 after it
    gr5 = variant == 5
    fr = B if gr5 else (1.0 - C if variant == 6 else 1.0)
    fd = 1.0 - B if gr5 else 1.0
    fuh2 = 1.0 if gr5 else 1.0 - B

    nd = d if sens else 0
    dc = d - forcing.shape[0] + 2 if snow == 2 else nd  # first parameter of a snow module run beforehand
    # the production store and what leaves it (PR) depend on x1 and the snow parameters only: the
    # other tangents of S, PR and the unit hydrographs stay zero and are not carried (x4's come from
    # the ordinates, below)
    first = variant if snow == 1 else dc
    pj = np.empty(1 + nd - first if sens else 0, np.int64)
    if sens:
        pj[0] = 0
        pj[1:] = np.arange(first, nd)
    q = np.zeros(n - warmup)
    jac = np.zeros((n - warmup if sens else 0, d))
    uh1 = np.zeros(NH)
    uh2 = np.zeros(2 * NH)
    duh1 = np.zeros((nd, NH))  # parameter-major: the day's shift runs along rows
    duh2 = np.zeros((nd, 2 * NH))
    duhr = duh2 if gr5 else duh1
    ds = np.zeros(nd)
    dr = np.zeros(nd)
    dx = np.zeros(nd)
    dp1 = np.zeros(nd)
    dpr = np.zeros(nd)
    dexch = np.zeros(nd)
    dq = np.zeros(nd)
    dswe = np.zeros(nd)
    dw = np.zeros(d)

    s = INIT_LEVELS[0] * x1 if np.isnan(x0[PROD]) else x0[PROD]
    r = INIT_LEVELS[1] * x3 if np.isnan(x0[ROUT]) else x0[ROUT]
    rx = 0.0 if np.isnan(x0[EXP]) else x0[EXP]  # GR6J's exponential store starts empty (airGR)
    if sens and np.isnan(x0[PROD]):
        ds[0] = INIT_LEVELS[0]
    if sens and np.isnan(x0[ROUT]):
        dr[2] = INIT_LEVELS[1]
    swe = 0.0 if np.isnan(x0[SWE]) else x0[SWE]
    for i in range(NH):
        uh1[i] = 0.0 if np.isnan(x0[UH1 + i]) else x0[UH1 + i]
    for i in range(2 * NH):
        uh2[i] = 0.0 if np.isnan(x0[UH2 + i]) else x0[UH2 + i]

    for k in range(n):
        e = forcing[1, k]
        if snow == 1:
            swe, p1 = snow_step(swe, dswe, forcing[0, k], forcing[2, k], theta, variant, dw)
            for j in range(nd):
                dp1[j] = dw[j]
        else:
            p1 = forcing[0, k]
            for j in range(dc, nd):
                dp1[j] = forcing[2 + j - dc, k]

        # production store: interception by PET, then store filling or evaporation
        if p1 <= e:
            en = e - p1
            ws = en * ix1
            clip = ws > 13.0
            if clip:
                ws = 13.0
            ex = np.exp(2.0 * ws)
            tws = (ex - 1.0) / (ex + 1.0)
            sr = s * ix1
            num = s * (2.0 - sr) * tws
            den = 1.0 + (1.0 - sr) * tws
            er = num / den
            iden = 1.0 / den if sens else 0.0
            for j in pj:
                dws = 0.0 if clip else -dp1[j] * ix1 - (ws * ix1 if j == 0 else 0.0)
                dt = (1.0 - tws * tws) * dws
                dsr = ds[j] * ix1 - (sr * ix1 if j == 0 else 0.0)
                dnum = ds[j] * (2.0 - sr) * tws - s * dsr * tws + s * (2.0 - sr) * dt
                dden = -dsr * tws + (1.0 - sr) * dt
                ds[j] -= (dnum - er * dden) * iden
                dpr[j] = 0.0
            s = s - er
            pr = 0.0
        else:
            pn = p1 - e
            ws = pn * ix1
            clip = ws > 13.0
            if clip:
                ws = 13.0
            ex = np.exp(2.0 * ws)
            tws = (ex - 1.0) / (ex + 1.0)
            sr = s * ix1
            ps = x1 * (1.0 - sr * sr) * tws / (1.0 + sr * tws)
            den = 1.0 + sr * tws
            iden = 1.0 / den if sens else 0.0
            for j in pj:
                da = 1.0 if j == 0 else 0.0
                dws = 0.0 if clip else dp1[j] * ix1 - ws * ix1 * da
                dt = (1.0 - tws * tws) * dws
                dsr = ds[j] * ix1 - sr * ix1 * da
                dnum = (1.0 - sr * sr) * tws * da - x1 * 2.0 * sr * dsr * tws + x1 * (1.0 - sr * sr) * dt
                dden = dsr * tws + sr * dt
                dps = (dnum - ps * dden) * iden
                ds[j] += dps
                dpr[j] = dp1[j] - dps
            pr = pn - ps
            s = s + ps

        if s < 0.0:
            s = 0.0
            for j in range(nd):
                ds[j] = 0.0

        # percolation
        sr1 = s * ix1
        sr = sr1 * sr1
        sr = sr * sr
        u = 1.0 + sr * IPERC
        g = 1.0 / np.sqrt(np.sqrt(u))
        perc = s * (1.0 - g)
        cg = -0.25 * g / u
        s3 = 4.0 * sr1 * sr1 * sr1
        for j in pj:
            dsr = ds[j] * ix1 - (sr1 * ix1 if j == 0 else 0.0)
            dg = cg * (s3 * dsr * IPERC)
            dperc = ds[j] * (1.0 - g) - s * dg
            ds[j] -= dperc
            dpr[j] += dperc
        s = s - perc
        pr = pr + perc

        # unit hydrographs: UH1 (base x4) takes 90 % of PR, UH2 (base 2 x4) the rest (all of it in GR5J)
        if not gr5:
            prhu1 = pr * B
            for i in range(nuh1):
                uh1[i] = uh1[i + 1] + o1[i] * prhu1
            uh1[NH - 1] = o1[NH - 1] * prhu1
            for j in pj:
                for i in range(nuh1):
                    duh1[j, i] = duh1[j, i + 1] + o1[i] * dpr[j] * B
                duh1[j, NH - 1] = o1[NH - 1] * dpr[j] * B
            if sens:
                for i in range(nuh1):
                    duh1[3, i] = duh1[3, i + 1] + do1[i] * prhu1
                duh1[3, NH - 1] = do1[NH - 1] * prhu1
        prhu2 = pr if gr5 else pr * (1.0 - B)
        for i in range(nuh2):
            uh2[i] = uh2[i + 1] + o2[i] * prhu2
        uh2[2 * NH - 1] = o2[2 * NH - 1] * prhu2
        for j in pj:
            for i in range(nuh2):
                duh2[j, i] = duh2[j, i + 1] + o2[i] * dpr[j] * fuh2
            duh2[j, 2 * NH - 1] = o2[2 * NH - 1] * dpr[j] * fuh2
        if sens:
            for i in range(nuh2):
                duh2[3, i] = duh2[3, i + 1] + do2[i] * prhu2
            duh2[3, 2 * NH - 1] = do2[2 * NH - 1] * prhu2

        # groundwater exchange: x2 (R/x3)^3.5 (GR4J), x2 (R/x3 - x5) (GR5J, GR6J)
        rr = r * ix3
        if variant == 4:
            exch = x2 * rr * rr * rr * np.sqrt(rr)
            c35 = 3.5 * x2 * rr * rr * np.sqrt(rr)
            for j in range(nd):
                drr = dr[j] * ix3 - (rr * ix3 if j == 2 else 0.0)
                dexch[j] = c35 * drr + (rr * rr * rr * np.sqrt(rr) if j == 1 else 0.0)
        else:
            exch = x2 * (rr - x5)
            for j in range(nd):
                drr = dr[j] * ix3 - (rr * ix3 if j == 2 else 0.0)
                dexch[j] = x2 * (drr - (1.0 if j == 4 else 0.0)) + (rr - x5 if j == 1 else 0.0)

        # routing store
        r = r + fr * (uh2[0] if gr5 else uh1[0]) + exch
        if r < 0.0:
            r = 0.0
            for j in range(nd):
                dr[j] = 0.0
        else:
            for j in range(nd):
                dr[j] += fr * duhr[j, 0] + dexch[j]
        rr1 = r * ix3
        rr = rr1 * rr1
        rr = rr * rr
        u = 1.0 + rr
        g = 1.0 / np.sqrt(np.sqrt(u))
        qr = r * (1.0 - g)
        cg = -0.25 * g / u
        r3 = 4.0 * rr1 * rr1 * rr1
        for j in range(nd):
            drr = dr[j] * ix3 - (rr1 * ix3 if j == 2 else 0.0)
            dg = cg * (r3 * drr)
            dqr = dr[j] * (1.0 - g) - r * dg
            dr[j] -= dqr
            dq[j] = dqr
        r = r - qr

        # GR6J's exponential store (may go negative), outflow x6 log(1 + exp(R_exp/x6)) in three pieces
        qx = 0.0
        if variant == 6:
            rx = rx + C * uh1[0] + exch
            ar = rx / x6
            clip = ar > 33.0 or ar < -33.0
            if ar > 33.0:
                ar = 33.0
            if ar < -33.0:
                ar = -33.0
            ea = np.exp(ar)
            if ar > 7.0:
                qx = rx + x6 / ea
            elif ar < -7.0:
                qx = x6 * ea
            else:
                qx = x6 * np.log(ea + 1.0)
            for j in range(nd):
                dx[j] += C * duh1[j, 0] + dexch[j]
                dar = 0.0 if clip else dx[j] * ix6 - (ar * ix6 if j == 5 else 0.0)
                d6 = 1.0 if j == 5 else 0.0
                if ar > 7.0:
                    dqx = dx[j] + (d6 - x6 * dar) / ea
                elif ar < -7.0:
                    dqx = (d6 + x6 * dar) * ea
                else:
                    dqx = d6 * np.log(ea + 1.0) + x6 * ea / (ea + 1.0) * dar
                dx[j] -= dqx
                dq[j] += dqx
            rx = rx - qx

        # direct branch
        qd = fd * uh2[0] + exch
        if qd > 0.0:
            for j in range(nd):
                dq[j] += fd * duh2[j, 0] + dexch[j]
        else:
            qd = 0.0
        if k >= warmup:
            q[k - warmup] = qr + qd + qx if variant == 6 else qr + qd
            for j in range(nd):
                jac[k - warmup, j] = dq[j]
    x_end = np.empty(N_STATES)
    x_end[SWE] = swe
    x_end[PROD] = s
    x_end[ROUT] = r
    x_end[EXP] = rx
    x_end[UH1:UH2] = uh1
    x_end[UH2:] = uh2
    return q, jac, x_end


@njit(cache=True)
def gr4j_sens(theta, forcing, warmup, snow):
    """:func:`gr_kernel` for GR4J from the default start with sensitivities: ``(q, J)``.

    ``snow`` is 0 (none), 1 (the degree-day module in front) or 2 (CemaNeige run beforehand:
    ``forcing`` rows ``w, pet, dw/dtheta_k...`` for the last 2 or 4 parameters). The flow is
    :func:`gr_kernel`'s bit for bit (the same operations in the same order), the Jacobian the same
    derivatives up to rounding, at 0.6-0.8 of that kernel's time (the runs of a calibration's gradient
    search and of the regional learner). Only the non-zero tangents are carried, as scalars: the
    production store and PR depend on x1 and the snow module's parameters alone, the unit
    hydrographs' outputs on these and x4, the routing store and the flow on all. The unit
    hydrographs keep no stores: today's outputs are sums over PR's history, which the derivatives
    share with the flow (the shared kernel shifts a store per parameter every day).
    """
    if snow == 1:
        return _gr4j_sens(theta, forcing, warmup, 1, 2)
    if snow == 2:
        if forcing.shape[0] == 6:  # CemaNeige with hysteresis: ctg, kf, thacc, rsp
            return _gr4j_sens(theta, forcing, warmup, 2, 4)
        return _gr4j_sens(theta, forcing, warmup, 2, 2)
    return _gr4j_sens(theta, forcing, warmup, 0, 0)


@njit(cache=True, inline="always")
def _gr4j_sens(theta, forcing, warmup, snow, ns):
    """:func:`gr4j_sens` for a constant ``snow`` and ``ns`` snow parameters, inlined (numba drops the other branches).

    The snow parameters' tangents (d / d theta[4 + m]) enter through the water input: from the
    degree-day step (``snow`` 1) or the forcing rows ``2 + m`` (``snow`` 2).
    """
    n = forcing.shape[1]
    x1 = theta[0]
    x2 = theta[1]
    x3 = theta[2]
    x4 = theta[3]
    o1, do1, o2, do2 = unit_hydrographs(x4)
    ix1 = 1.0 / x1
    ix3 = 1.0 / x3
    nuh1 = max(1, min(NH - 1, int(x4 + 1.0)))
    nuh2 = max(1, min(2 * NH - 1, 2 * int(x4 + 1.0)))
    q = np.zeros(n - warmup)
    jac = np.zeros((n - warmup, theta.shape[0]))
    # the degree-day module's pack and water input (d / d theta, entries 4, 5); then, for the snow parameters,
    # their water input's, d S, d PR and (theta[4] .. theta[7]) d R
    swe = 0.0
    dswe = np.zeros(theta.shape[0])
    dw = np.zeros(theta.shape[0])
    dwn = np.zeros(ns)
    dsn = np.zeros(ns)
    dprn = np.zeros(ns)
    dr4 = dr5 = dr6 = dr7 = 0.0
    # PR's history behind the unit hydrographs (UH1's and UH2's shares, d PR / d x1), H empty days in front;
    # m1, m2 days of it reach today's outputs (airGR shifts nuh1 ordinates and sets the last one every day)
    H = 2 * NH
    h1 = np.zeros(n + H)
    h2 = np.zeros(n + H)
    hd = np.zeros(n + H)
    hn = np.zeros((n + H if ns else 0, ns))
    m1 = min(nuh1 + 1, NH)
    m2 = min(nuh2 + 1, 2 * NH)
    s = INIT_LEVELS[0] * x1
    r = INIT_LEVELS[1] * x3
    ds = INIT_LEVELS[0]  # d S / d x1
    dr0 = 0.0  # d R / d x1 .. x4
    dr1 = 0.0
    dr2 = INIT_LEVELS[1]
    dr3 = 0.0

    for k in range(n):
        e = forcing[1, k]
        if snow == 1:
            swe, p1 = snow_step(swe, dswe, forcing[0, k], forcing[2, k], theta, 4, dw)
            for m in range(ns):
                dwn[m] = dw[4 + m]
        else:
            p1 = forcing[0, k]
            for m in range(ns):
                dwn[m] = forcing[2 + m, k]
        # production store (the tangents: d / d x1)
        if p1 <= e:
            en = e - p1
            ws = en * ix1
            clip = ws > 13.0
            if clip:
                ws = 13.0
            ex = np.exp(2.0 * ws)
            tws = (ex - 1.0) / (ex + 1.0)
            sr = s * ix1
            num = s * (2.0 - sr) * tws
            den = 1.0 + (1.0 - sr) * tws
            er = num / den
            dws = 0.0 if clip else -(ws * ix1)
            dt = (1.0 - tws * tws) * dws
            dsr = ds * ix1 - sr * ix1
            dnum = ds * (2.0 - sr) * tws - s * dsr * tws + s * (2.0 - sr) * dt
            dden = -dsr * tws + (1.0 - sr) * dt
            iden = 1.0 / den
            ds -= (dnum - er * dden) * iden
            dpr = 0.0
            if ns:
                for m in range(ns):
                    dws = 0.0 if clip else -dwn[m] * ix1
                    dt = (1.0 - tws * tws) * dws
                    dsr = dsn[m] * ix1
                    dnum = dsn[m] * (2.0 - sr) * tws - s * dsr * tws + s * (2.0 - sr) * dt
                    dden = -dsr * tws + (1.0 - sr) * dt
                    dsn[m] -= (dnum - er * dden) * iden
                    dprn[m] = 0.0
            s = s - er
            pr = 0.0
        else:
            pn = p1 - e
            ws = pn * ix1
            clip = ws > 13.0
            if clip:
                ws = 13.0
            ex = np.exp(2.0 * ws)
            tws = (ex - 1.0) / (ex + 1.0)
            sr = s * ix1
            ps = x1 * (1.0 - sr * sr) * tws / (1.0 + sr * tws)
            den = 1.0 + sr * tws
            dws = 0.0 if clip else -(ws * ix1)
            dt = (1.0 - tws * tws) * dws
            dsr = ds * ix1 - sr * ix1
            dnum = (1.0 - sr * sr) * tws - x1 * 2.0 * sr * dsr * tws + x1 * (1.0 - sr * sr) * dt
            dden = dsr * tws + sr * dt
            iden = 1.0 / den
            dps = (dnum - ps * dden) * iden
            ds += dps
            dpr = -dps
            if ns:
                for m in range(ns):
                    dws = 0.0 if clip else dwn[m] * ix1
                    dt = (1.0 - tws * tws) * dws
                    dsr = dsn[m] * ix1
                    dnum = -x1 * 2.0 * sr * dsr * tws + x1 * (1.0 - sr * sr) * dt
                    dden = dsr * tws + sr * dt
                    dps = (dnum - ps * dden) * iden
                    dsn[m] += dps
                    dprn[m] = dwn[m] - dps
            pr = pn - ps
            s = s + ps
        if s < 0.0:
            s = 0.0
            ds = 0.0
            dsn[:] = 0.0

        # percolation
        sr1 = s * ix1
        sr = sr1 * sr1
        sr = sr * sr
        u = 1.0 + sr * IPERC
        g = 1.0 / np.sqrt(np.sqrt(u))
        perc = s * (1.0 - g)
        dsr = ds * ix1 - sr1 * ix1
        dg = (-0.25 * g / u) * (4.0 * sr1 * sr1 * sr1 * dsr * IPERC)
        dperc = ds * (1.0 - g) - s * dg
        ds -= dperc
        dpr += dperc
        if ns:
            for m in range(ns):
                dsr = dsn[m] * ix1
                dg = (-0.25 * g / u) * (4.0 * sr1 * sr1 * sr1 * dsr * IPERC)
                dperc = dsn[m] * (1.0 - g) - s * dg
                dsn[m] -= dperc
                dprn[m] += dperc
        s = s - perc
        pr = pr + perc

        # unit hydrographs: today's outputs as sums over PR's history, oldest day first (the order in
        # which airGR's shifted stores add up, so the flow is the same bit for bit)
        h1[k + H] = pr * B
        h2[k + H] = pr * (1.0 - B)
        hd[k + H] = dpr
        u1 = 0.0
        u1a = 0.0
        u1d = 0.0
        for i in range(m1 - 1, -1, -1):
            u1 += o1[i] * h1[k + H - i]
            u1a += o1[i] * hd[k + H - i]
            u1d += do1[i] * h1[k + H - i]
        u2 = 0.0
        u2a = 0.0
        u2d = 0.0
        for i in range(m2 - 1, -1, -1):
            u2 += o2[i] * h2[k + H - i]
            u2a += o2[i] * hd[k + H - i]
            u2d += do2[i] * h2[k + H - i]
        u1a *= B
        u2a *= 1.0 - B
        # the same for the snow parameters (up to four, as scalars: arrays here cost the degree-day run 17 %)
        u1s4 = u1s5 = u1s6 = u1s7 = u2s4 = u2s5 = u2s6 = u2s7 = 0.0
        if ns:
            for m in range(ns):
                hn[k + H, m] = dprn[m]
            for i in range(m1 - 1, -1, -1):
                u1s4 += o1[i] * hn[k + H - i, 0]
                u1s5 += o1[i] * hn[k + H - i, 1]
                if ns > 2:
                    u1s6 += o1[i] * hn[k + H - i, 2]
                    u1s7 += o1[i] * hn[k + H - i, 3]
            for i in range(m2 - 1, -1, -1):
                u2s4 += o2[i] * hn[k + H - i, 0]
                u2s5 += o2[i] * hn[k + H - i, 1]
                if ns > 2:
                    u2s6 += o2[i] * hn[k + H - i, 2]
                    u2s7 += o2[i] * hn[k + H - i, 3]
            u1s4 *= B
            u1s5 *= B
            u1s6 *= B
            u1s7 *= B
            u2s4 *= 1.0 - B
            u2s5 *= 1.0 - B
            u2s6 *= 1.0 - B
            u2s7 *= 1.0 - B

        # groundwater exchange x2 (R/x3)^3.5; its derivatives with respect to R, x2, x3 in closed form
        rr = r * ix3
        rs = rr * rr * np.sqrt(rr)
        exch = x2 * rr * rr * rr * np.sqrt(rr)
        ce = 3.5 * x2 * rs * ix3
        de0 = ce * dr0
        de1 = ce * dr1 + rr * rs
        de2 = ce * (dr2 - rr)
        de3 = ce * dr3
        de4 = ce * dr4
        de5 = ce * dr5
        de6 = ce * dr6
        de7 = ce * dr7

        # routing store
        r = r + 1.0 * u1 + exch
        if r < 0.0:
            r = 0.0
            dr0 = dr1 = dr2 = dr3 = dr4 = dr5 = dr6 = dr7 = 0.0
        else:
            dr0 += u1a + de0
            dr1 += de1
            dr2 += de2
            dr3 += u1d + de3
            dr4 += u1s4 + de4
            dr5 += u1s5 + de5
            dr6 += u1s6 + de6
            dr7 += u1s7 + de7
        rr1 = r * ix3
        rr = rr1 * rr1
        rr = rr * rr
        u = 1.0 + rr
        g = 1.0 / np.sqrt(np.sqrt(u))
        qr = r * (1.0 - g)
        # d QR / d R = 1 - g + w and d QR / d x3 = -w R / x3, so R keeps g / u of its tangent: one
        # multiplication per day on each tangent's chain
        gu = g / u
        w = gu * rr
        cq = (1.0 - g) + w
        q0 = dr0 * cq
        q1 = dr1 * cq
        q2 = dr2 * cq - w * rr1
        q3 = dr3 * cq
        q4 = dr4 * cq
        q5 = dr5 * cq
        q6 = dr6 * cq
        q7 = dr7 * cq
        dr0 *= gu
        dr1 *= gu
        dr2 = dr2 * gu + w * rr1
        dr3 *= gu
        dr4 *= gu
        dr5 *= gu
        dr6 *= gu
        dr7 *= gu
        r = r - qr

        # direct branch
        qd = 1.0 * u2 + exch
        if qd > 0.0:
            q0 += u2a + de0
            q1 += de1
            q2 += de2
            q3 += u2d + de3
            q4 += u2s4 + de4
            q5 += u2s5 + de5
            q6 += u2s6 + de6
            q7 += u2s7 + de7
        else:
            qd = 0.0
        if k >= warmup:
            q[k - warmup] = qr + qd
            jac[k - warmup, 0] = q0
            jac[k - warmup, 1] = q1
            jac[k - warmup, 2] = q2
            jac[k - warmup, 3] = q3
            if ns:
                jac[k - warmup, 4] = q4
                jac[k - warmup, 5] = q5
            if ns > 2:
                jac[k - warmup, 6] = q6
                jac[k - warmup, 7] = q7
    return q, jac


@njit(cache=True)
def gr4j_many(theta, forcing, warmup):
    """Plain GR4J runs (no snow, default start) of the sets ``theta (m, 4)`` on one forcing: ``q (m, T - warmup)``.

    The flows equal :func:`gr_kernel`'s bit for bit (the same operations), but the sets advance
    day by day together: one run is a chain of dependent operations, and independent chains
    side by side keep the processor busy (a calibration's screening). The unit hydrographs of all
    sets shift over the longest one's ordinates (the others' are zero there, as are their stores).
    """
    return _gr4j_many(theta, forcing[:1], forcing[1], warmup, False)


@njit(cache=True)
def gr4j_many_input(theta, w, pet, warmup):
    """:func:`gr4j_many` with a water input per set, ``w (m, T)`` (a snow module run beforehand, as CemaNeige).

    The flows equal :func:`gr_kernel`'s with ``snow=2`` (``forcing`` rows ``w[b], pet``) bit for bit.
    """
    return _gr4j_many(theta, w, pet, warmup, True)


@njit(cache=True, inline="always")
def _gr4j_many(theta, w, pet, warmup, per_set):
    """:func:`gr4j_many` on the water input ``w[b]`` of each set (``per_set``) or ``w[0]`` for all."""
    m = theta.shape[0]
    n = pet.shape[0]
    q = np.zeros((m, n - warmup))
    x1 = theta[:, 0].copy()
    x2 = theta[:, 1].copy()
    x3 = theta[:, 2].copy()
    ix1 = 1.0 / x1
    ix3 = 1.0 / x3
    o1 = np.zeros((NH, m))  # set-minor: the shift of all sets' stores runs along rows
    o2 = np.zeros((2 * NH, m))
    nuh1 = 1
    nuh2 = 1
    for b in range(m):
        u1, _, u2, _ = unit_hydrographs(theta[b, 3])
        o1[:, b] = u1
        o2[:, b] = u2
        nuh1 = max(nuh1, min(NH - 1, int(theta[b, 3] + 1.0)))
        nuh2 = max(nuh2, min(2 * NH - 1, 2 * int(theta[b, 3] + 1.0)))
    s = INIT_LEVELS[0] * x1
    r = INIT_LEVELS[1] * x3
    pr = np.zeros(m)
    uh1 = np.zeros((NH, m))
    uh2 = np.zeros((2 * NH, m))
    for k in range(n):
        p1 = w[0, k]
        e = pet[k]
        for b in range(m):  # production store and percolation
            if per_set:
                p1 = w[b, k]
            sb = s[b]
            if p1 <= e:
                ws = (e - p1) * ix1[b]
                if ws > 13.0:
                    ws = 13.0
                ex = np.exp(2.0 * ws)
                tws = (ex - 1.0) / (ex + 1.0)
                sr = sb * ix1[b]
                sb = sb - sb * (2.0 - sr) * tws / (1.0 + (1.0 - sr) * tws)
                pb = 0.0
            else:
                pn = p1 - e
                ws = pn * ix1[b]
                if ws > 13.0:
                    ws = 13.0
                ex = np.exp(2.0 * ws)
                tws = (ex - 1.0) / (ex + 1.0)
                sr = sb * ix1[b]
                ps = x1[b] * (1.0 - sr * sr) * tws / (1.0 + sr * tws)
                pb = pn - ps
                sb = sb + ps
            if sb < 0.0:
                sb = 0.0
            sr1 = sb * ix1[b]
            sr = sr1 * sr1
            sr = sr * sr
            perc = sb * (1.0 - 1.0 / np.sqrt(np.sqrt(1.0 + sr * IPERC)))
            s[b] = sb - perc
            pr[b] = pb + perc
        for i in range(nuh1):
            for b in range(m):
                uh1[i, b] = uh1[i + 1, b] + o1[i, b] * (pr[b] * B)
        for b in range(m):
            uh1[NH - 1, b] = o1[NH - 1, b] * (pr[b] * B)
        for i in range(nuh2):
            for b in range(m):
                uh2[i, b] = uh2[i + 1, b] + o2[i, b] * (pr[b] * (1.0 - B))
        for b in range(m):
            uh2[2 * NH - 1, b] = o2[2 * NH - 1, b] * (pr[b] * (1.0 - B))
        for b in range(m):  # exchange, routing store, direct branch
            rr = r[b] * ix3[b]
            exch = x2[b] * rr * rr * rr * np.sqrt(rr)
            rb = r[b] + 1.0 * uh1[0, b] + exch
            if rb < 0.0:
                rb = 0.0
            rr1 = rb * ix3[b]
            rr = rr1 * rr1
            rr = rr * rr
            qr = rb * (1.0 - 1.0 / np.sqrt(np.sqrt(1.0 + rr)))
            r[b] = rb - qr
            qd = 1.0 * uh2[0, b] + exch
            if qd <= 0.0:
                qd = 0.0
            if k >= warmup:
                q[b, k - warmup] = qr + qd
    return q


#: Basins per block of :func:`gr4j_sens_many` (measured: benchmarks/gr4j_sens_many.py).
SENS_BLOCK = 32
RING = 2 * NH  # days of PR the unit hydrographs reach back


@njit(cache=True, error_model="numpy")  # no zero-divisor checks: they keep the loops over basins from vectorising
def gr4j_sens_many(theta, forcing, warmup, snow, block=SENS_BLOCK):
    """:func:`gr4j_sens` for basins ``theta (basin, d)``, ``forcing (basin, n_forcing, T)``, side by side: ``(q, J)``.

    ``q (basin, T - warmup)``, ``J (basin, T - warmup, d)``; ``snow`` as in :func:`gr4j_sens`. Flow and
    Jacobian equal :func:`gr4j_sens`'s per basin bit for bit (the same operations in the same order), but
    the basins run in blocks of ``block``, advancing day by day together: each stage of a day is a loop
    over the block's basins on basin-minor arrays, the production store's two branches are both computed
    and one chosen, and ``exp`` (a library call) has a loop of its own, so that the compiler vectorises
    the other loops across basins (a GR4J day with its tangents is bound by the processor's throughput,
    not by its chain of dependent operations). Blocks gather basins of similar ``x4``: the unit-hydrograph
    sums of a block run over its longest ordinates (the others' are zero there: adding them changes no bit).
    """
    if snow == 1:
        return _sens_blocks(theta, forcing, warmup, 1, 2, block)
    if snow == 2:
        if forcing.shape[1] == 6:
            return _sens_blocks(theta, forcing, warmup, 2, 4, block)
        return _sens_blocks(theta, forcing, warmup, 2, 2, block)
    return _sens_blocks(theta, forcing, warmup, 0, 0, block)


@njit(cache=True, inline="always")
def _sens_blocks(theta, forcing, warmup, snow, ns, block):
    """:func:`gr4j_sens_many` for a constant ``snow`` and ``ns`` snow parameters: gather, run, scatter each block."""
    nb, d = theta.shape
    q = np.empty((nb, forcing.shape[2] - warmup))
    jac = np.empty((nb, forcing.shape[2] - warmup, d))
    order = np.argsort(theta[:, 3])  # blocks of similar x4: similar unit-hydrograph lengths
    for a in range(0, nb, block):
        _sens_block(theta, forcing, order[a:a + block], warmup, snow, ns, q, jac)
    return q, jac


@njit(cache=True, inline="always")
def _sens_block(theta, forcing, idx, warmup, snow, ns, q, jac):
    """The basins ``idx`` of :func:`gr4j_sens_many`, their results written into ``q``, ``jac``.

    Per day: the day's forcing gathered basin-minor, the snow module and WS, ``exp`` (and the rain/snow
    split's ``tanh``), the production store and percolation, the unit hydrographs (PR's last days in a
    ring), the routing store and the direct branch, each a loop over the block's basins; then the day's
    flow and Jacobian scattered to the basins.
    """
    m = idx.shape[0]
    d = theta.shape[1]
    nf = forcing.shape[1]
    n = forcing.shape[2]
    th = np.empty((d, m))
    for c in range(m):
        th[:, c] = theta[idx[c]]
    fd = np.empty((nf, m))  # the day's forcing
    qday = np.empty(m)
    jday = np.empty((d, m))
    x1 = th[0].copy()
    x2 = th[1].copy()
    x3 = th[2].copy()
    ix1 = 1.0 / x1
    ix3 = 1.0 / x3
    o1 = np.zeros((NH, m))
    do1 = np.zeros((NH, m))
    o2 = np.zeros((2 * NH, m))
    do2 = np.zeros((2 * NH, m))
    m1 = 1
    m2 = 1
    for b in range(m):
        a1, da1, a2, da2 = unit_hydrographs(th[3, b])
        o1[:, b] = a1
        do1[:, b] = da1
        o2[:, b] = a2
        do2[:, b] = da2
        m1 = max(m1, min(max(1, min(NH - 1, int(th[3, b] + 1.0))) + 1, NH))
        m2 = max(m2, min(max(1, min(2 * NH - 1, 2 * int(th[3, b] + 1.0))) + 1, 2 * NH))
    h1 = np.zeros((RING, m))  # PR's last RING days (day k in row k % RING; rows not yet written: zero)
    h2 = np.zeros((RING, m))
    hd = np.zeros((RING, m))
    hn = np.zeros((ns, RING, m))
    dprn = np.zeros((ns, m))
    cer = np.zeros(m)
    cqr = np.zeros(m)
    gur = np.zeros(m)
    negr = np.zeros(m, np.bool_)
    posr = np.zeros(m, np.bool_)
    tha = np.zeros(m)
    if snow == 1:
        t_tr = th[4].copy()
        fdd = th[5].copy()
    else:
        t_tr = np.zeros(m)
        fdd = np.zeros(m)
    swe = np.zeros(m)
    dswe0 = np.zeros(m)
    dswe1 = np.zeros(m)
    dwn = np.zeros((ns, m))
    p1 = np.zeros(m)
    ws = np.zeros(m)
    ex = np.zeros(m)
    s = INIT_LEVELS[0] * x1
    r = INIT_LEVELS[1] * x3
    ds = np.full(m, INIT_LEVELS[0])
    dsn = np.zeros((ns, m))
    dr0 = np.zeros(m)
    dr1 = np.zeros(m)
    dr2 = np.full(m, INIT_LEVELS[1])
    dr3 = np.zeros(m)
    drn = np.zeros((ns, m))
    u1 = np.zeros(m)
    u1a = np.zeros(m)
    u1d = np.zeros(m)
    u2 = np.zeros(m)
    u2a = np.zeros(m)
    u2d = np.zeros(m)
    u1s = np.zeros((ns, m))
    u2s = np.zeros((ns, m))

    for k in range(n):
        kh = k % RING
        for i in range(nf):
            for c in range(m):
                fd[i, c] = forcing[idx[c], i, k]
        if snow == 1:
            for b in range(m):  # the rain/snow split's tanh (a library call: a loop of its own)
                tha[b] = math.tanh(fd[2, b] - t_tr[b])
        for b in range(m):  # snow module, water input, WS
            if snow == 1:
                p = fd[0, b]
                tt = tha[b]
                fs = 0.5 * (1.0 - tt)
                dfs = 0.5 * (1.0 - tt * tt)
                avail = swe[b] + p * fs
                a = fd[2, b] - t_tr[b]
                ra = math.sqrt(a * a + EPS_T * EPS_T)
                sp = 0.5 * (a + ra)
                dsp = 0.5 * (1.0 + a / ra)
                pot = fdd[b] * sp
                diff = avail - pot
                rq = math.sqrt(diff * diff + EPS_MELT * EPS_MELT)
                melt = 0.5 * (avail + pot - rq)
                ma = 0.5 * (1.0 - diff / rq)
                mp = 0.5 * (1.0 + diff / rq)
                davail = dswe0[b] + p * dfs
                dmelt = ma * davail + mp * (-fdd[b] * dsp)
                dswe0[b] = davail - dmelt
                dwn[0, b] = dmelt - p * dfs
                davail = dswe1[b]
                dmelt = ma * davail + mp * sp
                dswe1[b] = davail - dmelt
                dwn[1, b] = dmelt - 0.0
                swe[b] = avail - melt
                pb = p * (1.0 - fs) + melt
            else:
                pb = fd[0, b]
                for mm in range(ns):
                    dwn[mm, b] = fd[2 + mm, b]
            e = fd[1, b]
            w = (e - pb if pb <= e else pb - e) * ix1[b]
            ws[b] = w
            p1[b] = pb
        for b in range(m):  # exp: a library call, alone in its loop so that the others vectorise
            ex[b] = np.exp(2.0 * min(ws[b], 13.0))
        for b in range(m):  # production store, both branches computed, then chosen
            pb = p1[b]
            e = fd[1, b]
            dry = pb <= e
            xb = x1[b]
            ixb = ix1[b]
            s0 = s[b]
            dsb = ds[b]
            wsb = ws[b]
            clip = wsb > 13.0
            exb = ex[b]
            tws = (exb - 1.0) / (exb + 1.0)
            sr = s0 * ixb
            num = s0 * (2.0 - sr) * tws if dry else xb * (1.0 - sr * sr) * tws
            den = 1.0 + (1.0 - sr) * tws if dry else 1.0 + sr * tws
            quo = num / den
            iden = 1.0 / den
            dws = 0.0 if clip else -(wsb * ixb)
            dt = (1.0 - tws * tws) * dws
            dsr = dsb * ixb - sr * ixb
            dnum_d = dsb * (2.0 - sr) * tws - s0 * dsr * tws + s0 * (2.0 - sr) * dt
            dnum_w = (1.0 - sr * sr) * tws - xb * 2.0 * sr * dsr * tws + xb * (1.0 - sr * sr) * dt
            dden_d = -dsr * tws + (1.0 - sr) * dt
            dden_w = dsr * tws + sr * dt
            x = ((dnum_d if dry else dnum_w) - quo * (dden_d if dry else dden_w)) * iden
            dsb = dsb - x if dry else dsb + x
            dpr = 0.0 if dry else -x
            for mm in range(ns):
                dsnb = dsn[mm, b]
                dwb = dwn[mm, b]
                dws = 0.0 if clip else (-dwb * ixb if dry else dwb * ixb)
                dt = (1.0 - tws * tws) * dws
                dsr = dsnb * ixb
                dnum_d = dsnb * (2.0 - sr) * tws - s0 * dsr * tws + s0 * (2.0 - sr) * dt
                dnum_w = -xb * 2.0 * sr * dsr * tws + xb * (1.0 - sr * sr) * dt
                dden_d = -dsr * tws + (1.0 - sr) * dt
                dden_w = dsr * tws + sr * dt
                y = ((dnum_d if dry else dnum_w) - quo * (dden_d if dry else dden_w)) * iden
                dsn[mm, b] = dsnb - y if dry else dsnb + y
                dprn[mm, b] = 0.0 if dry else dwb - y
            sb = s0 - quo if dry else s0 + quo
            pr = 0.0 if dry else (pb - e) - quo
            neg = sb < 0.0
            sb = 0.0 if neg else sb
            dsb = 0.0 if neg else dsb
            sr1 = sb * ixb
            sr4 = sr1 * sr1
            sr4 = sr4 * sr4
            u = 1.0 + sr4 * IPERC
            g = 1.0 / np.sqrt(np.sqrt(u))
            perc = sb * (1.0 - g)
            cg = -0.25 * g / u
            dsr = dsb * ixb - sr1 * ixb
            dg = cg * (4.0 * sr1 * sr1 * sr1 * dsr * IPERC)
            dperc = dsb * (1.0 - g) - sb * dg
            ds[b] = dsb - dperc
            hd[kh, b] = dpr + dperc
            for mm in range(ns):
                dsnb = 0.0 if neg else dsn[mm, b]
                dsr = dsnb * ixb
                dg = cg * (4.0 * sr1 * sr1 * sr1 * dsr * IPERC)
                dperc = dsnb * (1.0 - g) - sb * dg
                dsn[mm, b] = dsnb - dperc
                hn[mm, kh, b] = dprn[mm, b] + dperc
            s[b] = sb - perc
            pr = pr + perc
            h1[kh, b] = pr * B
            h2[kh, b] = pr * (1.0 - B)

        # unit hydrographs: each sum in its own loop over the basins (few arrays: the loops vectorise)
        _uh_sum(u1, o1, h1, k, m1, 1.0)
        _uh_sum(u1a, o1, hd, k, m1, B)
        _uh_sum(u1d, do1, h1, k, m1, 1.0)
        _uh_sum(u2, o2, h2, k, m2, 1.0)
        _uh_sum(u2a, o2, hd, k, m2, 1.0 - B)
        _uh_sum(u2d, do2, h2, k, m2, 1.0)
        for mm in range(ns):
            _uh_sum(u1s[mm], o1, hn[mm], k, m1, B)
            _uh_sum(u2s[mm], o2, hn[mm], k, m2, 1.0 - B)

        kk = k - warmup
        for b in range(m):  # exchange, routing store, direct branch
            rb = r[b]
            rr = rb * ix3[b]
            rs = rr * rr * np.sqrt(rr)
            exch = x2[b] * rr * rr * rr * np.sqrt(rr)
            ce = 3.5 * x2[b] * rs * ix3[b]
            de0 = ce * dr0[b]
            de1 = ce * dr1[b] + rr * rs
            de2 = ce * (dr2[b] - rr)
            de3 = ce * dr3[b]
            rb = rb + 1.0 * u1[b] + exch
            neg = rb < 0.0
            rb = 0.0 if neg else rb
            e0 = 0.0 if neg else dr0[b] + (u1a[b] + de0)
            e1 = 0.0 if neg else dr1[b] + de1
            e2 = 0.0 if neg else dr2[b] + de2
            e3 = 0.0 if neg else dr3[b] + (u1d[b] + de3)
            rr1 = rb * ix3[b]
            rr = rr1 * rr1
            rr = rr * rr
            u = 1.0 + rr
            g = 1.0 / np.sqrt(np.sqrt(u))
            qr = rb * (1.0 - g)
            gu = g / u
            w = gu * rr
            cq = (1.0 - g) + w
            q0 = e0 * cq
            q1 = e1 * cq
            q2 = e2 * cq - w * rr1
            q3 = e3 * cq
            dr0[b] = e0 * gu
            dr1[b] = e1 * gu
            dr2[b] = e2 * gu + w * rr1
            dr3[b] = e3 * gu
            r[b] = rb - qr
            qd = 1.0 * u2[b] + exch
            pos = qd > 0.0
            qd = qd if pos else 0.0
            q0 = q0 + (u2a[b] + de0) if pos else q0
            q1 = q1 + de1 if pos else q1
            q2 = q2 + de2 if pos else q2
            q3 = q3 + (u2d[b] + de3) if pos else q3
            qday[b] = qr + qd
            jday[0, b] = q0
            jday[1, b] = q1
            jday[2, b] = q2
            jday[3, b] = q3
            cer[b] = ce
            negr[b] = neg
            cqr[b] = cq
            gur[b] = gu
            posr[b] = pos
        for mm in range(ns):  # the snow parameters' tangents of R and the flow
            for b in range(m):
                de = cer[b] * drn[mm, b]
                e4 = 0.0 if negr[b] else drn[mm, b] + (u1s[mm, b] + de)
                qn = e4 * cqr[b]
                drn[mm, b] = e4 * gur[b]
                qn = qn + (u2s[mm, b] + de) if posr[b] else qn
                jday[4 + mm, b] = qn
        if kk >= 0:
            for c in range(m):
                q[idx[c], kk] = qday[c]
                for j in range(d):
                    jac[idx[c], kk, j] = jday[j, c]


@njit(cache=True, inline="always")
def _uh_sum(acc, o, h, k, mlen, scale):
    """``acc = scale * sum(o[i] PR[k - i])`` over ``i = mlen - 1 .. 0`` per basin, oldest day first (as gr4j_sens)."""
    for b in range(acc.shape[0]):
        acc[b] = 0.0
    for i in range(mlen - 1, -1, -1):
        j = (k - i) % RING
        for b in range(acc.shape[0]):
            acc[b] += o[i, b] * h[j, b]
    for b in range(acc.shape[0]):
        acc[b] *= scale


@njit(cache=True)
def gr_batch(theta, forcing, warmup, sens, snow, variant):
    """:func:`gr_kernel` for basins ``theta (basin, d)``, ``forcing (basin, n_forcing, T)`` in one call.

    Every basin starts from the default states. Returns ``q (basin, T - warmup)`` and
    ``J (basin, T - warmup, d)`` (``(basin, 0, d)`` without ``sens``). GR4J with ``sens`` runs in
    :func:`gr4j_sens_many` (each basin's results those of :func:`gr4j_sens`, bit for bit).
    """
    nb, d = theta.shape
    n = forcing.shape[2] - warmup
    if sens and variant == 4:  # the basins side by side (the regional learner's step)
        return gr4j_sens_many(theta, forcing, warmup, snow)
    x0 = np.full(N_STATES, np.nan)
    q = np.empty((nb, n))
    jac = np.empty((nb, n if sens else 0, d))
    for b in range(nb):
        qb, jb, _ = gr_kernel(theta[b], forcing[b], warmup, sens, snow, variant, x0)
        q[b] = qb
        jac[b] = jb
    return q, jac


#: The kernel's ``x0`` for the default start (read only).
_DEFAULT_START = np.full(N_STATES, np.nan)


def _layout(variant, snow):
    """Offsets in the kernel's state vector of the entries of ``Model.states`` (flattened, in their order)."""
    uh = [] if variant == 5 else list(range(UH1, UH2))
    return np.array([SWE] * (snow == 1) + [PROD, ROUT] + [EXP] * (variant == 6) + uh
                    + list(range(UH2, N_STATES)), dtype=np.int64)


def gr_run(theta, forcing, warmup, sens, snow, variant, x0=None):
    """:func:`gr_kernel` with the states of ``Model.states``: ``(q, J)``, or ``(q, J, x_end)`` when ``x0`` is given.

    ``x0`` is the flat vector of the model's states (``swe`` first with the degree-day snow,
    then ``production``, ``routing``, [``exponential``], [``uh1`` (NH)], ``uh2`` (2 NH)), NaN
    for the default start; ``x_end`` the same states after the last day.
    """
    if x0 is None:  # the default start: no layout to build (a calibration's inner loop)
        if sens and variant == 4:
            return gr4j_sens(theta, forcing, warmup, snow)
        q, jac, _ = gr_kernel(theta, forcing, warmup, sens, snow, variant, _DEFAULT_START)
        return q, jac
    layout = _layout(variant, snow)
    full = np.full(N_STATES, np.nan)
    full[layout] = x0
    q, jac, x_end = gr_kernel(theta, forcing, warmup, sens, snow, variant, full)
    return q, jac, x_end[layout]
