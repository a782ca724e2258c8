"""Goodness-of-fit metrics on the last axis, NaN-aware (sums of :mod:`basinsx.efficiency`), and the xarray function."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .efficiency import efficiency_rows

#: Output order of :func:`metric_kernel` and the CF attrs of each metric.
METRICS = {
    "nse": {"long_name": "Nash-Sutcliffe efficiency", "units": "1"},
    "lognse": {"long_name": "Nash-Sutcliffe efficiency of log(q + eps)", "units": "1"},
    "kge": {"long_name": "Kling-Gupta efficiency (Gupta et al. 2009)", "units": "1"},
    "kge2012": {"long_name": "modified Kling-Gupta efficiency (Kling et al. 2012)", "units": "1"},
    "r": {"long_name": "Pearson correlation of simulated and observed flow", "units": "1"},
    "alpha": {"long_name": "ratio of standard deviations sim/obs (KGE 2009)", "units": "1"},
    "gamma": {"long_name": "ratio of coefficients of variation sim/obs (KGE 2012)", "units": "1"},
    "beta": {"long_name": "ratio of means sim/obs", "units": "1"},
    "rmse": {"long_name": "root-mean-square error", "units": "same as the flow"},
    "pbias": {"long_name": "percent bias 100 * sum(sim - obs) / sum(obs)", "units": "%"},
    "n_obs": {"long_name": "number of time steps with both values valid", "units": "1"},
}


def _constant(x: np.ndarray, shape: tuple) -> np.ndarray:
    """Rows of ``x`` (2-D, NaN skipped) whose values are all equal, in ``shape``."""
    return (np.fmax.reduce(x, axis=-1) == np.fmin.reduce(x, axis=-1)).reshape(shape)


def metric_kernel(sim: np.ndarray, obs: np.ndarray, log_eps: float) -> np.ndarray:
    """All metrics of ``sim`` against ``obs`` along the last axis, pairs with a NaN skipped.

    ``log_eps`` is added before the logarithm of log-NSE; a negative value means
    "one percent of the mean observed flow", the usual guard against zero flow.
    Returns an array with a new last axis in the order of :data:`METRICS`.
    """
    sim, obs = np.broadcast_arrays(np.asarray(sim, np.float64), np.asarray(obs, np.float64))
    valid = np.isfinite(sim) & np.isfinite(obs)
    shape = sim.shape[:-1]
    obs = np.where(valid, obs, np.nan).reshape(-1, obs.shape[-1])  # pairs with a NaN leave the sums
    sim = sim.reshape(obs.shape)
    n, mean_s, mean_o, ss_s, ss_o, sp, sse = np.moveaxis(efficiency_rows(sim, obs).reshape(*shape, 7), -1, 0)
    # a constant series has no spread, but round-off in its mean leaves sums of squares of 1e-30: an observed one
    # makes the efficiencies undefined (NaN, not 1 - sse / 1e-30), a simulated one the correlation (0 / 0)
    const_o, const_s = _constant(obs, shape), _constant(np.where(np.isnan(obs), np.nan, sim), shape)
    ss_o = np.where(const_o, np.nan, ss_o)
    ss_s, sp = np.where(const_s, 0.0, ss_s), np.where(const_s, 0.0, sp)
    with np.errstate(invalid="ignore", divide="ignore"):
        nse = 1 - sse / ss_o
        r = sp / np.sqrt(ss_s * ss_o)
        alpha = np.sqrt(ss_s / ss_o)
        beta = mean_s / mean_o
        gamma = alpha / beta
        kge = 1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)
        kge2012 = 1 - np.sqrt((r - 1) ** 2 + (gamma - 1) ** 2 + (beta - 1) ** 2)
        eps = np.where(log_eps < 0, 0.01 * mean_o, log_eps).reshape(-1, 1)
        logs = efficiency_rows(np.log(np.maximum(sim, 0) + eps), np.log(np.maximum(obs, 0) + eps)).reshape(*shape, 7)
        lognse = 1 - logs[..., 6] / np.where(_constant(np.maximum(obs, 0), shape), np.nan, logs[..., 4])
        rmse = np.sqrt(sse / n)
        pbias = 100 * (mean_s - mean_o) / mean_o
    out = np.stack([nse, lognse, kge, kge2012, r, alpha, gamma, beta, rmse, pbias, n.astype(np.float64)], axis=-1)
    out[n < 2] = np.nan
    out[..., -1] = n
    return out


def common_units(obs: xr.DataArray, *others: xr.DataArray) -> str | None:
    """The units flows are compared in: the observed flow's, or mm d-1 where one has none (as across basinsx);
    None where none has units. Shared by the metrics and the plots."""
    given = [a.attrs.get("units") for a in (obs, *others)]
    if not any(given):
        return None
    from .units import canonical_units

    return given[0] if all(given) else canonical_units("streamflow")


def metrics(sim: xr.DataArray, obs: xr.DataArray, dim: str = "time", log_eps: float = -1.0) -> xr.Dataset:
    """NSE, log-NSE, KGE (2009 and 2012 with their components), RMSE and PBIAS along ``dim``.

    Parameters
    ----------
    sim, obs : xarray.DataArray
        Simulated and observed flow; aligned by their labels (an error if they
        share none along a dimension) and broadcast against each other. Steps where
        either is NaN are left out (pairwise), never zero-filled. ``sim`` is converted
        to ``obs``'s ``units`` (e.g. m3 s-1 to mm d-1 with the ``area`` coordinate) or
        the call fails naming both; a side without ``units`` is taken to be in mm d-1
        (as everywhere in basinsx) and the other converted to it.
    dim : str
        Dimension to reduce, one chunk along it for dask input.
    log_eps : float
        Offset added before the logarithm of log-NSE, in flow units; the default
        (-1) uses 1 % of the mean observed flow.

    Returns
    -------
    xarray.Dataset
        One variable per metric (``nse``, ``lognse``, ``kge``, ``kge2012``, ``r``,
        ``alpha``, ``gamma``, ``beta``, ``rmse``, ``pbias``, ``n_obs``) over the
        remaining dimensions; lazy when the input is dask-backed. Metrics of a
        series with fewer than two valid pairs are NaN; so are NSE, log-NSE, ``r``,
        ``alpha``, ``gamma`` and the KGEs where the observed flow is constant (no
        variance to explain), and ``r`` and the KGEs where the simulated flow is.
    """
    for name, arr in (("sim", sim), ("obs", obs)):
        if not isinstance(arr, xr.DataArray):
            raise TypeError(f"{name} must be an xarray.DataArray, got {type(arr).__name__}")
        if dim not in arr.dims:
            raise ValueError(f"{name} has no dimension {dim!r} (dims: {arr.dims})")
    units = common_units(obs, sim)
    if units:  # e.g. sim in m3 s-1, obs in mm d-1: converted, or an error naming both
        from .units import to_canonical

        area = obs.coords.get("area", sim.coords.get("area"))
        sim, _ = to_canonical(sim, "sim", expected=units, area=area)
        obs, _ = to_canonical(obs, "obs", expected=units, area=area)
    sim, obs = xr.align(sim, obs, join="inner")
    for d in set(sim.dims) & set(obs.dims):
        if sim.sizes[d] == 0:
            raise ValueError(f"sim and obs share no {d} labels")
    if sim.chunks is not None:
        sim = sim.chunk({dim: -1})
    if obs.chunks is not None:
        obs = obs.chunk({dim: -1})
    out = xr.apply_ufunc(
        metric_kernel, sim, obs, kwargs={"log_eps": log_eps},
        input_core_dims=[[dim], [dim]], output_core_dims=[["metric"]],
        dask="parallelized", output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"metric": len(METRICS)}},
    )
    ds = xr.Dataset({name: out.isel(metric=i, drop=True) for i, name in enumerate(METRICS)})
    for name, attrs in METRICS.items():
        ds[name].attrs = dict(attrs)
        if name == "rmse" and units:
            ds[name].attrs["units"] = units
    ds["n_obs"] = ds["n_obs"].astype(np.int64)
    return ds
