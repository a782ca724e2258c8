"""Conceptual rainfall-runoff models with exact parameter sensitivities.

>>> import basinsx.models as bm
>>> m = bm.get("gr4j")
>>> q, J = m.run(theta, forcing, warmup=365)   # forcing rows: m.forcings

``gr4j``, ``gr5j`` and ``gr6j`` are the discrete daily GR models of airGR, differentiated step
by step; ``gr4j_ode``, ``hymod`` and ``hmodel`` are continuous-time models with smoothed
thresholds whose sensitivity equations are integrated with the states (Heun with an embedded
Euler error estimate, or fixed Heun steps). ``snow=True`` adds a smooth degree-day snow module
(parameters ``T_tr``, ``f_dd``; forcing ``tmean``) to any of them.
"""

from __future__ import annotations

from importlib import import_module

from . import snow as _snow
from .base import Model, NegativePETWarning

_MODULES = {"gr4j": "gr4j", "gr5j": "gr5j", "gr6j": "gr6j", "gr4j_ode": "gr4j_ode", "hymod": "hymod",
            "hmodel": "hmodel"}


def available() -> tuple:
    """Names of the registered models."""
    return tuple(_MODULES)


def get(name: str, snow: bool = False) -> Model:
    """The model called ``name``, optionally with the degree-day snow module.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    snow : bool
        Add the snow store (state ``swe``, parameters ``T_tr``, ``f_dd``, forcing ``tmean``).

    Returns
    -------
    Model
    """
    if isinstance(name, Model):
        return name
    if name not in _MODULES:
        raise ValueError(f"unknown model {name!r}; available: {available()}")
    mod = import_module(f".{_MODULES[name]}", __name__)
    params, bounds, units, states = mod.PARAMS, dict(mod.BOUNDS), dict(mod.UNITS), mod.STATES
    forcings = ("prcp", "pet")
    if snow:
        params = params + _snow.PARAMS
        bounds.update(_snow.BOUNDS)
        units.update(_snow.UNITS)
        states = ("swe",) + states
        forcings = forcings + ("tmean",)
    return Model(
        name=name,
        params=params,
        bounds=bounds,
        units=units,
        states=states,
        forcings=forcings,
        snow=bool(snow),
        kernel=mod.KERNEL,
        solver_options=dict(getattr(mod, "SOLVER_OPTIONS", {})),
        positive=tuple(mod.POSITIVE) + (("f_dd",) if snow else ()),
    )


__all__ = ["Model", "NegativePETWarning", "available", "get"]
