"""``simulate`` and ``sensitivity``: conceptual-model runs over a labeled Dataset of basins.

Both wrap :meth:`basinsx.models.Model.run` in :func:`xarray.apply_ufunc` with
``dask="parallelized"``: dask-backed input gives a lazy result with one task per basin
chunk (``time`` must be a single chunk), and the numbers do not depend on the chunking.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from . import flags, models
from .inputs import model_inputs, on_basins, with_units_notes
from .models.base import forcing_message, parameter_order, snow_option, whole_days
from .models.cemaneige import N_LAYERS, STATE_UNITS, STATES, layer_inputs

__all__ = ["simulate", "sensitivity"]


def params_on_basins(params, model: models.Model, data: xr.Dataset) -> xr.DataArray:
    """float64 parameters with a ``param`` dim in the model's order, by label on the basins of ``data``."""
    names = list(model.params)
    if isinstance(params, dict):
        missing = [p for p in names if p not in params]
        extra = [p for p in params if p not in names]
        if missing or extra:
            raise ValueError(f"{model.name} parameters are {model.params}; missing {missing}, unexpected {extra}")
        values = xr.broadcast(*[on_basins(v, data, f"parameter {p!r}") if isinstance(v, xr.DataArray)
                                else xr.DataArray(float(v)) for p, v in ((p, params[p]) for p in names)])
        return xr.concat(values, dim=pd.Index(names, name="param")).astype(np.float64)
    if isinstance(params, xr.Dataset) and "params" in params:
        params = params["params"]  # a calibration result
    if not isinstance(params, xr.DataArray) or "param" not in params.dims:
        raise TypeError(f"params must be a dict or a DataArray with a 'param' dim; got {type(params).__name__}")
    if "param" not in params.coords:
        raise ValueError("params needs a 'param' coordinate naming the parameters")
    # extra names too: gr6j's or a snow module's would otherwise be cut silently
    parameter_order(model.name, model.params, [str(p) for p in params["param"].values], "params")
    out = on_basins(params.sel(param=names).astype(np.float64), data, "params")
    return out.drop_vars([c for c in out.coords if c != "param" and "param" in out[c].dims])


def _model_options(params, model, snow) -> tuple:
    """``model`` and ``snow`` as given, else from the attrs of ``params`` (e.g. a regional learner's), else gr4j."""
    def snow_name(value):  # attrs hold 0/1 or the option's name (netCDF has no booleans)
        return None if value in (None, False, 0, "none") else "degree_day" if value in (True, 1) else str(value)

    attrs = params.attrs if isinstance(params, xr.DataArray | xr.Dataset) else {}
    given = {"model": model if isinstance(model, str | None) else model.name, "snow": snow}
    clash = {k: (v, attrs[k]) for k, v in given.items() if v is not None and k in attrs and
             (str(v) != str(attrs[k]) if k == "model" else snow_name(v) != snow_name(attrs[k]))}
    if clash:
        raise ValueError("the parameters were made for " + ", ".join(f"{k}={b!r}" for k, (_, b) in clash.items())
                         + "; got " + ", ".join(f"{k}={a!r}" for k, (a, _) in clash.items()))
    if snow is None:
        snow = snow_option(attrs.get("snow"))
    return attrs.get("model", "gr4j") if model is None else model, snow


def _forcings(ds, model: models.Model) -> list:
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"simulate needs a Dataset of forcings {model.forcings}; got {type(ds).__name__}")
    missing = [v for v in model.forcings if v not in ds]
    if missing:
        hint = " (snow=True needs tmean)" if model.snow and missing == ["tmean"] else ""
        raise KeyError(f"{model.name} needs forcings {model.forcings}; the dataset lacks {missing}{hint}")
    for v in model.forcings:
        if "time" not in ds[v].dims:
            raise ValueError(f"forcing {v!r} has no 'time' dim (dims {ds[v].dims})")
    return [ds[v] for v in model.forcings]


