"""The model contract (:class:`Parameter`, :class:`ModelSpec`, checked when registered) and the runnable Model."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Forcings a model may ask for (canonical variable names, see the design's data model).
KNOWN_FORCINGS = ("prcp", "pet", "tmean", "tmin", "tmax", "srad", "vp", "dayl")
#: Snow options every built-in model takes: the name -> the kernel's snow code (see ``integrate.model_rhs``).
SNOW_CODES = {"degree_day": 1, "cemaneige": 2, "cemaneige_hyst": 2}
TRANSFORMS = ("linear", "log")


def snow_attr(snow):
    """The snow option as an attribute netCDF can store: 0/1, or the option's name."""
    return snow if isinstance(snow, str) else int(bool(snow))


def snow_option(value):
    """The snow option an attribute written by :func:`snow_attr` holds: False, True or the option's name."""
    if isinstance(value, str):
        return {"none": False, "degree_day": True}.get(value, value)
    return bool(value)  # None, 0/1, True/False


class NegativePETWarning(UserWarning):
    """Negative potential evapotranspiration was found and treated as zero."""


#: Precipitation or streamflow below this (mm/d) is a fill value such as -999 or a sign error, not round-off.
NEGATIVE_FILL = -1e-6


def forcing_problem(forcing: np.ndarray, names) -> tuple[int, int, str] | None:
    """``(row, time index, what)`` of the earliest bad value of ``forcing`` (rows named ``names``), else None.

    Bad values are NaN, infinities and precipitation below :data:`NEGATIVE_FILL`
    (negative PET is real in ERA5-Land and is clipped instead).
    """
    bad = ~np.isfinite(forcing)
    names = list(names)
    if "prcp" in names:
        row = names.index("prcp")
        bad[row] |= forcing[row] < NEGATIVE_FILL
    if not bad.any():
        return None
    rows, cols = np.nonzero(bad)
    k = int(np.argmin(cols))
    return int(rows[k]), int(cols[k]), _describe(forcing[rows[k], cols[k]])


def forcing_message(forcing: np.ndarray, names, dates, basin=None) -> str | None:
    """``"forcing 'prcp' is NaN [for basin B] on 1981-02-20"`` for :func:`forcing_problem`'s bad value, else None."""
    problem = forcing_problem(forcing, names)
    if problem is None:
        return None
    row, col, what = problem
    where = "" if basin is None else f" for basin {basin}"
    return f"forcing {list(names)[row]!r} is {what}{where} on {pd.Timestamp(dates[col]).date()}"


def record_problem(record: np.ndarray) -> tuple[int, str] | None:
    """``(time index, what)`` of the earliest infinite or negative (below :data:`NEGATIVE_FILL`) value of an
    observed record (streamflow, or precipitation where NaN is a missing day), else None."""
    bad = np.isinf(record) | (record < NEGATIVE_FILL)
    if not bad.any():
        return None
    t = int(np.argmax(bad))
    return t, _describe(record[t])


def _describe(value: float) -> str:
    return "NaN" if np.isnan(value) else "infinite" if np.isinf(value) else f"negative ({value:g})"


def whole_days(warmup) -> int:
    """``warmup`` as an int; a fraction, a bool or a non-number is refused, not cut (as ``simulate`` does)."""
    if type(warmup) is int:  # the usual case, first: Model.run is called in a calibration's inner loop
        return warmup
    if isinstance(warmup, int | np.integer) and not isinstance(warmup, bool | np.bool_):
        return int(warmup)
    if isinstance(warmup, float | np.floating) and float(warmup).is_integer():
        return int(warmup)
    raise ValueError(f"warmup must be a whole number of days; got {warmup!r}")


def _names(labels) -> list | None:
    """``labels`` as a list when any of them is a string (theta given by name), else None (by position)."""
    labels = list(labels)
    return labels if any(isinstance(x, str) for x in labels) else None


