"""``pareto``: the front between two calibration losses, traced with exact gradients, for every basin.

Weighted-sum continuation: the basin is calibrated to the first loss (multi-start), then
the weight ``w`` of the second loss in ``(1 - w) L_1 + w L_2`` grows from 0 to 1 in
``n_points - 1`` steps, each an L-BFGS-B run started from the previous point's optimum,
so every point costs a few tens of runs instead of a calibration. A weighted sum reaches
only the convex part of a front; points that another point dominates are flagged.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import models
from ..inputs import model_inputs, period_slice, with_units_notes
from ..models.cemaneige import layer_inputs
from .driver import basin_inputs, calibration_window, model_snow_attr
from .losses import Loss, get_loss
from .optimize import Problem, calibrate_basin, lbfgsb, to_search

__all__ = ["pareto", "pareto_basin"]


class _Blend(Loss):
    """``(1 - w) L_1 + w L_2`` of two loss objects."""

    def __init__(self, first, second, w):
        self.first, self.second, self.w = first, second, float(w)
        self.name = f"{1 - self.w:g}*{first.name}+{self.w:g}*{second.name}"

    def _value(self, q, y):
        (a, da), (b, db) = self.first(q, y), self.second(q, y)
        return (1 - self.w) * a + self.w * b, (1 - self.w) * da + self.w * db


def pareto_basin(model, forcing, obs, losses=("kge", "lognse"), n_points=11, warmup=0, n_starts=8, seed=0,
                 maxiter=200, log_scale=True, solver_options=None):
    """The front between two losses for one basin (plain arrays).

    Returns
    -------
    dict
        ``weight`` (n_points,), ``params`` (n_points, d) physical, ``loss`` (n_points, 2),
        ``dominated`` (n_points,) bool, ``n_evals``.
    """
    first, second = (get_loss(x) for x in losses)
    cal = calibrate_basin(model, forcing, obs, loss=first, warmup=warmup, n_starts=n_starts, seed=seed,
                          log_scale=log_scale, solver_options=solver_options)
    weights = np.linspace(0.0, 1.0, int(n_points))
    params, values, n_evals = np.empty((weights.size, len(model.params))), np.empty((weights.size, 2)), cal["n_evals"]
    theta = np.asarray(cal["params"], dtype=float)
    for k, w in enumerate(weights):
        if k:
            loss = second if w == 1 else _Blend(first, second, w)
            problem = Problem(model, forcing, obs, loss, warmup, log_scale, solver_options)
            v = to_search(theta, problem.log)
            u, *_ = lbfgsb(problem, np.clip((v - problem.lo) / problem.width, 0.0, 1.0), maxiter=maxiter)
            theta, n_evals = problem.theta(u), n_evals + problem.n_evals
        q = model.run(theta, forcing, warmup=warmup, sensitivities=False, **dict(solver_options or {}))[0]
        n_evals += 1
        params[k], values[k] = theta, (first(q, obs)[0], second(q, obs)[0])
    dominated = np.array([np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1)) for v in values])
    return {"weight": weights, "params": params, "loss": values, "dominated": dominated, "n_evals": n_evals}


def _pareto_block(*arrays, model, snow, losses, n_points, warmup, n_starts, seed, maxiter, log_scale,
                  solver_options, dates, forcing_names, layers=False):
    """Kernel over a block of basins: forcings ``(..., T)``, flow ``(..., T)`` [, hypsometry, station elevation]."""
    model = models.get(model, snow=snow)
    if layers:  # CemaNeige's elevation layers per basin, as calibrate runs them
        *arrays, hyps, elev = arrays
    *forcings, flow = arrays
    shape, d = flow.shape[:-1], len(model.params)
    out = (np.full(shape + (n_points, d), np.nan), np.full(shape + (n_points, 2), np.nan),
           np.zeros(shape + (n_points,), dtype=bool), np.zeros(shape, dtype=np.int64),
           np.full(shape, "", dtype=object))
    for idx in np.ndindex(shape):
        forcing, obs, _, failure = basin_inputs(forcings, flow, idx, warmup, forcing_names, dates)
        if failure:
            out[4][idx] = failure
            continue
        try:
            basin_model = model.with_layers(hyps[idx], elev[idx], dates=dates) if layers else model
            res = pareto_basin(basin_model, forcing, obs, losses, n_points, warmup, n_starts, seed, maxiter, log_scale,
                               solver_options)
        except Exception as err:  # whatever goes wrong in one basin fails that basin only
            out[4][idx] = f"failed: {type(err).__name__}: {err}"
            continue
        out[0][idx], out[1][idx], out[2][idx], out[3][idx] = (res["params"], res["loss"], res["dominated"],
                                                              res["n_evals"])
    return out


def pareto(ds: xr.Dataset, model="gr4j", losses=("kge", "lognse"), n_points: int = 11,
           period=slice("1982", "1995"), warmup: int = 365, pet=None, n_starts: int = 8, seed: int = 0, *,
           flow: str = "streamflow", snow: bool = False, maxiter: int = 200, log_scale: bool = True,
           solver_options: dict | None = None) -> xr.Dataset:
    """The Pareto front between two calibration losses for every basin (weighted-sum continuation).

    Parameters
    ----------
    ds, model, period, warmup, pet, n_starts, seed, flow, snow, maxiter, log_scale, solver_options
        As for :func:`basinsx.calibration.calibrate` (``n_starts`` for the calibration to the first loss).
    losses : (str, str)
        Two loss names of :data:`basinsx.calibration.losses.LOSSES`, both minimised.
    n_points : int
        Points on the front, at weights ``w = 0, 1/(n-1), ..., 1`` of the second loss.

    Returns
    -------
    xr.Dataset
        ``params(basin, point, param)``, ``loss(basin, point, objective)``,
        ``dominated(basin, point)`` (another point is at least as good in both losses),
        ``weight(point)``, ``n_evals(basin)``, ``message(basin)``; lazy for dask input.
    """
    if len(losses) != 2:
        raise ValueError(f"pareto traces a front between two losses; got {losses!r}")
    names = [get_loss(x).name for x in losses]
    if int(n_points) < 2:
        raise ValueError(f"need n_points >= 2; got {n_points}")
    model_obj = models.get(model, snow=snow)
    period = period_slice(period)
    ds, input_attrs = model_inputs(ds, model_obj.forcings, flow=flow, pet=pet, where="pareto", warn_biased_pet=True)
    variables = list(model_obj.forcings) + [flow]
    missing = [n for n in variables if n not in ds]
    if missing:
        raise KeyError(f"pareto needs variables {missing} for model {model_obj.name!r}")
    sub, spin, span = calibration_window(ds, variables, period, warmup)
    arrays = [sub[n].reset_coords(drop=True) for n in variables]
    arrays = [a.chunk({"time": -1}) if a.chunks is not None else a for a in arrays]
    extra = layer_inputs(ds, getattr(model_obj, "snow", None))
    input_attrs = with_units_notes(input_attrs, extra)
    n, d = int(n_points), len(model_obj.params)
    results = xr.apply_ufunc(
        _pareto_block, *arrays, *extra,
        input_core_dims=[["time"]] * len(arrays) + [["quantile"], []][: len(extra)],
        output_core_dims=[["point", "param"], ["point", "objective"], ["point"], [], []],
        dask="parallelized", output_dtypes=[np.float64, np.float64, bool, np.int64, object],
        dask_gufunc_kwargs={"output_sizes": {"point": n, "param": d, "objective": 2}},
        kwargs={"model": model if isinstance(model, str) else model_obj, "snow": snow, "losses": tuple(losses),
                "n_points": n, "warmup": spin, "n_starts": int(n_starts), "seed": seed, "maxiter": int(maxiter),
                "log_scale": bool(log_scale), "solver_options": dict(solver_options or {}),
                "dates": sub.indexes["time"].values, "forcing_names": list(model_obj.forcings),
                "layers": bool(extra)},
    )
    out = xr.Dataset(dict(zip(("params", "loss", "dominated", "n_evals", "message"), results)))
    out = out.assign_coords(param=list(model_obj.params), objective=names, point=np.arange(n),
                            weight=("point", np.linspace(0.0, 1.0, n)))
    out["params"].attrs = {"long_name": f"{model_obj.name} parameters on the front"}
    out["loss"].attrs = {"long_name": f"losses over {span} (minimised)", "units": "1"}
    out["dominated"].attrs = {"long_name": "another point of the front is at least as good in both losses"}
    out["weight"].attrs = {"long_name": f"weight of {names[1]} in (1 - w) {names[0]} + w {names[1]}"}
    out["n_evals"].attrs = {"long_name": "model runs (a run with sensitivities counts as one)"}
    out.attrs = {"model": model_obj.name, "snow": model_snow_attr(model_obj), "losses": f"{names[0]}, {names[1]}",
                 "period": span, "warmup_days": spin, "n_starts": int(n_starts), "seed": seed, "maxiter": int(maxiter),
                 "log_scale": int(log_scale), **input_attrs}
    return out
