"""Smooth degree-day snow module: a discrete daily step (for GR4J) and an ODE right-hand side.

Both forms share the rain/snow split ``f_snow = 0.5 (1 - tanh((T - T_tr) / 1 degC))`` and the
potential melt ``f_dd * smooth_pos(T - T_tr)``. Parameters ``T_tr`` (degC) and ``f_dd``
(mm/degC/d) are appended after the model's own parameters; the state ``swe`` (mm) is put first.
"""

from __future__ import annotations

import math

from numba import njit

PARAMS = ("T_tr", "f_dd")
BOUNDS = {"T_tr": (-3.0, 3.0), "f_dd": (0.1, 10.0)}
UNITS = {"T_tr": "degC", "f_dd": "mm degC-1 d-1"}

#: Width (degC) of the smoothed positive part of T - T_tr in the melt rate.
EPS_T = 0.1
#: Width (mm) of the smooth minimum of available snow and potential melt (discrete step).
EPS_MELT = 1e-3
#: Depth (mm) over which melt of the ODE form fades out as the pack empties; keeps SWE >= 0
#: without a stiff switch.
SWE_FADE = 1.0


@njit(cache=True)
def smooth_pos(a, eps):
    """(a + sqrt(a^2 + eps^2)) / 2 and its derivative."""
    r = math.sqrt(a * a + eps * eps)
    return 0.5 * (a + r), 0.5 * (1.0 + a / r)


@njit(cache=True)
def _split(p, t, t_tr):
    """Snowfall fraction and its derivative with respect to T_tr."""
    th = math.tanh(t - t_tr)
    return 0.5 * (1.0 - th), 0.5 * (1.0 - th * th)


@njit(cache=True)
def snow_step(swe, dswe, p, t, theta, i_tr, dw):
    """One day of the discrete snow module with forward-mode derivatives.

    ``dswe`` (d,) is d swe / d theta and is updated in place; ``dw`` (d,) receives
    d(liquid water) / d theta. ``i_tr`` is the index of T_tr in ``theta`` (f_dd follows).
    Returns the new swe and the liquid water input (rain + melt) in mm/d.
    """
    t_tr = theta[i_tr]
    fdd = theta[i_tr + 1]
    fs, dfs = _split(p, t, t_tr)
    avail = swe + p * fs
    sp, dsp = smooth_pos(t - t_tr, EPS_T)
    pot = fdd * sp
    diff = avail - pot
    r = math.sqrt(diff * diff + EPS_MELT * EPS_MELT)
    melt = 0.5 * (avail + pot - r)
    ma = 0.5 * (1.0 - diff / r)
    mp = 0.5 * (1.0 + diff / r)
    d = dswe.shape[0]
    for j in range(d):
        davail = dswe[j]
        dpot = 0.0
        if j == i_tr:
            davail += p * dfs
            dpot = -fdd * dsp
        elif j == i_tr + 1:
            dpot = sp
        dmelt = ma * davail + mp * dpot
        dswe[j] = davail - dmelt
        dw[j] = dmelt - (p * dfs if j == i_tr else 0.0)
    return avail - melt, p * (1.0 - fs) + melt


@njit(cache=True)
def with_snow(core, x, theta, forc, f, dfdx, dfdth, dfdp, jac):
    """Right-hand side of a core ODE model with the snow store ``x[0]`` in front.

    ``core(x, theta, p, e, f, dfdx, dfdth, dfdp, jac)`` is the model without snow; it gets
    rain + melt as its precipitation and reports d f / d p in ``dfdp`` so the chain rule
    couples the two stores. ``forc`` is (prcp, pet, tmean) of the day.
    """
    p = forc[0]
    t = forc[2]
    dc = theta.shape[0] - 2
    t_tr = theta[dc]
    fdd = theta[dc + 1]
    swe = x[0]
    fs, dfs = _split(p, t, t_tr)
    sp, dsp = smooth_pos(t - t_tr, EPS_T)
    # availability 1 - exp(-swe+/SWE_FADE): melt stops smoothly as the pack empties
    sw, dsw = smooth_pos(swe, 1e-2)
    ex = math.exp(-sw / SWE_FADE)
    g = 1.0 - ex
    dg = ex * dsw / SWE_FADE
    melt = fdd * sp * g
    w = p * (1.0 - fs) + melt
    core(x[1:], theta[:dc], w, forc[1], f[1:], dfdx[1:, 1:], dfdth[1:, :dc], dfdp, jac)
    f[0] = p * fs - melt
    if not jac:
        return
    dmelt_dswe = fdd * sp * dg
    dmelt_dtr = -fdd * dsp * g
    dmelt_dfdd = sp * g
    m = x.shape[0]
    for i in range(m):
        dfdx[0, i] = 0.0
    dfdx[0, 0] = -dmelt_dswe
    for j in range(dc):
        dfdth[0, j] = 0.0
    dfdth[0, dc] = p * dfs - dmelt_dtr
    dfdth[0, dc + 1] = -dmelt_dfdd
    dw_dtr = -p * dfs + dmelt_dtr
    for i in range(1, m):
        dfdx[i, 0] = dfdp[i - 1] * dmelt_dswe
        dfdth[i, dc] = dfdp[i - 1] * dw_dtr
        dfdth[i, dc + 1] = dfdp[i - 1] * dmelt_dfdd