def parameter_order(model: str, params: tuple, names: list, what: str) -> list:
    """The index in ``names`` of each of ``params``; a name missing, unknown or given twice is an error naming it
    (``what`` names the input: ``"theta"``, ``"params"``)."""
    names = [str(x) for x in names]
    missing = [p for p in params if p not in names]
    extra = [x for x in dict.fromkeys(names) if x not in params]
    twice = sorted({x for x in names if names.count(x) > 1})
    if missing or extra or twice:
        raise ValueError(f"{model} parameters are {params}; {what} lacks {missing}, unexpected {extra}"
                         + (f", names {twice} more than once" if twice else ""))
    return [names.index(p) for p in params]


def check_bounds(name: str, params, bounds) -> None:
    """Raise unless every parameter has finite bounds with low < high."""
    missing = [p for p in params if p not in bounds]
    if missing:
        raise ValueError(f"model {name!r}: parameters {missing} have no bounds")
    bad = {p: tuple(bounds[p]) for p in params
           if not (np.all(np.isfinite(bounds[p])) and float(bounds[p][0]) < float(bounds[p][1]))}
    if bad:
        raise ValueError(f"model {name!r}: bounds must be finite with low < high; got {bad}")


def _capacity_ok(value, params) -> bool:
    """Whether ``value`` is a capacity :attr:`ModelSpec.capacities` takes: a parameter name, a tuple of them, or a
    number >= 0."""
    if isinstance(value, str):
        return value in params
    if isinstance(value, tuple):
        return len(value) > 0 and all(isinstance(v, str) and v in params for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value) and value >= 0


def default_transform(low: float, high: float) -> str:
    """``"log"`` for a positive range of two decades or more (store capacities), else ``"linear"``."""
    return "log" if low > 0 and high >= 100 * low else "linear"


#: Relative round-off a given level may exceed its capacity by (a run's own final states are taken back).
CAPACITY_RTOL = 1e-9


#: Parameter names of the snow modules, which a model's own parameters must not take.
RESERVED_PARAMS = {"T_tr", "f_dd", "cn_ctg", "cn_kf", "cn_thacc", "cn_rsp"}