def _run_block(*arrays, model, snow, warmup, sens, dates, solver_options, layers=False, initial_states=None,
               state_sizes=None):
    """Kernel over a block of basins: forcings ``(..., T)``, theta ``(..., d)``, basin labels ``(...)``.

    Returns the flow (or Jacobian), the days of negative PET per basin, which are
    clipped here so that no model run warns from inside a dask task (:mod:`basinsx.flags`),
    and per basin what is wrong with its forcing ("" if nothing; such a basin's flow is NaN);
    with ``state_sizes`` (state name -> entries), also the final states per basin, flat, NaN
    in the layers a basin lacks (``_final_states`` names them). ``initial_states`` maps a basin
    label to its ``Model.run(initial_states=...)``.
    """
    m = models.get(model, snow=snow)
    if layers:  # CemaNeige's elevation layers per basin: hypsometry (..., 101), station elevation (...)
        *arrays, hyps, elev = arrays
    *forcings, theta, labels = arrays
    n, d = forcings[0].shape[-1], theta.shape[-1]
    shape = np.broadcast_shapes(*(a.shape[:-1] for a in forcings), theta.shape[:-1], np.shape(labels))
    forcings = [np.broadcast_to(a, shape + (n,)) for a in forcings]
    theta = np.broadcast_to(theta, shape + (d,))
    labels = np.broadcast_to(labels, shape)
    if layers:
        hyps, elev = np.broadcast_to(hyps, shape + hyps.shape[-1:]), np.broadcast_to(elev, shape)
    q = np.full(shape + (n - warmup,), np.nan)
    jac = np.full(shape + (n - warmup, d), np.nan) if sens else None
    negative_pet = np.zeros(shape, dtype=np.int64)
    problems = np.full(shape, "", dtype=object)
    final = np.full(shape + (sum(state_sizes.values()) if state_sizes else 0,), np.nan)
    pet = m.forcings.index("pet")
    for idx in np.ndindex(shape):
        f = np.stack([np.asarray(a[idx], dtype=np.float64) for a in forcings])
        problems[idx] = forcing_message(f, m.forcings, dates) or ""
        if problems[idx]:
            continue  # one basin's bad forcing fails that basin only, flagged
        negative_pet[idx] = int((f[pet] < 0).sum())
        np.maximum(f[pet], 0.0, out=f[pet])
        th = np.asarray(theta[idx], dtype=np.float64)
        if not np.all(np.isfinite(th)):
            continue  # e.g. a basin whose calibration failed: NaN flow, not an error
        mb = m.with_layers(hyps[idx], elev[idx], N_LAYERS) if layers else m
        states = {} if initial_states is None else {"initial_states": _fit_layers(initial_states[str(labels[idx])],
                                                                                  mb)}
        if state_sizes:
            states["return_states"] = True
        out = mb.run(th, f, warmup=warmup, sensitivities=sens, dates=dates, **states, **solver_options)
        q[idx] = out[0]
        if sens:
            jac[idx] = out[1]
        if state_sizes:
            final[idx] = np.concatenate([np.pad(np.atleast_1d(out[2][k]), (0, size - np.size(out[2][k])),
                                                constant_values=np.nan) for k, size in state_sizes.items()])
    if state_sizes:
        return (jac if sens else q), negative_pet, problems, final
    return (jac if sens else q), negative_pet, problems


def _fit_layers(states: dict, model: models.Model) -> dict:
    """A basin's given states without the NaN entries of the CemaNeige layers it lacks (no hypsometry: one layer)."""
    out = dict(states)
    for name, v in states.items():
        n = model.state_sizes.get(name)
        if name in STATE_UNITS and v.ndim == 1 and v.size > n and np.isnan(v[n:]).all():
            out[name] = v[:n]
    return out


