"""Smooth degree-day snow module: a discrete daily step (for GR4J) and an ODE right-hand side.

Both forms share the rain/snow split ``f_snow = 0.5 (1 - tanh((T - T_tr) / 1 degC))`` and the
potential melt ``f_dd * smooth_pos(T - T_tr)``. Parameters ``T_tr`` (degC) and ``f_dd``
(mm/degC/d) are appended after the model's own parameters; the state ``swe`` (mm) is put first.
"""

from __future__ import annotations

import math

from numba import njit

from .smooth import smooth_pos

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
def _split(t, t_tr):
    """Snowfall fraction and its derivative with respect to T_tr."""
    th = math.tanh(t - t_tr)
    return 0.5 * (1.0 - th), 0.5 * (1.0 - th * th)


@njit(cache=True)
def snow_step(swe, dswe, p, t, theta, i_tr, dw):
    """One day of the discrete snow module with forward-mode derivatives.

    ``dswe`` (d,) is d swe / d theta and is updated in place; ``dw`` (d,) receives
    d(liquid water) / d theta in the entries of T_tr and f_dd (the others must be, and stay, zero).
    ``i_tr`` is the index of T_tr in ``theta`` (f_dd follows).
    Returns the new swe and the liquid water input (rain + melt) in mm/d.
    """
    t_tr = theta[i_tr]
    fdd = theta[i_tr + 1]
    fs, dfs = _split(t, t_tr)
    avail = swe + p * fs
    sp, dsp = smooth_pos(t - t_tr, EPS_T)
    pot = fdd * sp
    diff = avail - pot
    r = math.sqrt(diff * diff + EPS_MELT * EPS_MELT)
    melt = 0.5 * (avail + pot - r)
    ma = 0.5 * (1.0 - diff / r)
    mp = 0.5 * (1.0 + diff / r)
    # the pack depends on T_tr and f_dd only: the other entries of dswe and dw stay zero
    for j in range(i_tr, min(i_tr + 2, dswe.shape[0])):
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
def snow_rates(x, theta, forc):
    """Snow store rate and the liquid water (rain + melt) reaching the model, ODE form.

    ``x[0]`` is the snow store; ``forc`` is (prcp, pet, tmean) of the day; ``T_tr`` and
    ``f_dd`` are the last two entries of ``theta``. Melt fades out as the pack empties
    (factor ``1 - exp(-swe / SWE_FADE)``), which keeps SWE >= 0 without a stiff switch.
    Returns ``dswe/dt, w, d(melt)/d swe, d(melt)/d T_tr, d(melt)/d f_dd, p * dfs/dT_tr``
    where ``fs`` is the snow fraction.
    """
    p = forc[0]
    t = forc[2]
    dc = theta.shape[0] - 2
    t_tr = theta[dc]
    fdd = theta[dc + 1]
    fs, dfs = _split(t, t_tr)
    sp, dsp = smooth_pos(t - t_tr, EPS_T)
    sw, dsw = smooth_pos(x[0], 1e-2)
    ex = math.exp(-sw / SWE_FADE)
    g = 1.0 - ex
    melt = fdd * sp * g
    return p * fs - melt, p * (1.0 - fs) + melt, fdd * sp * ex * dsw / SWE_FADE, -fdd * dsp * g, sp * g, p * dfs


@njit(cache=True)
def couple_snow(rates, f, dfdx, dfdth, dfdp, jac):
    """Write the snow row of ``f`` and the chain-rule coupling into the model's Jacobians.

    ``rates`` is the tuple of :func:`snow_rates`; rows 1.. already hold the core model's
    ``f``, ``df/dx`` and ``df/dtheta`` evaluated at ``w``, and ``dfdp[i - 1]`` its
    derivative with respect to the water input.
    """
    dswe, _, m_swe, m_tr, m_fdd, p_dfs = rates
    f[0] = dswe
    if not jac:
        return
    m, d = dfdth.shape
    dc = d - 2
    dfdx[0, :] = 0.0
    dfdx[0, 0] = -m_swe
    dfdth[0, :] = 0.0
    dfdth[0, dc] = p_dfs - m_tr
    dfdth[0, dc + 1] = -m_fdd
    for i in range(1, m):
        dfdx[i, 0] = dfdp[i - 1] * m_swe
        dfdth[i, dc] = dfdp[i - 1] * (m_tr - p_dfs)
        dfdth[i, dc + 1] = dfdp[i - 1] * m_fdd
