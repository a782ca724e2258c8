"""Hydrological signatures of daily streamflow, following the CAMELS definitions.

Addor et al. (2018, WRR, doi:10.1002/2017WR021488) and the CAMELS attributes of
Addor et al. (2017, HESS): the same kernels (plain arrays, time last) serve the
xarray function :func:`signatures` and signature-based losses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from numba import njit

from .inputs import check_time, period_slice
from .models.base import record_problem

__all__ = ["SIGNATURES", "baseflow", "signatures", "signatures_1d"]

#: Signature name -> (units, long name). Thresholds as in CAMELS.
SIGNATURES = {
    "q_mean": ("mm d-1", "mean daily discharge"),
    "runoff_ratio": ("1", "ratio of mean daily discharge to mean daily precipitation"),
    "baseflow_index": ("1", "ratio of mean daily baseflow (Lyne-Hollick filter after Ladson et al. 2013, "
                       "0.925, 3 passes) to mean discharge"),
    "slope_fdc": ("1", "slope of the flow duration curve between the 33rd and 66th flow percentiles, "
                  "normalised by the mean flow"),
    "q5": ("mm d-1", "5% flow quantile (low flow)"),
    "q95": ("mm d-1", "95% flow quantile (high flow)"),
    "high_q_freq": ("d yr-1", "frequency of high-flow days (> 9 times the median daily flow)"),
    "high_q_dur": ("d", "mean duration of high-flow events (consecutive days > 9 times the median daily flow)"),
    "low_q_freq": ("d yr-1", "frequency of low-flow days (<= 0.2 times the mean daily flow)"),
    "low_q_dur": ("d", "mean duration of low-flow events (consecutive days <= 0.2 times the mean daily flow)"),
    "zero_q_freq": ("1", "fraction of days with zero flow"),
}
HIGH_FLOW_FACTOR = 9.0  # times the median daily flow
LOW_FLOW_FACTOR = 0.2  # times the mean daily flow
DAYS_PER_YEAR = 365.25


@njit(cache=True)
def _lyne_hollick_pass(qb, alpha, forward):
    """One pass of the Lyne-Hollick quickflow filter over ``qb``; returns the new baseflow."""
    n = qb.size
    qf = np.empty(n)
    out = np.empty(n)
    if forward:
        qf[0] = qb[0]
        for i in range(1, n):
            qf[i] = alpha * qf[i - 1] + 0.5 * (1.0 + alpha) * (qb[i] - qb[i - 1])
    else:
        qf[n - 1] = qb[n - 1]
        for i in range(n - 2, -1, -1):
            qf[i] = alpha * qf[i + 1] + 0.5 * (1.0 + alpha) * (qb[i] - qb[i + 1])
    for i in range(n):
        out[i] = qb[i] - qf[i] if qf[i] > 0 else qb[i]
    return out


@njit(cache=True)
def _baseflow_segment(q, alpha, passes, n_reflect):
    n = q.size
    ext = np.empty(n + 2 * n_reflect)
    for i in range(n_reflect):
        ext[i] = q[n_reflect - i]  # q[n_reflect], ..., q[1]
        ext[n + n_reflect + i] = q[n - 2 - i]  # q[n-2], ..., q[n-1-n_reflect]
    ext[n_reflect:n_reflect + n] = q
    b = _lyne_hollick_pass(ext, alpha, True)
    for _ in range((passes - 1) // 2):
        b = _lyne_hollick_pass(_lyne_hollick_pass(b, alpha, False), alpha, True)
    return np.maximum(b[n_reflect:n_reflect + n], 0.0)


def baseflow(q, alpha=0.925, passes=3, n_reflect=30):
    """Baseflow by the Lyne-Hollick filter as standardised by Ladson et al. (2013), used for CAMELS.

    Forward, then (backward, forward) pairs of
    ``f_t = a f_{t-1} + (1+a)/2 (Q_t - Q_{t-1})``, baseflow ``Q - f`` where ``f > 0``;
    ``n_reflect`` values are reflected at both ends to spin the filter up. Runs of
    more than ``n_reflect`` observed days are filtered separately; other days get NaN.

    Parameters
    ----------
    q : array_like (T,)
        Daily flow, NaN where missing.
    alpha : float
        Filter parameter (0.925 for daily data).
    passes : int
        Odd number of passes, at least 3.

    Returns
    -------
    ndarray (T,)
    """
    if passes % 2 == 0 or passes < 3:
        raise ValueError(f"passes must be odd and at least 3, got {passes}")
    q = np.asarray(q, dtype=np.float64)
    out = np.full(q.size, np.nan)
    ok = np.isfinite(q)
    edges = np.diff(np.concatenate(([0], ok.astype(np.int8), [0])))
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        if stop - start > n_reflect:
            out[start:stop] = _baseflow_segment(q[start:stop], alpha, passes, n_reflect)
    return out


def _run_lengths(flags):
    """Lengths of the runs of True in a boolean array."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def signatures_1d(q, p=None):
    """All signatures of one flow series ``q`` (and precipitation ``p``), in :data:`SIGNATURES` order.

    NaN days are left out as in the CAMELS code: means, quantiles and events use the
    observed days; the baseflow filter runs over each stretch of more than 30 observed
    days (Ladson et al. 2013).
    """
    q = np.asarray(q, dtype=np.float64)
    ok = np.isfinite(q)
    out = np.full(len(SIGNATURES), np.nan)
    if not ok.any():
        return out
    qo = q[ok]
    mean, median = qo.mean(), np.median(qo)
    q33, q66 = np.quantile(qo, 0.33), np.quantile(qo, 0.66)
    # As in the CAMELS files: standard (non-exceedance) quantiles, slope normalised by the mean.
    slope = (q66 - q33) / mean / (0.66 - 0.33) if mean > 0 else np.nan
    ratio = np.nan
    if p is not None:
        p = np.asarray(p, dtype=np.float64)
        both = ok & np.isfinite(p)  # days with flow and precipitation, as in CAMELS
        ratio = q[both].mean() / p[both].mean() if both.any() else np.nan
    bf = baseflow(q)
    used = np.isfinite(bf)
    bfi = bf[used].sum() / q[used].sum() if used.any() and q[used].sum() > 0 else np.nan
    # Events are runs over the observed days (missing days are skipped, as in CAMELS).
    high, low = qo > HIGH_FLOW_FACTOR * median, qo <= LOW_FLOW_FACTOR * mean
    high_runs, low_runs = _run_lengths(high), _run_lengths(low)
    per_year = DAYS_PER_YEAR / qo.size
    out[:] = (mean, ratio, bfi, slope, np.quantile(qo, 0.05), np.quantile(qo, 0.95),
              high.sum() * per_year, high_runs.mean() if high_runs.size else 0.0,
              low.sum() * per_year, low_runs.mean() if low_runs.size else 0.0,
              np.mean(qo == 0))
    return out


