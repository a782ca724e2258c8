"""The :class:`Model` description shared by all conceptual models, and its input checks."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class NegativePETWarning(UserWarning):
    """Negative potential evapotranspiration was found and treated as zero."""


#: Precipitation below this (mm/d) is a fill value such as -999 or a sign error, not round-off.
NEGATIVE_PRCP = -1e-6


def forcing_problem(forcing: np.ndarray, names) -> tuple[int, int, str] | None:
    """``(row, time index, what)`` of the earliest bad value of ``forcing`` (rows named ``names``), else None.

    Bad values are NaN, infinities and precipitation below :data:`NEGATIVE_PRCP`
    (negative PET is real in ERA5-Land and is clipped instead).
    """
    bad = ~np.isfinite(forcing)
    names = list(names)
    if "prcp" in names:
        row = names.index("prcp")
        bad[row] |= forcing[row] < NEGATIVE_PRCP
    if not bad.any():
        return None
    rows, cols = np.nonzero(bad)
    k = int(np.argmin(cols))
    value = forcing[rows[k], cols[k]]
    what = "NaN" if np.isnan(value) else "infinite" if np.isinf(value) else f"negative ({value:g})"
    return int(rows[k]), int(cols[k]), what


def check_bounds(name: str, params, bounds) -> None:
    """Raise unless every parameter has finite bounds with low < high."""
    missing = [p for p in params if p not in bounds]
    if missing:
        raise ValueError(f"model {name!r}: parameters {missing} have no bounds")
    bad = {p: tuple(bounds[p]) for p in params
           if not (np.all(np.isfinite(bounds[p])) and float(bounds[p][0]) < float(bounds[p][1]))}
    if bad:
        raise ValueError(f"model {name!r}: bounds must be finite with low < high; got {bad}")


@dataclass(frozen=True)
class Model:
    """A conceptual rainfall-runoff model with exact parameter sensitivities.

    Attributes
    ----------
    name : str
        Registry name.
    params : tuple of str
        Parameter names, in the order of ``theta``.
    bounds : dict
        ``name -> (low, high)`` in physical units.
    units : dict
        ``name -> unit`` string.
    states : tuple of str
        State names (``q_cum`` is the cumulative outflow of the ODE models).
    forcings : tuple of str
        Forcing names in the row order of ``forcing``.
    snow : bool
        Whether the degree-day snow module is included.
    solver_options : dict
        Option name -> default, passed to the kernel in this order.
    positive : tuple of str
        Parameters that must be > 0 for the equations to make sense (checked by ``run``).
    """

    name: str
    params: tuple
    bounds: dict
    units: dict
    states: tuple
    forcings: tuple
    snow: bool
    kernel: Callable = field(repr=False)
    solver_options: dict = field(default_factory=dict, repr=False)
    positive: tuple = ()

    def __post_init__(self):
        check_bounds(self.name, self.params, self.bounds)

    def check_forcing(self, forcing) -> tuple[np.ndarray, int]:
        """Validated float64 copy of ``forcing`` with negative PET set to zero.

        Returns the array and the number of negative PET values replaced. Raises
        ``ValueError`` naming the forcing and the first time index holding a NaN, an
        infinity or a negative precipitation (see :func:`forcing_problem`).
        """
        f = np.array(forcing, dtype=np.float64, order="C")
        if f.ndim != 2 or f.shape[0] != len(self.forcings):
            raise ValueError(f"forcing must have shape ({len(self.forcings)}, T) with rows {self.forcings}; "
                             f"got {f.shape}")
        problem = forcing_problem(f, self.forcings)
        if problem:
            row, col, what = problem
            raise ValueError(f"forcing {self.forcings[row]!r} is {what} at time index {col}")
        pet = f[self.forcings.index("pet")]
        neg = int((pet < 0).sum())
        if neg:
            np.maximum(pet, 0.0, out=pet)
        return f, neg

    def run(self, theta, forcing, warmup: int = 0, sensitivities: bool = True, **solver_options):
        """Simulate daily flow and, optionally, its Jacobian with respect to the parameters.

        Parameters
        ----------
        theta : array_like (d,)
            Parameters in physical units, order of :attr:`params`.
        forcing : array_like (len(forcings), T)
            Daily forcing, rows in the order of :attr:`forcings` (mm/d, degC).
        warmup : int
            Leading days run to spin up the states but not reported.
        sensitivities : bool
            Also return ``J = dq/dtheta``.
        **solver_options
            ODE models only: ``method`` ("adaptive" Heun-Euler or "fixed" Heun), ``n_sub``
            (fixed steps per day), ``rtol``, ``atol``, ``h0``, ``hmin``, ``hmax`` (days).

        Returns
        -------
        q : ndarray (T - warmup,)
            Daily flow, mm/d.
        J : ndarray (T - warmup, d) or None
            d q_t / d theta_j in physical units.

        Raises
        ------
        ValueError
            Bad shapes, non-finite parameters or forcing (naming the first bad time index).
        FloatingPointError
            Non-finite flow: parameters outside the model's domain (e.g. ``x1 <= 0``) or an ODE
            integration that diverged (fixed steps too long for a stiff parameter set).
        """
        th = np.array(theta, dtype=np.float64).ravel()
        if th.shape[0] != len(self.params):
            raise ValueError(f"{self.name} needs {len(self.params)} parameters {self.params}; got {th.shape[0]}")
        if not np.all(np.isfinite(th)):
            raise ValueError(f"parameters must be finite; got {dict(zip(self.params, th))}")
        bad = [p for p, v in zip(self.params, th) if p in self.positive and not v > 0]
        if bad:
            raise ValueError(f"{self.name}: parameters {bad} must be > 0; got {dict(zip(self.params, th))}")
        f, neg = self.check_forcing(forcing)
        if neg:
            warnings.warn(f"{neg} negative PET values treated as zero", NegativePETWarning, stacklevel=2)
        warmup = int(warmup)
        if not 0 <= warmup < f.shape[1]:
            raise ValueError(f"warmup must lie in [0, {f.shape[1]}) days; got {warmup}")
        unknown = set(solver_options) - set(self.solver_options)
        if unknown:
            known = sorted(self.solver_options) or "none"
            raise TypeError(f"unknown solver options {sorted(unknown)} for {self.name}; it takes {known}")
        opts = {**self.solver_options, **solver_options}
        args = []
        if "method" in opts:
            if opts["method"] not in ("adaptive", "fixed"):
                raise ValueError(f"method must be 'adaptive' or 'fixed'; got {opts['method']!r}")
            tol = [float(opts[k]) for k in ("rtol", "atol", "h0", "hmin", "hmax")]
            if int(opts["n_sub"]) < 1 or min(tol) <= 0 or not tol[3] <= tol[2] <= tol[4] <= 1.0:
                raise ValueError(f"need n_sub >= 1, positive tolerances and hmin <= h0 <= hmax <= 1 day; got {opts}")
            args = [opts["method"] == "fixed", int(opts["n_sub"])] + tol
        q, jac = self.kernel(th, f, warmup, bool(sensitivities), self.snow, *args)
        if not np.all(np.isfinite(q)):
            raise FloatingPointError(
                f"{self.name}: the integration diverged (non-finite flow) at {dict(zip(self.params, th))}: parameters "
                "outside the model's domain, or fixed steps too long for a stiff store "
                "(use method='adaptive' or a larger n_sub)"
            )
        return q, (jac if sensitivities else None)