def _per_basin_states(initial_states, data: xr.Dataset, labels) -> dict | None:
    """``basin label -> {state: level}`` from ``initial_states`` (scalars / arrays, or DataArrays over ``basin``)."""
    if initial_states is None:
        return None
    if not isinstance(initial_states, dict):
        raise TypeError(f"initial_states must be a dict state name -> level; got {type(initial_states).__name__}")
    out = {str(label): {} for label in labels}
    for name, value in initial_states.items():
        if isinstance(value, xr.DataArray):
            value = on_basins(value, data, f"initial state {name!r}")
        per_basin = isinstance(value, xr.DataArray) and "basin" in value.dims
        if per_basin and value.sizes["basin"] != len(out):  # e.g. unlabeled forcing: no basin to pick
            raise ValueError(f"initial state {name!r} has {value.sizes['basin']} basins, the forcing {len(out)}; "
                             "give both basin labels")
        for i, label in enumerate(out):
            v = value.isel(basin=i) if per_basin else value
            out[label][name] = np.asarray(v.values if isinstance(v, xr.DataArray) else v, dtype=np.float64)
    return out


def _state_sizes(model: models.Model, layers: bool) -> dict:
    """Entries of each state ``simulate`` returns: ``state name -> n`` (CemaNeige's: one per elevation layer)."""
    sizes = {s: model.state_sizes.get(s, 1) for s in model.states if s != "q_cum"}  # q_cum: a day's outflow
    if layers:  # _run_block's layers per basin, of a hypsometry: N_LAYERS (one for a basin without)
        sizes.update(dict.fromkeys(STATES[model.snow], N_LAYERS))
    return sizes


def _final_states(flat: xr.DataArray, model: models.Model, sizes: dict) -> dict:
    """The flat final states of :func:`_run_block` as DataArrays: ``name -> (basin,)``, ``(basin, <name>_store)``
    or, CemaNeige's, ``(basin, layer)``."""
    out, i = {}, 0
    for name, size in sizes.items():
        if name not in model.state_sizes:
            out[name] = flat.isel(state_entry=i)
        else:
            dim = "layer" if name in STATE_UNITS else f"{name}_store"
            out[name] = flat.isel(state_entry=slice(i, i + size)).rename(state_entry=dim)
        out[name] = out[name].drop_vars([c for c in out[name].coords if "state_entry" in out[name][c].dims])
        out[name].attrs = {"units": STATE_UNITS.get(name, "mm"), "long_name": f"{name} state after the last day"}
        i += size
    return out