@dataclass(frozen=True)
class Parameter:
    """One parameter of a model: name, units, bounds (physical units) and the calibration search scale.

    ``transform`` is ``"linear"``, ``"log"`` (positive bounds only) or None for
    :func:`default_transform`; ``positive`` marks parameters that must be > 0 for the equations.
    """

    name: str
    units: str
    bounds: tuple
    transform: str | None = None
    positive: bool = False
    description: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """Everything the registry knows of a model; :func:`basinsx.models.register` checks it.

    Attributes
    ----------
    name : str
        Registry name (a Python identifier).
    parameters : tuple of Parameter
        In the order of ``theta``.
    states : tuple of str
        State names of the core model.
    kernel : callable
        ``kernel(theta, forcing, warmup, sens, snow, *solver_args) -> (q, J)`` on float64 arrays,
        forcing rows in the order of ``forcings``; ``snow`` the code of :data:`SNOW_CODES` (0: none).
        With ``continuation``, also ``kernel(..., x0=x0) -> (q, J, x_end)``: ``x0`` the flat float64
        vector of the states of ``Model.states`` (vector states ``state_sizes`` long), NaN for a
        state's default start; the given levels are constants (zero derivative); ``x_end`` the
        states after the last day in the same layout.
    forcings : tuple of str
        ``("prcp", "pet", ...)``: precipitation and PET first, further names from :data:`KNOWN_FORCINGS`.
    solver_options : dict
        Option name -> default, passed to the kernel in this order (ODE models); the default of
        ``rtol``/``atol`` may be None (each method's default) or a dict ``{method: tolerance}`` for
        a model that needs another than the method's default.
    snow : tuple of str
        The snow options of :data:`SNOW_CODES` the kernel implements.
    reference : str
        Publication of the model structure and its parameter ranges.
    continuation : bool
        The kernel takes initial states and returns the final ones (``x0=``, see ``kernel``); a
        kernel object may say so itself with an attribute ``continuation = True``
        (:class:`~basinsx.models.integrate.Kernel` does).
    state_sizes : dict
        Length of each vector state (such as a unit hydrograph's stores); the others are scalars.
    signed_states : tuple of str
        States that may be negative (GR6J's exponential store); the others must be >= 0. A kernel
        object with an attribute ``any_sign = True`` makes every state signed (the ODE models').
    capacities : dict
        ``state -> capacity`` for the scalar states whose equations need an upper bound: the name
        of the parameter that is the capacity, a tuple of names whose sum is, or a number. A given
        initial level above it is refused. Empty: no bound (linear reservoirs, unit hydrographs).
    """

    name: str
    parameters: tuple
    states: tuple
    kernel: Callable = field(repr=False)
    forcings: tuple = ("prcp", "pet")
    solver_options: dict = field(default_factory=dict, repr=False)
    snow: tuple = ()
    reference: str = ""
    continuation: bool = False
    state_sizes: dict = field(default_factory=dict, repr=False)
    signed_states: tuple = ()
    capacities: dict = field(default_factory=dict, repr=False)

    def check(self, taken=()) -> None:
        """Raise ``ValueError`` (``TypeError`` for a kernel that is not callable) naming what is wrong."""
        where = f"model spec {self.name!r}"
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"{where}: the name must be a Python identifier")
        if self.name in taken:
            raise ValueError(f"{where}: a model of that name is already registered")
        if not callable(self.kernel):
            raise TypeError(f"{where}: kernel must be callable; got {type(self.kernel).__name__}")
        if not self.parameters or not all(isinstance(p, Parameter) for p in self.parameters):
            raise ValueError(f"{where}: parameters must be a non-empty tuple of Parameter")
        names = [p.name for p in self.parameters]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{where}: parameter names {dup} are not unique")
        reserved = sorted(set(names) & RESERVED_PARAMS)
        if reserved:
            raise ValueError(f"{where}: parameter names {reserved} belong to the snow modules")
        bad_units = [p.name for p in self.parameters if not isinstance(p.units, str) or not p.units]
        if bad_units:
            raise ValueError(f"{where}: parameters {bad_units} need a units string (\"1\" if dimensionless)")
        check_bounds(self.name, names, {p.name: p.bounds for p in self.parameters})
        bad = [p.name for p in self.parameters if p.transform not in (None, *TRANSFORMS)
               or (p.transform == "log" and not p.bounds[0] > 0)]
        if bad:
            raise ValueError(f"{where}: parameters {bad} need transform 'linear', 'log' (positive bounds) or None")
        if len(set(self.states)) != len(self.states) or "swe" in self.states:
            raise ValueError(f"{where}: states {self.states} must be unique and leave 'swe' to the snow module")
        if tuple(self.forcings[:2]) != ("prcp", "pet") or not set(self.forcings) <= set(KNOWN_FORCINGS):
            raise ValueError(f"{where}: forcings {self.forcings} must start with ('prcp', 'pet') and be among "
                             f"{KNOWN_FORCINGS}")
        unknown = sorted(set(self.snow) - set(SNOW_CODES))
        if unknown:
            raise ValueError(f"{where}: unknown snow options {unknown}; known: {tuple(SNOW_CODES)}")
        bad = sorted(set(self.state_sizes) - set(self.states)) + sorted(set(self.signed_states) - set(self.states))
        bad += [k for k, v in self.state_sizes.items() if not (isinstance(v, int) and v >= 1)]
        if bad:
            raise ValueError(f"{where}: state_sizes / signed_states name {bad}: not states {self.states} "
                             "or sizes that are not positive integers")
        bad = {k: v for k, v in self.capacities.items() if k not in self.states or k in self.state_sizes
               or not _capacity_ok(v, names)}
        if bad:
            raise ValueError(f"{where}: capacities {bad} must map scalar states {self.states} to a parameter name, "
                             f"a tuple of them, or a number >= 0")

    def model(self, snow=None) -> Model:
        """The runnable :class:`Model`, optionally behind a snow option (CemaNeige: one layer, see ``with_layers``)."""
        from . import cemaneige
        from . import snow as degree_day

        params = [(p.name, tuple(float(b) for b in p.bounds), p.units, p.transform, p.positive)
                  for p in self.parameters]
        states, forcings, sizes, signed = self.states, self.forcings, dict(self.state_sizes), self.signed_states
        if snow == "degree_day":
            params += [(k, degree_day.BOUNDS[k], degree_day.UNITS[k], None, k == "f_dd") for k in degree_day.PARAMS]
            states, forcings = ("swe",) + states, forcings + ("tmean",) * ("tmean" not in forcings)
        elif snow is not None:
            params += [(k, cemaneige.BOUNDS[k], cemaneige.UNITS[k], None, k in cemaneige.POSITIVE)
                       for k in cemaneige.PARAMS[snow]]
            forcings = forcings + ("tmean",) * ("tmean" not in forcings)
            # one entry per elevation layer (one layer here; with_layers sets their number)
            states, signed = cemaneige.STATES[snow] + states, signed + ("cn_thermal",)
            sizes.update(dict.fromkeys(cemaneige.STATES[snow], 1))
        return Model(
            name=self.name,
            params=tuple(p[0] for p in params),
            bounds={p[0]: p[1] for p in params},
            units={p[0]: p[2] for p in params},
            states=states,
            forcings=forcings,
            snow=snow,
            kernel=self.kernel,
            solver_options=dict(self.solver_options),
            positive=tuple(p[0] for p in params if p[4]),
            transforms={p[0]: p[3] or default_transform(*p[1]) for p in params},
            layers=cemaneige.Layers(n_layers=1) if snow in ("cemaneige", "cemaneige_hyst") else None,
            continuation=bool(self.continuation or getattr(self.kernel, "continuation", False)),
            state_sizes=sizes,
            # the ODE models' stores can dip below zero (smoothed thresholds, explicit steps): their
            # own final states must be accepted back
            signed_states=tuple(states if getattr(self.kernel, "any_sign", False) else signed),
            capacities=dict(self.capacities),
        )


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
    snow : str or None
        The snow option: None, ``"degree_day"``, ``"cemaneige"`` or ``"cemaneige_hyst"``.
    solver_options : dict
        Option name -> default, passed to the kernel in this order.
    positive : tuple of str
        Parameters that must be > 0 for the equations to make sense (checked by ``run``).
    transforms : dict
        ``name -> "linear" | "log"``: the scale a calibration searches the parameter on.
    layers : cemaneige.Layers or None
        CemaNeige's elevation layers (one layer at the station when none were given).
    continuation : bool
        ``run`` takes ``initial_states`` and ``return_states`` (see :attr:`ModelSpec.continuation`).
    state_sizes : dict
        Length of each vector state; the others are scalars.
    signed_states : tuple of str
        States that may be negative.
    capacities : dict
        ``state -> capacity`` (a parameter name, a tuple of names whose sum it is, or a number):
        the upper bound of a given initial level (see :attr:`ModelSpec.capacities`).
    """

    name: str
    params: tuple
    bounds: dict
    units: dict
    states: tuple
    forcings: tuple
    snow: str | None
    kernel: Callable = field(repr=False)
    solver_options: dict = field(default_factory=dict, repr=False)
    positive: tuple = ()
    transforms: dict = field(default_factory=dict, repr=False)
    layers: object = field(default=None, repr=False)
    continuation: bool = False
    state_sizes: dict = field(default_factory=dict, repr=False)
    signed_states: tuple = ()
    capacities: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        check_bounds(self.name, self.params, self.bounds)

    def with_layers(self, hypsometry=None, station_elevation=None, n_layers: int = 5, dates=None) -> Model:
        """This model with CemaNeige's elevation layers of one basin (see :class:`cemaneige.Layers`)."""
        from dataclasses import replace

        from .cemaneige import STATES, Layers

        if self.snow not in ("cemaneige", "cemaneige_hyst"):
            raise ValueError(f"{self.name}: elevation layers need snow='cemaneige' or 'cemaneige_hyst'; "
                             f"got snow={self.snow!r}")
        layers = Layers(hypsometry, n_layers, station_elevation, dates)
        return replace(self, layers=layers,
                       state_sizes={**self.state_sizes, **dict.fromkeys(STATES[self.snow], layers.n_layers)})

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

    def _check_params(self, th) -> None:
        """Raise ``ValueError`` naming the parameters if ``th`` is not finite or a positive one is not > 0."""
        if not np.all(np.isfinite(th)):
            raise ValueError(f"parameters must be finite; got {dict(zip(self.params, th))}")
        bad = [p for p, v in zip(self.params, th) if p in self.positive and not v > 0]
        if bad:
            raise ValueError(f"{self.name}: parameters {bad} must be > 0; got {dict(zip(self.params, th))}")

    def theta_vector(self, theta) -> np.ndarray:
        """``theta`` as the float64 vector of :attr:`params`: by name when labelled, else by position.

        A dict ``{name: value}``, a pandas Series with string labels or a DataArray with a
        ``param`` coordinate (or string labels on its one dim) is taken by name; every parameter
        must be named once and no other name given. A plain sequence or ndarray is taken in the
        order of :attr:`params`. Anything but one value per parameter, in one dimension, is an error.
        """
        if type(theta) is not np.ndarray:  # an ndarray (a calibration's inner loop) is read by position
            theta = self._labelled(theta, 1)
        th = np.array(theta, dtype=np.float64)
        if th.ndim != 1:
            raise ValueError(f"{self.name}: theta must be one-dimensional ({len(self.params)} parameters "
                             f"{self.params}); got shape {th.shape}")
        if th.shape[0] != len(self.params):
            raise ValueError(f"{self.name} needs {len(self.params)} parameters {self.params}; got {th.shape[0]}")
        return th

    def _labelled(self, theta, ndim: int):
        """``theta`` with its named parameters put in the order of :attr:`params` (``ndim`` 1: a vector, 2: rows of
        basins); an unlabelled ``theta`` as it is."""
        if isinstance(theta, Mapping):
            if ndim != 1:
                raise TypeError(f"{self.name}: theta of many basins must be an array, DataFrame or DataArray; got a "
                                f"{type(theta).__name__}")
            order = parameter_order(self.name, self.params, list(theta), "theta")
            values = list(theta.values())
            return [values[i] for i in order]
        if isinstance(theta, pd.Series | pd.DataFrame):
            names = _names(theta.index if isinstance(theta, pd.Series) else theta.columns)
            if names is None:
                return theta.to_numpy()
            order = parameter_order(self.name, self.params, names, "theta")
            return theta.to_numpy()[..., order]
        if type(theta).__module__.startswith("xarray.") and hasattr(theta, "dims"):  # a DataArray
            if "param" in theta.coords and theta["param"].ndim == 1:
                dim, labels = theta["param"].dims[0], theta["param"].values
            elif theta.ndim == 1 and theta.dims[0] in theta.coords:
                dim, labels = theta.dims[0], theta[theta.dims[0]].values
            else:
                return theta.values
            names = _names(labels)
            if names is None:
                return theta.values
            order = parameter_order(self.name, self.params, names, "theta")
            return theta.transpose(..., dim).values[..., order]
        return theta

    def _state_vector(self, initial_states) -> np.ndarray:
        """The kernel's flat ``x0`` from ``initial_states`` (name -> level), NaN where a state keeps its default."""
        if not self.continuation:
            raise ValueError(f"{self.name}: its kernel takes no initial states and returns no final states "
                             "(ModelSpec.continuation is False)")
        from .cemaneige import STATE_UNITS, check_state

        given = {} if initial_states is None else initial_states
        if not isinstance(given, Mapping):
            raise TypeError(f"initial_states must be a dict state name -> level; got {type(given).__name__}")
        settable = tuple(s for s in self.states if s != "q_cum")
        unknown = [k for k in given if k not in settable]
        if unknown:
            raise ValueError(f"{self.name}: unknown initial states {unknown}; its states are {settable}")
        parts = []
        for name in self.states:
            shape = (self.state_sizes[name],) if name in self.state_sizes else ()
            if name not in given:
                parts.append(np.full(shape or 1, np.nan))
                continue
            v = np.asarray(given[name], dtype=np.float64)
            if v.shape != shape:
                raise ValueError(f"{self.name}: initial state {name!r} must have shape {shape}; got {v.shape}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{self.name}: initial state {name!r} must be finite; got {v}")
            if name not in self.signed_states and np.any(v < 0):
                raise ValueError(f"{self.name}: initial state {name!r} must be >= 0 (a level in mm); got {v}")
            if name in STATE_UNITS:
                check_state(self.name, name, v)
            parts.append(v.reshape(-1))
        return np.concatenate(parts)

    def _check_capacities(self, th: np.ndarray, given) -> None:
        """Raise ``ValueError`` naming the state, its level and its capacity if a given level is above the capacity
        of its store (:attr:`capacities`, which may be parameters: hence here, where ``theta`` is known)."""
        for name, cap in self.capacities.items():
            if name not in given:
                continue
            level = float(np.max(given[name]))
            if isinstance(cap, str | tuple):
                names = (cap,) if isinstance(cap, str) else cap
                bound = float(sum(th[self.params.index(p)] for p in names))
                units = f" {self.units[names[0]]}"
                label = f"{' + '.join(names)} = {bound:g}{units}"
            else:
                bound, units, label = float(cap), "", f"{float(cap):g}"
            if level > bound + CAPACITY_RTOL * abs(bound):
                raise ValueError(f"{self.name}: initial state {name!r} ({level:g}{units}) exceeds its capacity "
                                 f"{label}; a store holds at most its capacity")

    def _state_dict(self, x_end) -> dict:
        """``name -> level`` (float, or an array for a vector state) from the kernel's flat final states."""
        out, i = {}, 0
        for name in self.states:
            size = self.state_sizes.get(name)
            if name != "q_cum":  # the ODE models' outflow of the day, reset every day: not a store
                out[name] = float(x_end[i]) if size is None else np.array(x_end[i:i + size], dtype=np.float64)
            i += size or 1
        return out

    def run(self, theta, forcing, warmup: int = 0, sensitivities: bool = True, dates=None, initial_states=None,
            return_states: bool = False, **solver_options):
        """Simulate daily flow and, optionally, its Jacobian with respect to the parameters.

        Parameters
        ----------
        theta : array_like (d,), dict, pandas Series or DataArray
            Parameters in physical units: by name when labelled (a dict, a Series with parameter
            labels, a DataArray with a ``param`` coordinate; see :meth:`theta_vector`), else in
            the order of :attr:`params`.
        forcing : array_like (len(forcings), T)
            Daily forcing, rows in the order of :attr:`forcings` (mm/d, degC).
        warmup : int
            Leading days run to spin up the states but not reported (a whole number).
        sensitivities : bool
            Also return ``J = dq/dtheta``.
        dates : array_like of datetime64 (T,), optional
            The days of ``forcing``: CemaNeige on elevation layers needs them (daily lapse rates);
            with CemaNeige they must be daily, increasing and one per day of forcing.
        initial_states : dict, optional
            ``state name -> level`` at the start of ``forcing`` (mm; names of :attr:`states` except
            ``q_cum``; a vector state such as ``uh1`` takes an array of ``state_sizes[name]``), e.g.
            the final states of an earlier run. Given levels are constants: their derivative with
            respect to the parameters is zero. Omitted states keep the model's default start (GR:
            30 % / 50 % of ``x1`` / ``x3``, with that derivative; empty otherwise). Models with
            ``continuation`` only. CemaNeige's states (``cn_pack``, ``cn_thermal``,
            ``cn_threshold``, with the hysteresis ``cn_localmax``, ``cn_ratio``) take one value
            per elevation layer.
        return_states : bool
            Also return the states after the last day, as ``initial_states`` takes them.
        **solver_options
            ODE models only: ``method`` ("adaptive" Heun-Euler, "fixed" Heun, the L-stable
            implicit "sdirk" (SDIRK2), "trbdf2", "esdirk3" of :mod:`basinsx.models.implicit`, or the
            linearly implicit "ros34pw2" of :mod:`basinsx.models.rosenbrock`; the default is the
            model's: "ros34pw2" for hymod and hmodel, "adaptive" for gr4j_ode), ``n_sub`` (fixed
            steps per day), ``rtol``, ``atol`` (None: the model's default for the method), ``h0``,
            ``hmin``, ``hmax`` (days).

        Returns
        -------
        q : ndarray (T - warmup,)
            Daily flow, mm/d.
        J : ndarray (T - warmup, d) or None
            d q_t / d theta_j in physical units.
        states : dict
            With ``return_states`` only: ``state name -> level`` (float, or ndarray for a vector
            state) after the last day.

        Raises
        ------
        ValueError
            Bad shapes, non-finite parameters or forcing (naming the first bad time index); a
            labelled ``theta`` with missing, unknown or repeated names; a fractional ``warmup``;
            unknown initial states, or of a wrong shape, non-finite, negative or above their
            store's capacity (:attr:`capacities`; naming the state); CemaNeige dates that are
            not the forcing's days.
        FloatingPointError
            Non-finite flow: parameters outside the model's domain (e.g. ``x1 <= 0``) or an ODE
            integration that diverged (fixed steps too long for a stiff parameter set).
        """
        th = self.theta_vector(theta)
        self._check_params(th)
        x0 = self._state_vector(initial_states) if initial_states is not None or return_states else None
        if initial_states and self.capacities:
            self._check_capacities(th, initial_states)
        f, neg = self.check_forcing(forcing)
        if neg:
            warnings.warn(f"{neg} negative PET values treated as zero", NegativePETWarning, stacklevel=2)
        warmup = whole_days(warmup)
        if not 0 <= warmup < f.shape[1]:
            raise ValueError(f"warmup must lie in [0, {f.shape[1]}) days; got {warmup}")
        unknown = set(solver_options) - set(self.solver_options)
        if unknown:
            known = sorted(self.solver_options) or "none"
            raise TypeError(f"unknown solver options {sorted(unknown)} for {self.name}; it takes {known}")
        opts = {**self.solver_options, **solver_options}
        args = []
        if "method" in opts:
            from .integrate import DEFAULT_TOLERANCE, METHODS

            if opts["method"] not in METHODS:
                raise ValueError(f"method must be one of {METHODS}; got {opts['method']!r}")
            for k in ("rtol", "atol"):
                if opts[k] is None or isinstance(opts[k], dict):
                    # a model's default may be per method ({method: tol}); else the method's default
                    opts[k] = (opts[k] or {}).get(opts["method"], DEFAULT_TOLERANCE[opts["method"]])
            tol = [float(opts[k]) for k in ("rtol", "atol", "h0", "hmin", "hmax")]
            if int(opts["n_sub"]) < 1 or min(tol) <= 0 or not tol[3] <= tol[2] <= tol[4] <= 1.0:
                raise ValueError(f"need n_sub >= 1, positive tolerances and hmin <= h0 <= hmax <= 1 day; got {opts}")
            args = [METHODS.index(opts["method"]), int(opts["n_sub"])] + tol
        code = SNOW_CODES[self.snow] if self.snow else 0
        if code == 2:
            from .cemaneige import PARAMS, STATES, water_input

            n_cn = 0 if x0 is None else sum(self.state_sizes[s] for s in STATES[self.snow])
            f, cn_end = water_input(f, th, len(self.params) - len(PARAMS[self.snow]), self.snow == "cemaneige_hyst",
                                    self.layers, dates, bool(sensitivities), x0=None if x0 is None else x0[:n_cn])
            x0 = None if x0 is None else x0[n_cn:]
        out = self.kernel(th, f, warmup, bool(sensitivities), code, *args, **({} if x0 is None else {"x0": x0}))
        q, jac = out[0], out[1]
        if not np.all(np.isfinite(q)):
            raise FloatingPointError(
                f"{self.name}: the integration diverged (non-finite flow) at {dict(zip(self.params, th))}: parameters "
                "outside the model's domain, or fixed steps too long for a stiff store "
                "(use method='adaptive' or a larger n_sub)"
            )
        if return_states:
            x_end = np.concatenate([cn_end, out[2]]) if code == 2 else out[2]
            return q, (jac if sensitivities else None), self._state_dict(x_end)
        return q, (jac if sensitivities else None)

    def run_batch(self, theta, forcing, warmup: int = 0, sensitivities: bool = True):
        """:meth:`run` for many basins at once, each from the model's default initial states.

        A kernel with a ``batch`` attribute (the GR models) runs all basins in one compiled call,
        which saves :meth:`run`'s per-basin Python work; other models run basin after basin.
        The results equal :meth:`run`'s bit for bit.

        Parameters
        ----------
        theta : array_like (basin, d), DataFrame or DataArray
            Parameters in physical units, order of :attr:`params`; a DataFrame with parameter
            columns or a DataArray with a ``param`` coordinate is taken by name.
        forcing : array_like (basin, len(forcings), T)
            Daily forcing of each basin (negative PET is set to zero, with one
            :class:`NegativePETWarning` per call naming the basins).
        warmup : int
            Leading days run but not reported.
        sensitivities : bool
            Also return the Jacobians.

        Returns
        -------
        q : ndarray (basin, T - warmup)
        J : ndarray (basin, T - warmup, d) or None

        Raises
        ------
        ValueError
            As :meth:`run`, naming the basin (its index).
        """
        th = np.array(theta if type(theta) is np.ndarray else self._labelled(theta, 2), dtype=np.float64, order="C")
        f = np.asarray(forcing, dtype=np.float64, order="C")  # copied below only to clip negative PET
        warmup = whole_days(warmup)
        if th.ndim != 2 or f.ndim != 3 or th.shape != (f.shape[0], len(self.params)) \
                or f.shape[1] != len(self.forcings):
            raise ValueError(f"need theta (basin, {len(self.params)}) and forcing (basin, {len(self.forcings)}, T) "
                             f"for the same basins; got shapes {th.shape} and {f.shape}")
        negative = (f[:, self.forcings.index("pet")] < 0).sum(1)
        batch = getattr(self.kernel, "batch", None)
        if batch is None or self.snow not in (None, "degree_day"):
            out = [self._run_basin(b, th[b], f[b], warmup, sensitivities) for b in range(th.shape[0])]
            _warn_negative_pet(negative)
            q = np.stack([o[0] for o in out])
            return q, (np.stack([o[1] for o in out]) if sensitivities else None)
        suspects = ~(np.isfinite(th).all(1) & np.isfinite(f).all((1, 2)))
        if "prcp" in self.forcings:
            suspects |= (f[:, self.forcings.index("prcp")] < NEGATIVE_FILL).any(1)
        positive = np.array([p in self.positive for p in self.params], dtype=bool)
        suspects |= ~(th[:, positive] > 0).all(1)
        for b in np.flatnonzero(suspects):  # the checks of run, for the basins that fail one
            try:
                self._check_params(th[b])
                self.check_forcing(f[b])
            except ValueError as err:
                raise ValueError(f"basin {b}: {err}") from err
        if not 0 <= warmup < f.shape[2]:
            raise ValueError(f"warmup must lie in [0, {f.shape[2]}) days; got {warmup}")
        if negative.any():
            f = f.copy()
            np.maximum(f[:, self.forcings.index("pet")], 0.0, out=f[:, self.forcings.index("pet")])
            _warn_negative_pet(negative)
        q, jac = batch(th, f, warmup, bool(sensitivities), SNOW_CODES[self.snow] if self.snow else 0)
        if not np.all(np.isfinite(q)):
            raise FloatingPointError(f"{self.name}: non-finite flow in basins "
                                     f"{np.flatnonzero(~np.isfinite(q).all(1)).tolist()}")
        return q, (jac if sensitivities else None)

    def _run_basin(self, b, theta, forcing, warmup, sensitivities):
        """:meth:`run` of basin ``b`` of a batch, its errors naming the basin (negative PET is warned per batch)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NegativePETWarning)
                return self.run(theta, forcing, warmup=warmup, sensitivities=sensitivities)
        except ValueError as err:
            raise ValueError(f"basin {b}: {err}") from err


def _warn_negative_pet(negative: np.ndarray) -> None:
    """One :class:`NegativePETWarning` for a batch, naming the basins (indices) whose PET was clipped."""
    if negative.any():
        warnings.warn(f"{int(negative.sum())} negative PET values treated as zero, in basins "
                      f"{np.flatnonzero(negative).tolist()}", NegativePETWarning, stacklevel=3)
