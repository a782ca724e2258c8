"""``calibrate``: per-basin calibration of a conceptual model over a labeled Dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .. import flags, models
from ..inputs import model_inputs, period_slice, with_units_notes
from ..models.base import forcing_message, record_problem, snow_attr
from ..models.cemaneige import layer_inputs
from .optimize import OPTIMIZERS, PRIORS, calibrate_basin, log_scaled

__all__ = ["calibrate"]

OUTPUTS = ("params", "loss", "kge", "nse", "n_evals", "converged", "message", "n_negative_pet")


def basin_inputs(forcings, flow, idx, warmup: int, forcing_names, dates):
    """One basin's float64 forcing (negative PET clipped) and observed flow after ``warmup``, checked.

    Returns ``(forcing, obs, negative_pet_days, failure)``: ``failure`` is the basin's
    ``"failed: ..."`` message (bad forcing naming variable and date, no observed flow, or observed flow that is
    infinite or negative, naming the date), else None.
    Shared by the per-basin kernels of calibrate, posterior and pareto.
    """
    forcing = np.stack([np.asarray(f[idx], dtype=np.float64) for f in forcings])
    obs = np.asarray(flow[idx][warmup:], dtype=np.float64)
    negative = 0
    if "pet" in forcing_names:
        pet = forcing[list(forcing_names).index("pet")]
        negative = int((pet < 0).sum())
        np.maximum(pet, 0.0, out=pet)
    problem = forcing_message(forcing, forcing_names, dates)
    if problem:
        return forcing, obs, negative, f"failed: {problem}"
    if not np.isfinite(obs).any():
        return forcing, obs, negative, "failed: no observed streamflow in the calibration period"
    problem = record_problem(obs)
    if problem:  # a fill value such as -999 would be fitted as flow
        t, what = problem
        return forcing, obs, negative, (f"failed: observed streamflow is {what} on "
                                        f"{pd.Timestamp(dates[warmup + t]).date()}")
    return forcing, obs, negative, None


def _calibrate_block(*arrays, model, snow, loss, warmup, n_starts, optimizer, seed, maxiter, tol, log_scale,
                     solver_options, dates, forcing_names, progress, n_screen=0, prior=None, layers=False):
    """Kernel over a block of basins: forcings ``(..., T)`` then flow ``(..., T)``; time last.

    Negative PET is counted per basin and clipped here, as the models would clip it, so
    that no model run warns from inside a dask task (see :mod:`basinsx.flags`).
    """
    from tqdm.auto import tqdm

    model = models.get(model, snow=snow)
    if layers:  # CemaNeige's elevation layers per basin: hypsometry (..., 101), station elevation (...)
        *arrays, hyps, elev = arrays
    *forcings, flow = arrays
    shape, d = flow.shape[:-1], len(model.params)
    out = (np.full(shape + (d,), np.nan), np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan),
           np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=bool), np.empty(shape, dtype=object),
           np.zeros(shape, dtype=np.int64))
    for idx in tqdm(list(np.ndindex(shape)), disable=not progress, desc="calibrate", unit="basin"):
        forcing, obs, out[7][idx], failure = basin_inputs(forcings, flow, idx, warmup, forcing_names, dates)
        if failure:
            out[6][idx] = failure
            continue
        try:
            basin_model = model.with_layers(hyps[idx], elev[idx], dates=dates) if layers else model
            res = calibrate_basin(basin_model, forcing, obs, loss=loss, warmup=warmup, n_starts=n_starts,
                                  optimizer=optimizer, seed=seed, maxiter=maxiter, tol=tol, log_scale=log_scale,
                                  solver_options=solver_options, n_screen=n_screen, prior=prior)
        except Exception as err:  # whatever goes wrong in one basin fails that basin only (not KeyboardInterrupt)
            out[6][idx] = f"failed: {type(err).__name__}: {err}"
            continue
        for k, name in enumerate(OUTPUTS[:7]):
            out[k][idx] = res[name]
    return out


def calibrate(ds: xr.Dataset, model="gr4j", loss="kge", period=slice("1982", "1995"), warmup: int = 365,
              n_starts: int = 4, optimizer: str = "lbfgsb", seed: int = 0, *, flow: str = "streamflow",
              pet=None, snow: bool | str = False, maxiter: int = 200, tol: float | None = None, log_scale: bool = True,
              solver_options: dict | None = None, progress: bool = False, n_screen: int = 32,
              prior: dict | bool | None = None) -> xr.Dataset:
    """Calibrate a conceptual model for every basin with exact-gradient optimization.

    Each basin is calibrated independently. A screening of ``n_screen`` plain model runs
    (no sensitivities; the corners of the model's typical ``prior`` ranges, then a Latin
    hypercube in the unit cube of the parameter bounds) picks the starting points;
    ``optimizer`` refines the best ones with the exact gradient ``J.T @ dL/dq`` (``J``
    from the model's sensitivity run), best first, until a start ends at the best optimum
    found so far, ``n_starts`` starts at most; parameters whose gradient is zero at the best
    point (switches, as CemaNeige's ``cn_ctg``) are then scanned by plain runs; the best point
    is kept. Dask-backed input
    gives a lazy result with one task per basin chunk; results do not depend on the
    chunking or the scheduler.

    Parameters
    ----------
    ds : xr.Dataset
        Forcings named as ``model.forcings`` (``prcp``, ``pet``, with ``snow`` also
        ``tmean``) and observed ``flow`` in mm/d, on dims ``(basin, time)`` (``basin`` optional).
    model : str or model object
        Registry name (one of :func:`basinsx.models.available`, the table of ``docs/models.md``)
        or a model object with ``params``, ``bounds``, ``forcings`` and ``run``.
    loss : str, dict or Loss
        A name from :data:`basinsx.calibration.losses.LOSSES` (``"kge"``, ``"nse"``, ``"sse"``,
        ...), a ``{name: weight}`` dict for a weighted sum, or a :class:`~basinsx.calibration.losses.Loss`.
    period : slice, (start, end) or None
        Calibration period (labels on ``time``, which must be daily dates); ``None`` uses
        the whole record after the warm-up.
    warmup : int
        Days before the start of ``period`` used to spin up the model states. They are
        taken from the data where present; if the record starts later, the warm-up is shorter.
    n_starts : int
        Most gradient starts per basin (the screening's best points, at least 0.25 apart in the
        unit cube); with ``n_screen=0``, the number of Latin-hypercube starts, all of them run
        (the behaviour before the screening, 8 starts: about 3.7x the time at the same median KGE).
    n_screen : int
        Plain runs of the screening (prior corners included); 0 turns it off.
    prior : None, False or dict
        ``{param: (low, high)}``, typical parameter ranges whose corners the screening tries
        first (parameters without one at the middle of their range). ``None`` takes the
        model's entry of :data:`basinsx.calibration.optimize.PRIORS` if any (GR4J: airGR's
        starting distribution), ``False`` none. Recorded in ``attrs["prior"]``.
    optimizer : {"lbfgsb", "lm"}
        L-BFGS-B with the analytic gradient, or projected Levenberg-Marquardt (residual
        losses: sse, nse, lognse, kge, kge2012, fdc, fdc_log, recession; on KGE's three
        residuals it takes more runs and ends lower than L-BFGS-B).
    seed : int
        Seed of the Latin hypercube (the same points for every basin).
    flow : str
        Name of the observed streamflow variable (mm/d; m3 s-1 or ft3 s-1 are converted
        with the ``area`` coordinate, as are other convertible units of every input: see
        :func:`basinsx.units.to_canonical`).
    pet : None, str or xr.DataArray
        The PET to use (see :func:`basinsx.inputs.choose_pet`): ``None`` takes the data
        set's ``pet`` (and warns once if a reader marked it as biased, as Caravan's
        ERA5-Land PET is), a variable name, a method computed on the fly (``"oudin"``,
        ``"hargreaves"``, ``"priestley_taylor"``) or a DataArray. Recorded in ``attrs["pet"]``.
    snow : bool or str
        A snow module (needs ``tmean``); only with a model name: True or ``"degree_day"``,
        ``"cemaneige"``, ``"cemaneige_hyst"`` (see :func:`basinsx.models.get`). CemaNeige reads its
        elevation layers per basin from ``hypsometry(basin, quantile)`` and ``station_elevation``
        (else ``elev_mean``); without a hypsometry it runs on one layer.
    maxiter, tol : int, float
        Iteration limit per start and convergence tolerance of the optimizer; ``tol=None``
        is 5e-5 for L-BFGS-B (relative loss decrease per iteration, twice in a row) and 1e-10 for LM.
    log_scale : bool
        Search positive parameters whose bounds span two decades or more (GR4J's x1, x3)
        on a log scale: better conditioned, about a third fewer model runs.
    solver_options : dict, optional
        Passed to ``model.run`` (ODE models: ``method``, ``n_sub``, ``rtol``, ...).
    progress : bool
        Show a progress bar over the basins, for in-memory input. A dask-backed result is
        computed later: :func:`basinsx.progress.compute` shows one bar over its basins on
        any scheduler, so ``progress=True`` with dask input is an error that says so.

    Returns
    -------
    xr.Dataset
        ``params(basin, param)`` in physical units, ``loss(basin)``, ``kge(basin)``,
        ``nse(basin)`` (of the calibrated simulation over ``period``), ``n_evals(basin)``
        (model runs, a run with sensitivities counting as one), ``converged(basin)``,
        ``message(basin)``, ``n_negative_pet(basin)`` (days of negative PET, clipped to
        zero; a flag of :mod:`basinsx.flags`). A basin that fails (no observed flow, NaN
        forcing, any exception in the model or the optimizer) gets NaN parameters and a
        message ``"failed: <reason>"``; the other basins are unaffected.

    Warns
    -----
    NegativePETWarning
        For in-memory input, once per call, naming the basins with negative PET. For dask
        input nothing warns from inside the tasks: summarise the computed result with
        :func:`basinsx.flags.warn` (the command line does).
    """
    loss_obj, model_obj, prior = _checked_arguments(ds, model, loss, optimizer, n_starts, warmup, n_screen, snow,
                                                    prior)
    period = period_slice(period)
    ds, input_attrs = model_inputs(ds, model_obj.forcings, flow=flow, pet=pet, where="calibrate",
                                   warn_biased_pet=True)
    names = list(model_obj.forcings) + [flow]
    if progress and any(ds[n].chunks is not None for n in names if n in ds):
        raise ValueError("progress=True shows a bar for in-memory input only; compute this lazy result with "
                         "basinsx.progress.compute(result), which counts its basins on any scheduler")
    missing = [n for n in names if n not in ds]
    if missing:
        raise KeyError(f"calibrate needs variables {missing} for model {model_obj.name!r}; the dataset has "
                       f"{sorted(ds.data_vars)}")
    sub, spin, span = calibration_window(ds, names, period, warmup)
    extra = layer_inputs(ds, getattr(model_obj, "snow", None))
    input_attrs = with_units_notes(input_attrs, extra)
    results = _calibrate_blocks(sub, names, extra, model, model_obj, snow=snow, loss=loss, warmup=spin,
                                n_starts=int(n_starts), optimizer=optimizer, seed=seed, maxiter=int(maxiter),
                                tol=None if tol is None else float(tol), log_scale=bool(log_scale),
                                solver_options=dict(solver_options or {}), progress=progress,
                                n_screen=int(n_screen), prior=dict(prior or {}))
    # The basin labels as the user gave them: index coordinates, and non-index ones over basin alone.
    labels = {c: v for c, v in sub.coords.variables.items()
              if "time" not in v.dims and (c in sub.xindexes or v.dims == ("basin",))}
    out = _result_dataset(results, labels, model_obj, loss_obj, span, log_scale)
    out.attrs = {"model": model_obj.name, "snow": model_snow_attr(model_obj), "loss": loss_obj.name, "period": span,
                 "warmup_days": spin,
                 "optimizer": optimizer, "n_starts": int(n_starts), "n_screen": int(n_screen),
                 "prior": "; ".join(f"{p} {lo:g}..{hi:g}" for p, (lo, hi) in (prior or {}).items()) or "none",
                 "seed": seed, "log_scale": int(log_scale),
                 **input_attrs}
    if out["n_negative_pet"].chunks is None:  # computed now: summarise now, from the caller's line
        flags.warn(out)
    return out


def _checked_arguments(ds, model, loss, optimizer, n_starts, warmup, n_screen, snow, prior):
    """calibrate's arguments checked before any data is touched: ``(loss, model, prior)`` as objects.

    ``prior=None`` becomes the model's entry of ``PRIORS`` (for a registry name; none for a model object).
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"calibrate needs a Dataset with forcings and observed flow, got {type(ds).__name__}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
    if int(n_starts) < 1 or int(warmup) < 0 or int(n_screen) < 0:
        raise ValueError(f"need n_starts >= 1, n_screen >= 0 and warmup >= 0, got n_starts={n_starts}, "
                         f"n_screen={n_screen}, warmup={warmup}")
    from .losses import get_loss

    loss_obj = get_loss(loss)  # fails early on an unknown loss
    if optimizer == "lm" and not loss_obj.residual:
        raise ValueError(f"optimizer 'lm' needs a residual loss (sse, nse, lognse, kge, kge2012, fdc, fdc_log, "
                         f"recession); got {loss_obj.name!r}")
    model_obj = models.get(model, snow=snow)
    if prior is None:
        prior = PRIORS.get(model_obj.name, {}) if isinstance(model, str) else {}
    unknown = sorted(set(prior or {}) - set(model_obj.params))
    if unknown:
        raise ValueError(f"prior names {unknown}, which are not parameters of {model_obj.name!r} "
                         f"{list(model_obj.params)}")
    return loss_obj, model_obj, prior


def calibration_window(ds: xr.Dataset, names, period, warmup: int):
    """The variables ``names`` over the calibration ``period`` and up to ``warmup`` days before it.

    Parameters
    ----------
    ds : xr.Dataset
        Inputs on a daily ``time`` index.
    names : list of str
        Variables to select.
    period : slice or None
        Calibration period (from :func:`basinsx.inputs.period_slice`); ``None`` is the
        record after the first ``warmup`` days.
    warmup : int
        Days of spin-up wanted before the period; fewer where the record starts later.

    Returns
    -------
    (xr.Dataset, int, str)
        The selection, the warm-up days it has before the period, and the period as
        ``"YYYY-MM-DD/YYYY-MM-DD"``.
    """
    time = ds.indexes["time"]
    # positions on the index (as ds.sel finds them), then one selection: ds.sel first took twice the time
    days = range(len(time))[time.slice_indexer(period.start, period.stop) if period is not None
                            else slice(int(warmup), None)]
    if len(days) == 0:
        raise ValueError(f"calibration period {period_text(period)} selects no days of the record "
                         f"{time[0].date()} to {time[-1].date()}")
    first, last = days[0], days[-1]
    spin = min(int(warmup), first)
    span = f"{time[first].date()}/{time[last].date()}"
    return ds[names].isel(time=slice(first - spin, last + 1)), spin, span


def _calibrate_blocks(sub, names, extra, model, model_obj, **options):
    """``_calibrate_block`` over the basins of ``sub`` with apply_ufunc: ``OUTPUTS`` as 8 Variables, lazy for dask.

    ``extra``: CemaNeige's layer inputs (:func:`~basinsx.models.cemaneige.layer_inputs`), or ``[]``.

    ``options`` are the block's keyword arguments (``snow``, ``loss``, ``warmup`` as spun up, ...). It
    runs on the variables, without coordinates (they come from one Dataset, so their basins match):
    on DataArrays apply_ufunc aligned and merged coordinates for each output, about 3 ms per call.
    """
    arrays = [sub[n].variable for n in names]
    arrays = [a.chunk({"time": -1}) if a.chunks is not None else a for a in arrays]
    return xr.apply_ufunc(
        _calibrate_block, *arrays, *(e.variable for e in extra),
        input_core_dims=[["time"]] * len(arrays) + [["quantile"], []][: len(extra)],
        output_core_dims=[["param"]] + [[]] * 7,
        dask="parallelized",
        output_dtypes=[np.float64, np.float64, np.float64, np.float64, np.int64, bool, object, np.int64],
        dask_gufunc_kwargs={"output_sizes": {"param": len(model_obj.params)}},
        kwargs={"model": model if isinstance(model, str) else model_obj, **options,
                "dates": sub.indexes["time"].values, "forcing_names": list(model_obj.forcings),
                "layers": bool(extra)},
    )


def model_snow_attr(model_obj) -> int | str:
    """The snow option of a model (a registry model's, or none of a user's model object) as a result attribute."""
    return snow_attr(getattr(model_obj, "snow", None) or False)


def _result_dataset(results, labels, model_obj, loss_obj, span: str, log_scale: bool) -> xr.Dataset:
    """calibrate's result variables, named by ``OUTPUTS``, with units and long names, and ``at_bound``.

    Built from variables in one constructor: from DataArrays (alignment, then a merge to add
    ``at_bound``) it took about 5 ms per call, a tenth of a basin's calibration.
    """
    units = getattr(model_obj, "units", {}) or {}
    attrs = {
        # model and snow as simulate(ds, result["params"]) reads them
        "params": {"long_name": f"calibrated {model_obj.name} parameters (units: param_units)",
                   "model": model_obj.name, "snow": model_snow_attr(model_obj)},
        "loss": {"long_name": f"calibration loss ({loss_obj.name}) over {span}", "units": "1"},
        "kge": {"long_name": f"Kling-Gupta efficiency (2009) over {span}", "units": "1"},
        "nse": {"long_name": f"Nash-Sutcliffe efficiency over {span}", "units": "1"},
        "n_evals": {"long_name": "model runs: plain (screening) and with sensitivities, each counts as one"},
        "converged": {"long_name": "optimizer convergence of the best start"},
        "message": {"long_name": "optimizer message of the best start, or why the basin failed"},
        "n_negative_pet": {"long_name": "days of negative PET in the calibration window, clipped to zero",
                           "units": "d", "flag": "negative PET clipped to zero (days)",
                           "flag_category": "NegativePETWarning"},
    }
    variables = {name: xr.Variable(v.dims, v.data, attrs[name]) for name, v in zip(OUTPUTS, results)}
    variables["at_bound"] = _at_bound(variables["params"], model_obj, log_scale)
    return xr.Dataset(variables, coords={**labels, "param": list(model_obj.params),
                                         "param_units": ("param", [str(units.get(p, "")) for p in model_obj.params])})


#: A parameter within this fraction of its range (in the search space) of a bound is flagged ``at_bound``.
AT_BOUND = 1e-3


def _at_bound(params, model, log_scale: bool):
    """Whether each calibrated parameter (DataArray or Variable) ends on a bound, in the search space; lazy.

    The search space is ``model.transforms``, on the log scale where searched so.

    NaN parameters (a failed basin) are on no bound. One numpy pass per block: the same
    arithmetic on labeled arrays cost 25 ms per call, more than a basin's calibration.
    """
    lo, hi = np.array([model.bounds[p] for p in model.params], dtype=float).T
    log = log_scaled(model, log_scale)

    def scaled(x):
        return np.where(log, np.log(np.where(log & (x > 0), x, 1.0)), x)

    def flag(x):
        u = (scaled(x) - scaled(lo)) / (scaled(hi) - scaled(lo))
        return np.isfinite(x) & ((u < AT_BOUND) | (u > 1 - AT_BOUND))

    out = xr.apply_ufunc(flag, params, input_core_dims=[["param"]], output_core_dims=[["param"]],
                         dask="parallelized", output_dtypes=[bool]).transpose(*params.dims)
    out.attrs = {"long_name": f"parameter within {AT_BOUND:g} of its range of a bound (log scale where searched "
                              "so): the optimum may lie outside the bounds"}
    return out


def period_text(period) -> str:
    """A calibration period as the user wrote it: ``1982 to 1995``, not a slice repr."""
    if isinstance(period, slice):
        return f"{period.start or 'the start'} to {period.stop or 'the end'}"
    return str(period)