def _apply(ds, params, model, warmup, snow, sens, solver_options, pet, initial_states=None, return_states=False):
    m = models.get(model, snow=snow)
    ds, input_attrs = model_inputs(ds, m.forcings, pet=pet, where="sensitivity" if sens else "simulate")
    forcings = _forcings(ds, m)
    extra = layer_inputs(ds, m.snow)
    input_attrs = with_units_notes(input_attrs, extra)
    theta = params_on_basins(params, m, ds)
    # the basins' other coordinates come with the forcing: chunked with theta, apply_ufunc would compute them to
    # compare (a calibration's params carry area, gauge_name, ...)
    theta = theta.drop_vars([c for c in theta.coords if c not in theta.indexes])
    n = ds.sizes["time"]
    if not 0 <= warmup < n:
        raise ValueError(f"warmup must lie in [0, {n}) days; got {warmup}")
    if "basin" in ds.dims:
        labels = ds["basin"]
    else:
        labels = xr.DataArray(str(ds["basin"].values) if "basin" in ds.coords else "")
    # the labels must be plain strings, not a dimension coordinate that apply_ufunc would align on
    labels = xr.DataArray(np.asarray(labels.values).astype(str), dims=labels.dims)
    per_basin = _per_basin_states(initial_states, ds, np.atleast_1d(labels.values))
    chunks = next((f.chunksizes for f in forcings if f.chunks is not None), None)
    if chunks is not None and "basin" in chunks:
        # same basin chunks for every input: one task per forcing chunk, no rechunking
        labels = labels.chunk({"basin": chunks["basin"]})
        if "basin" in theta.dims:
            theta = theta.chunk({"basin": chunks["basin"]})
        extra = [e.chunk({"basin": chunks["basin"]}) if "basin" in e.dims else e for e in extra]
    d = len(m.params)
    core_out = ["time", "param"] if sens else ["time"]
    sizes = _state_sizes(m, bool(extra)) if return_states else {}
    n_states = sum(sizes.values())
    outputs = xr.apply_ufunc(
        _run_block,
        *forcings,
        theta,
        labels,
        *extra,
        input_core_dims=[["time"]] * len(forcings) + [["param"], []] + [["quantile"], []][: len(extra)],
        output_core_dims=[core_out, [], []] + [["state_entry"]] * bool(n_states),
        exclude_dims={"time"},
        dask="parallelized",
        output_dtypes=[np.float64, np.int64, object] + [np.float64] * bool(n_states),
        dask_gufunc_kwargs={"output_sizes": {"time": n - warmup, **({"param": d} if sens else {}),
                                             **({"state_entry": n_states} if n_states else {})}},
        kwargs={"model": m.name, "snow": snow, "warmup": warmup, "sens": sens,
                "dates": ds["time"].values, "solver_options": dict(solver_options), "layers": bool(extra),
                "initial_states": per_basin,
                "state_sizes": sizes},
    )
    out, negative_pet, problem = outputs[:3]
    negative_pet.attrs = {"long_name": "days of negative PET, clipped to zero", "units": "d",
                          "flag": "negative PET clipped to zero (days)", "flag_category": "NegativePETWarning"}
    problem.attrs = {"long_name": "what is wrong with the basin's forcing (its flow is NaN)",
                     "flag": "bad forcing, flow NaN"}
    # coordinates named apart from calibrate's n_negative_pet and message, so metrics of q_sim merge into its result
    found = {"negative_pet_days": negative_pet, "forcing_problem": problem}
    if negative_pet.chunks is None:  # computed now: summarise now, once, per basin (the same for every draw)
        summary = xr.Dataset(found).isel({d: 0 for d in negative_pet.dims if d != "basin"})
        summary = summary.assign_coords(basin=labels.values)
        flags.warn(summary if "basin" in summary.dims else summary.expand_dims("basin"))
    out = out.assign_coords(found)
    out.attrs = input_attrs
    out = out.assign_coords(time=ds["time"].values[warmup:])
    if sens:
        out = out.assign_coords(param=list(m.params), param_units=("param", [m.units[p] for p in m.params]))
    order = [dim for dim in ("basin", "time", "param") if dim in out.dims]
    out = out.transpose(*order, ...)
    if n_states:
        return out, _final_states(outputs[3], m, sizes)
    return out