def _signatures_block(q, *rest, dates):
    """Signatures of flow ``q`` (..., T), with precipitation ``p`` (..., T) if given, and labels (...) naming series.

    Leading dims broadcast (e.g. a flow ensemble against one precipitation per basin); an infinite or negative
    value (a fill value such as -999) is an error naming the series and date.
    """
    *p, labels = rest
    shape = np.broadcast_shapes(q.shape[:-1], *(a.shape[:-1] for a in p), np.shape(labels))
    records = {name: np.broadcast_to(a, shape + a.shape[-1:]) for name, a in zip(("streamflow", "precipitation"),
                                                                                [q, *p])}
    labels = np.broadcast_to(labels, shape)
    out = np.empty(shape + (len(SIGNATURES),))
    for idx in np.ndindex(shape):
        for name, record in records.items():
            problem = record_problem(record[idx])
            if problem:
                t, what = problem
                raise ValueError(f"signatures: {name} is {what}{labels[idx]} on {pd.Timestamp(dates[t]).date()}")
        out[idx] = signatures_1d(*(record[idx] for record in records.values()))
    return out


def _aligned(q: xr.DataArray, p: xr.DataArray, dim: str) -> list:
    """Flow and precipitation on the same labels, or an error naming the dimension where they differ."""
    differ = [d for d in q.indexes if d in p.indexes and not q.indexes[d].equals(p.indexes[d])]
    if differ:
        raise ValueError(f"signatures: precipitation and flow have different {differ[0]!r} labels; select the same "
                         f"{'dates' if differ[0] == dim else differ[0]} of both (e.g. with xr.align)")
    return list(xr.align(q, p, join="exact"))


