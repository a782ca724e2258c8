"""Heun integrators of a model ODE together with its forward sensitivity equations.

The augmented system is ``dx/dt = f(x, theta)``, ``dS/dt = (df/dx) S + df/dtheta`` with
``S = dx/dtheta``. Forcing is constant within a day. The last state is the cumulative
outflow; it is reset to zero at the start of each day so that its value at the end of the
day is the daily flow (and the last row of ``S`` its Jacobian row) without the round-off of
differencing a long running sum.

Two schemes:

* adaptive: Heun (RK2) with the embedded Euler step as error estimate over all ``m (d + 1)``
  variables, weighted RMS norm ``|err_i| / (atol + rtol max(|y_i|, |y_new_i|))``, step factor
  ``max(0.2, min(5, 0.9 wrms^-1/2))`` (Vrugt et al. 2026);
* fixed: ``n_sub`` Heun steps per day. Explicit Runge-Kutta steps commute with
  differentiation, so the sensitivities are then the exact derivatives of the discrete map.

The snow options are written once here (:func:`model_rhs`): the degree-day store as an extra
state in front, or a snow module run beforehand (CemaNeige) whose water input and its
parameter derivatives come as forcing rows, piecewise constant over the day.

Each model module keeps one cached entry point, ``_run = heun(rhs_core, ...)`` in three lines,
into which :func:`heun` and :func:`model_rhs` are inlined (numba IR inlining). A factory
here cannot make it: numba caches neither a closure over a jitted function nor a jitted
function taking one as an argument (checked with numba 0.6x: both key the cache index on the
dispatcher's per-process uuid, so every new process misses and writes another ``.nbc``).
numba stamps a function's cache with its own file only; :func:`cache_on_kernels` adds the
sources of the kernels compiled into ``_run``, so that editing them recompiles it.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from numba import njit

from .snow import couple_snow, snow_rates

#: The sources compiled into each ODE model's ``_run`` besides the model's own file.
KERNEL_SOURCES = tuple(Path(__file__).with_name(f)
                       for f in ("integrate.py", "implicit.py", "rosenbrock.py", "snow.py", "smooth.py"))


def cache_on_kernels(dispatcher, sources=KERNEL_SOURCES):
    """Key the numba cache of ``dispatcher`` (``njit(cache=True)``, not yet called) on ``sources`` too.

    numba reuses a cached compilation while the function's own file is unchanged, even when the
    jitted functions inlined into it or called by it (here :func:`heun`, the implicit schemes, the
    snow rates) have changed: a stale kernel, silently. Mixing the bytes of ``sources`` into the
    cache's source stamp invalidates it with them. Returns ``dispatcher``.
    """
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if cache_file is not None:  # numba's internals; without them the plain cache stays
        digest = hashlib.sha256(repr(cache_file._source_stamp).encode())
        for path in sources:
            digest.update(Path(path).read_bytes())
        cache_file._source_stamp = digest.hexdigest()
    return dispatcher


@njit(cache=True)
def tangent(s, a, b, k):
    """``k = (df/dx) S + df/dtheta``: the tangent of the sensitivity equations (written into ``k``).

    The models' ``df/dx`` are mostly structural zeros (each store feeds one or two others): they are
    skipped, which leaves the sums, in the same order, bit for bit as the dense product.
    """
    m, d = s.shape
    for i in range(m):
        for j in range(d):
            k[i, j] = b[i, j]
        for q in range(m):
            aiq = a[i, q]
            if aiq != 0.0:
                for j in range(d):
                    k[i, j] += aiq * s[q, j]


@njit(inline="always")
def model_rhs(core, snow, x, th, forc, f, a, b, dfdp, jac):
    """The right-hand side ``core(x, theta, p, e, f, dfdx, dfdtheta, dfdp, jac)`` of a model behind a snow option.

    ``snow``: 0 none; 1 the degree-day store (state 0, parameters ``T_tr, f_dd`` last, forcing
    ``prcp, pet, tmean``); 2 the water of a snow module run beforehand (forcing rows
    ``w, pet, dw/dtheta_k...`` for the last parameters): the chain rule ``df/dp dw/dtheta``.
    """
    if snow == 1:
        rates = snow_rates(x, th, forc)
        dc = th.shape[0] - 2
        core(x[1:], th[:dc], rates[1], forc[1], f[1:], a[1:, 1:], b[1:, :dc], dfdp, jac)
        couple_snow(rates, f, a, b, dfdp, jac)
    elif snow == 2:
        dc = th.shape[0] - forc.shape[0] + 2
        core(x, th[:dc], forc[0], forc[1], f, a, b[:, :dc], dfdp, jac)
        if jac:
            for i in range(x.shape[0]):
                for j in range(dc, th.shape[0]):
                    b[i, j] = dfdp[i] * forc[2 + j - dc]
    else:
        core(x, th, forc[0], forc[1], f, a, b, dfdp, jac)


def rhs_functions(core):
    """Python-callable ``rhs(x, theta, forc, f, dfdx, dfdtheta, dfdp, jac)`` without and with the degree-day store.

    For tests and inspection; not cached (see the module docstring), compiled on first call.
    """

    @njit
    def rhs(x, th, forc, f, a, b, dfdp, jac):
        model_rhs(core, 0, x, th, forc, f, a, b, dfdp, jac)

    @njit
    def rhs_snow(x, th, forc, f, a, b, dfdp, jac):
        model_rhs(core, 1, x, th, forc, f, a, b, dfdp, jac)

    return rhs, rhs_snow


@njit(inline="always")
def heun(core, snow, theta, forcing, x0, s0, warmup, sens, fixed, n_sub, rtol, atol, h0, hmin, hmax):
    """Integrate a model day by day; see the module docstring.

    ``core(x, theta, p, e, f, dfdx, dfdtheta, dfdp, jac)`` fills ``f`` and, when ``jac``, the
    Jacobians with respect to the states, the parameters and the water input ``p``; ``snow``
    is the option of :func:`model_rhs`. ``x0`` (m,) and ``s0`` (m, d)
    are the initial states and their derivatives; ``x0`` is overwritten with the states after
    the last day (an in/out argument, so that the return type stays ``(q, J)`` for
    :class:`Kernel`'s state continuation). Returns ``q`` (T - warmup,) and ``J``
    (T - warmup, d), or (0, d) without ``sens``.
    """
    m = x0.shape[0]
    d = theta.shape[0]
    n = forcing.shape[1]
    nf = forcing.shape[0]
    ds_ = d if sens else 0
    q = np.zeros(n - warmup)
    jac = np.zeros((n - warmup if sens else 0, d))
    x = x0.copy()
    s = np.zeros((m, ds_))
    if sens:
        s[:, :] = s0
    f1 = np.zeros(m)
    f2 = np.zeros(m)
    k1 = np.zeros((m, ds_))
    k2 = np.zeros((m, ds_))
    a = np.zeros((m, m))
    b = np.zeros((m, d))
    dfdp = np.zeros(m)
    xe = np.zeros(m)
    se = np.zeros((m, ds_))
    xn = np.zeros(m)
    sn = np.zeros((m, ds_))
    forc = np.zeros(nf)
    h = h0
    h_prop = h0
    for day in range(n):
        for i in range(nf):
            forc[i] = forcing[i, day]
        x[m - 1] = 0.0
        for j in range(ds_):
            s[m - 1, j] = 0.0
        t = 0.0
        if fixed:
            h = 1.0 / n_sub
        while t < 1.0 - 1e-12:
            if not fixed:
                h_prop = h
                h = min(h, 1.0 - t)
            model_rhs(core, snow, x, theta, forc, f1, a, b, dfdp, sens)
            if sens:
                tangent(s, a, b, k1)
            for i in range(m):
                xe[i] = x[i] + h * f1[i]
                for j in range(ds_):
                    se[i, j] = s[i, j] + h * k1[i, j]
            model_rhs(core, snow, xe, theta, forc, f2, a, b, dfdp, sens)
            if sens:
                tangent(se, a, b, k2)
            wrms = 0.0
            for i in range(m):
                xn[i] = x[i] + 0.5 * h * (f1[i] + f2[i])
                for j in range(ds_):
                    sn[i, j] = s[i, j] + 0.5 * h * (k1[i, j] + k2[i, j])
            if fixed:
                accept = True
            else:
                for i in range(m):
                    sc = atol + rtol * max(abs(x[i]), abs(xn[i]))
                    e = 0.5 * h * (f2[i] - f1[i]) / sc
                    wrms += e * e
                    for j in range(ds_):
                        sc = atol + rtol * max(abs(s[i, j]), abs(sn[i, j]))
                        e = 0.5 * h * (k2[i, j] - k1[i, j]) / sc
                        wrms += e * e
                wrms = math.sqrt(wrms / (m * (1 + ds_)))
                accept = wrms <= 1.0 or h <= hmin
            if accept:
                t += h
                for i in range(m):
                    x[i] = xn[i]
                    for j in range(ds_):
                        s[i, j] = sn[i, j]
            if not fixed:
                fac = 5.0 if wrms == 0.0 else max(0.2, min(5.0, 0.9 / math.sqrt(wrms)))
                h_new = h * fac
                if accept and h < h_prop:
                    # the step was cut short by the end of the day: the growth limit of 5 must
                    # not shrink the proposal that the error estimate still allows
                    h_new = h_prop if wrms == 0.0 else max(h_new, min(h_prop, 0.9 * h / math.sqrt(wrms)))
                h = min(hmax, max(hmin, h_new))
        if day >= warmup:
            q[day - warmup] = x[m - 1]
            for j in range(ds_):
                jac[day - warmup, j] = s[m - 1, j]
    x0[:] = x
    return q, jac


#: Solver options of the ODE models and their defaults (days); ``rtol``/``atol`` None: the method's default.
#: A model's spec may set its own ``method`` (hymod and hmodel: "ros34pw2").
SOLVER_OPTIONS = {"method": "adaptive", "n_sub": 4, "rtol": None, "atol": None, "h0": 1e-3, "hmin": 1e-4, "hmax": 1.0}
#: The integration methods; a method's index is its code in the kernels' ``method`` argument.
METHODS = ("adaptive", "fixed", "sdirk", "trbdf2", "esdirk3", "ros34pw2")
#: Default ``rtol`` = ``atol`` of each method: the paper's setting for Heun; for the implicit schemes
#: (error control of the states only; ros34pw2: with sensitivities of the states and sensitivities)
#: values that keep the flow within 1e-3 of a tight reference on a Latin hypercube over the bounds
#: (``benchmarks/ode_integrators.py --lhs``); a model's spec may set its own per method (gr4j_ode, hmodel).
DEFAULT_TOLERANCE = {"adaptive": 1e-5, "fixed": 1e-5, "sdirk": 1e-3, "trbdf2": 1e-4, "esdirk3": 1e-4, "ros34pw2": 5e-4}


class Kernel:
    """Picklable callable ``(theta, forcing, warmup, sens, snow, method, n_sub, rtol, atol, h0, hmin, hmax, x0=None)``.

    Joins a model's cached numba pieces: ``initial(theta) -> (x0, s0)`` of the core model and
    ``run(theta, forcing, x0, s0, warmup, sens, snow, method, ...)`` (``method`` the index in
    :data:`METHODS`: :func:`heun`, from 2 on :func:`basinsx.models.implicit.dirk` with the
    scheme ``method - 2``, from 5 on :func:`basinsx.models.rosenbrock.rosenbrock` with the scheme
    ``method - 5``, on its ``rhs_core``),
    which must leave the states after the last day in its ``x0``. With ``x0`` (the states of
    ``Model.states``: ``swe`` first with the degree-day snow; NaN keeps the default of ``initial``)
    the given levels replace the defaults as constants (zero derivative) and the call returns
    ``(q, J, x_end)``, else ``(q, J)``.
    """

    #: takes ``x0`` and returns the final states (:attr:`basinsx.models.ModelSpec.continuation`)
    continuation = True
    #: stores may dip below zero (smoothed thresholds, explicit steps): any sign is a valid initial level
    any_sign = True

    def __init__(self, initial, run):
        self.initial, self.run = initial, run

    def __call__(self, theta, forcing, warmup, sens, snow, method, n_sub, rtol, atol, h0, hmin, hmax, x0=None):
        xi, s0 = self.initial(theta)
        if snow == 1:
            # empty snow store in front; the snow parameters do not touch the initial states
            xi = np.concatenate(([0.0], xi))
            s0 = np.vstack((np.zeros((1, s0.shape[1])), s0))
        s0 = np.hstack((s0, np.zeros((s0.shape[0], theta.shape[0] - s0.shape[1]))))
        if x0 is not None:
            given = ~np.isnan(x0)
            xi = np.where(given, x0, xi)
            s0[given] = 0.0
        q, jac = self.run(theta, forcing, xi, s0, warmup, sens, snow, method, n_sub, rtol, atol, h0, hmin, hmax)
        return (q, jac) if x0 is None else (q, jac, xi)