def simulate(ds: xr.Dataset, params, model=None, warmup: int = 0, *, snow: bool | None = None, pet=None,
             initial_states: dict | None = None, return_states: bool = False,
             **solver_options) -> xr.DataArray | xr.Dataset:
    """Simulated daily streamflow of a conceptual model for every basin.

    Parameters
    ----------
    ds : xr.Dataset
        Forcings named as the model's ``forcings`` (``prcp``, ``pet`` in mm/d; ``tmean`` in
        degC with ``snow``), dims ``(basin, time)`` or ``(time,)``; ``time`` in one chunk.
    params : xr.DataArray, xr.Dataset or dict
        ``(basin, param)`` or ``(param,)`` DataArray with a ``param`` coordinate (a
        calibration result Dataset with ``params`` works too), or a dict ``name -> float``
        or ``name -> DataArray`` over ``basin``. Physical units. NaN parameters give NaN flow.
        Matched to the forcing's basins by label (any order; a superset is fine, a basin
        without parameters is an error), and naming exactly the model's parameters.
    model : str, optional
        A name of :func:`basinsx.models.available`; by default the ``model`` attribute of
        ``params`` (set by :class:`basinsx.regional.ParameterLearner`), else ``"gr4j"``.
    warmup : int
        Leading days used to spin up the states; they are dropped from the result.
    snow : bool, optional
        Add the degree-day snow module (parameters ``T_tr``, ``f_dd``); by default the
        ``snow`` attribute of ``params``, else False. A value that contradicts those attrs is an error.
        ``"cemaneige"``, ``"cemaneige_hyst"``: airGR's CemaNeige (see :func:`basinsx.models.get`), its
        elevation layers per basin from ``hypsometry(basin, quantile)`` and ``station_elevation`` (else
        ``elev_mean``); without a hypsometry, one layer.
    pet : None, str or xr.DataArray
        The PET to use: the data set's ``pet`` (None), a variable name, a method of
        :func:`basinsx.pet.pet` computed on the fly, or a DataArray (see
        :func:`basinsx.inputs.choose_pet`); recorded in ``attrs["pet"]``. Inputs in other
        convertible units are converted (:func:`basinsx.units.to_canonical`).
    initial_states : dict, optional
        ``state name -> level`` (mm) at the first date, as :meth:`basinsx.models.Model.run` takes
        them: a scalar (every basin), a DataArray over ``basin``, for a vector state (``uh1``,
        ``uh2``) an array or a DataArray ``(basin, <name>_store)`` (CemaNeige's ``(basin, layer)``),
        e.g. the final states of an earlier ``simulate(..., return_states=True)``. Omitted states
        keep the model's default start.
    return_states : bool
        Return a Dataset with ``q_sim`` and the states after the last date, one variable per
        state (``(basin,)``, ``(basin, <name>_store)`` for a vector state, ``(basin, layer)`` for
        CemaNeige's, NaN in layers a basin lacks), so that a later run can continue this one
        through ``initial_states``.
    **solver_options
        ODE models: ``method``, ``n_sub``, ``rtol``, ``atol``, ``h0``, ``hmin``, ``hmax``.

    Returns
    -------
    xr.DataArray or xr.Dataset
        ``q_sim`` (basin, time) in mm/d, starting ``warmup`` days after the first date,
        with the flag coordinates ``negative_pet_days(basin)`` (days of negative PET, clipped to
        zero) and ``forcing_problem(basin)``: what is wrong with a basin's forcing (a NaN or
        infinite value, or negative precipitation, naming variable and date; "" if nothing),
        whose flow is then NaN while the other basins run. For in-memory input one warning
        per flag names the basins; for dask input summarise the computed coordinates with
        :func:`basinsx.flags.warn`. With ``return_states``, a Dataset of ``q_sim`` and the
        final states.

    Raises
    ------
    ValueError
        A time axis that is not daily, bad parameters or warm-up.
    """
    model, snow = _model_options(params, model, snow)
    warmup = whole_days(warmup)
    q = _apply(ds, params, model, warmup, snow, False, solver_options, pet, initial_states, return_states)
    q, states = q if return_states else (q, None)
    name = model if isinstance(model, str) else model.name
    q.attrs = {"units": "mm d-1", "long_name": f"streamflow simulated by {name}{' + snow' if snow else ''}",
               "standard_name": "runoff_flux", "model": name, "warmup_days": warmup, **q.attrs}
    if return_states:
        return xr.Dataset({"q_sim": q, **states}, attrs={"model": name})
    return q.rename("q_sim")


def sensitivity(ds: xr.Dataset, params, model=None, warmup: int = 0, *, snow: bool | None = None, pet=None,
                initial_states: dict | None = None, **solver_options) -> xr.DataArray:
    """Jacobian ``d q_t / d theta`` of the simulated flow for every basin.

    Exact derivatives of the model as computed (the discrete GR4J map; the ODE models'
    sensitivity equations integrated with the states). Arguments as :func:`simulate`; given
    ``initial_states`` are constants (zero derivative).

    Returns
    -------
    xr.DataArray
        ``dq_dparam`` (basin, time, param) in mm/d per parameter unit (coordinate
        ``param_units``).
    """
    model, snow = _model_options(params, model, snow)
    warmup = whole_days(warmup)
    jac = _apply(ds, params, model, warmup, snow, True, solver_options, pet, initial_states)
    name = model if isinstance(model, str) else model.name
    jac.attrs = {"units": "mm d-1 per parameter unit (see param_units)",
                 "long_name": f"sensitivity of {name} streamflow to its parameters", "model": name,
                 "warmup_days": warmup, **jac.attrs}
    return jac.rename("dq_dparam")
