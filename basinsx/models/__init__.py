"""Conceptual rainfall-runoff models with exact parameter sensitivities.

>>> import basinsx.models as bm
>>> m = bm.get("gr4j")
>>> q, J = m.run(theta, forcing, warmup=365)   # forcing rows: m.forcings

``gr4j``, ``gr5j`` and ``gr6j`` are the discrete daily GR models of airGR, differentiated step
by step; ``gr4j_ode``, ``hymod`` and ``hmodel`` are continuous-time models with smoothed
thresholds whose sensitivity equations are integrated with the states (Heun with an embedded
Euler error estimate, or fixed Heun steps); ``hbv`` is the discrete daily HBV-light (forcings
``prcp``, ``pet``, ``tmean``; its own snow routine), differentiated step by step, and so is
``xinanjiang``, hydromodel's daily Xinanjiang (``xaj``, Zhao 1992). Any model but
``hbv`` takes a snow option: ``snow=True`` or ``"degree_day"`` (a smooth degree-day store,
parameters ``T_tr``, ``f_dd``), ``"cemaneige"`` or ``"cemaneige_hyst"`` (airGR's CemaNeige on
elevation layers, parameters ``cn_ctg``, ``cn_kf`` [, ``cn_thacc``, ``cn_rsp``]); all need the
forcing ``tmean``.

Each model is described by one :class:`ModelSpec` (see ``docs/models.md#adding-a-model``),
checked by :func:`register`.
"""

from __future__ import annotations

from importlib import import_module

from .base import SNOW_CODES, Model, ModelSpec, NegativePETWarning, Parameter, check_bounds

#: built-in models: registry name -> module defining ``SPEC`` (imported on first use)
_BUILTIN = {"gr4j": "gr4j", "gr5j": "gr5j", "gr6j": "gr6j", "gr4j_ode": "gr4j_ode", "hymod": "hymod",
            "hmodel": "hmodel", "hbv": "hbv", "xinanjiang": "xinanjiang", "sacsma": "sacsma"}
_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry after checking its spec (:meth:`ModelSpec.check`).

    Raises
    ------
    ValueError, TypeError
        Naming the spec and what is wrong: a name already taken, duplicate or reserved parameter
        names, bounds that are not finite with low < high, a missing units string, an unknown
        transform, forcing or snow option, a kernel that is not callable.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register takes a ModelSpec; got {type(spec).__name__}")
    spec.check(taken=set(_BUILTIN) | set(_REGISTRY))
    _REGISTRY[spec.name] = spec
    return spec


def spec(name: str) -> ModelSpec:
    """The registered :class:`ModelSpec` called ``name`` (a built-in one is checked and registered on first use)."""
    if name not in _REGISTRY:
        if name not in _BUILTIN:
            raise ValueError(f"unknown model {name!r}; available: {available()}")
        builtin = import_module(f".{_BUILTIN[name]}", __name__).SPEC
        builtin.check(taken=set(_REGISTRY))
        _REGISTRY[name] = builtin
    return _REGISTRY[name]


def available() -> tuple:
    """Names of the registered models (built-in first)."""
    return tuple(_BUILTIN) + tuple(n for n in _REGISTRY if n not in _BUILTIN)


def snow_option(snow) -> str | None:
    """The snow option's name from ``snow`` (False/None, True, or a name of :data:`SNOW_CODES`)."""
    if snow is None or snow is False:
        return None
    if snow is True:
        return "degree_day"
    if snow not in SNOW_CODES:
        raise ValueError(f"unknown snow option {snow!r}; choose True/'degree_day', 'cemaneige' or 'cemaneige_hyst'")
    return snow


def get(name, snow=False, hypsometry=None, n_layers: int | None = None, station_elevation=None) -> Model:
    """The model called ``name``, optionally behind a snow module.

    The one model resolver of basinsx: ``calibrate``, ``simulate`` and the posterior call it.

    Parameters
    ----------
    name : str or model object
        One of :func:`available`; a :class:`Model`, or any object with ``params``, ``bounds``,
        ``forcings`` and ``run``, is returned as it is once its bounds are checked (``snow``
        and the CemaNeige options then do not apply).
    snow : bool or str
        False: none; True or ``"degree_day"``: the smooth degree-day store (state ``swe``,
        parameters ``T_tr``, ``f_dd``); ``"cemaneige"``, ``"cemaneige_hyst"``: airGR's CemaNeige
        (parameters ``cn_ctg``, ``cn_kf`` and with the hysteresis ``cn_thacc``, ``cn_rsp``).
        All add the forcing ``tmean``.
    hypsometry : array_like (101,), optional
        CemaNeige: elevation quantiles 0..100 % of the basin, m. Without it, one layer taking
        the basin's forcing as it is.
    n_layers : int, optional
        CemaNeige: number of equal-area elevation layers (None: airGR's default 5). Without a
        hypsometry there is one layer, and another number warns.
    station_elevation : float, optional
        CemaNeige: elevation of the forcing, m (default the median of ``hypsometry``).

    Returns
    -------
    Model
    """
    if not isinstance(name, str):
        missing = [a for a in ("params", "bounds", "forcings", "run") if not hasattr(name, a)]
        if missing:
            raise TypeError(f"model must be a registry name or a model object; {name!r} lacks {missing}")
        check_bounds(getattr(name, "name", type(name).__name__), name.params, name.bounds)
        return name
    option = snow_option(snow)
    s = spec(name)
    if option is not None and option not in s.snow:
        raise ValueError(f"model {name!r} does not take snow={option!r}; it takes {s.snow or 'none'}")
    model = s.model(option)
    layered = hypsometry is not None or station_elevation is not None or n_layers is not None
    if option in ("cemaneige", "cemaneige_hyst") and layered:
        from .cemaneige import N_LAYERS

        model = model.with_layers(hypsometry, station_elevation, N_LAYERS if n_layers is None else n_layers)
    elif option not in ("cemaneige", "cemaneige_hyst") and layered:
        raise ValueError("hypsometry, n_layers and station_elevation are CemaNeige's; pass snow='cemaneige'")
    return model


__all__ = ["Model", "ModelSpec", "NegativePETWarning", "Parameter", "available", "get", "register", "spec"]