def signatures(obj, flow="streamflow", prcp="prcp", dim="time", **kwargs) -> xr.Dataset:
    """Hydrological signatures of daily streamflow (CAMELS definitions, Addor et al. 2018).

    Parameters
    ----------
    obj : xr.Dataset or xr.DataArray
        A Dataset holding ``flow`` (and ``prcp``), or a DataArray of daily flow in mm/d.
    flow : str
        Name of the flow variable when ``obj`` is a Dataset.
    prcp : str, xr.DataArray or None
        Precipitation (mm/d) for the runoff ratio: a variable name of the Dataset or a
        DataArray. Without it (or when the Dataset lacks it) ``runoff_ratio`` is NaN.
    dim : str
        The time dimension.
    **kwargs
        ``period``: a slice or ``(start, end)`` of ``dim`` labels to compute the signatures over
        (CAMELS used water years 1989-10-01 .. 2009-09-30).

    Returns
    -------
    xr.Dataset
        One variable per signature (see :data:`SIGNATURES`), over the non-time dims of
        ``flow``; lazy for dask input.

    Raises
    ------
    ValueError
        A time axis that is not daily dates in order, a period that runs backwards or selects no
        days, precipitation on other labels than the flow, units that do not convert, and (when
        computed) an infinite or negative flow or precipitation, e.g. a -999 fill value, naming the
        basin and date.
    """
    period = kwargs.pop("period", None)
    if kwargs:
        raise TypeError(f"unexpected arguments {sorted(kwargs)}; signatures takes flow, prcp, dim, period")
    if isinstance(obj, xr.Dataset):
        if flow not in obj:
            raise KeyError(f"flow variable {flow!r} not in the dataset; it has {sorted(obj.data_vars)}")
        q = obj[flow]
        p = obj[prcp] if isinstance(prcp, str) and prcp in obj else prcp if isinstance(prcp, xr.DataArray) else None
    elif isinstance(obj, xr.DataArray):
        q = obj
        p = prcp if isinstance(prcp, xr.DataArray) else None
    else:
        raise TypeError(f"signatures needs a Dataset or a DataArray, got {type(obj).__name__}")
    if dim not in q.dims:
        raise ValueError(f"flow has no dimension {dim!r}; its dims are {q.dims}")
    from .units import to_canonical

    area = obj["area"] if "area" in obj.coords or (isinstance(obj, xr.Dataset) and "area" in obj) else None
    q, _ = to_canonical(q, "streamflow", area=area)
    p = None if p is None else to_canonical(p, "prcp", area=area)[0]
    check_time(q, "signatures", dim)
    period = period_slice(period)
    if period is not None:
        q = q.sel({dim: period})
        p = None if p is None else p.sel({dim: period})
        if q.sizes[dim] == 0:
            raise ValueError(f"signatures: period {period.start} to {period.stop} selects no days of the flow")
    args = [q] if p is None else _aligned(q, p, dim)
    args = [a.chunk({dim: -1}) if a.chunks is not None else a for a in args]
    # names of the series for errors, as plain strings that apply_ufunc does not align on
    labels = (xr.DataArray(np.char.add(" for basin ", q["basin"].values.astype(str)), dims=q["basin"].dims)
              if "basin" in q.coords else xr.DataArray(""))
    out = xr.apply_ufunc(
        _signatures_block, *args, labels,
        input_core_dims=[[dim]] * len(args) + [[]],
        output_core_dims=[["signature"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"signature": len(SIGNATURES)}},
        kwargs={"dates": q[dim].values},
    )
    out = out.assign_coords(signature=list(SIGNATURES)).to_dataset(dim="signature")
    for name, (units, long_name) in SIGNATURES.items():
        out[name].attrs = {"units": units, "long_name": long_name}
    out = out.drop_vars("signature", errors="ignore")
    out.attrs = {"reference": "Addor et al. (2018), doi:10.1002/2017WR021488; CAMELS hydrological signatures"}
    return out
