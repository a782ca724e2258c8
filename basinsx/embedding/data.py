"""Input preparation for the embedding models: plain numpy, no torch, no xarray in the kernels.

Arrays are ``(basin, variable, time)`` with time on the last axis. The helpers at the bottom
turn a Dataset into that layout (lazily) and are the only xarray code here.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Offset of the flow transform log10(q + FLOW_EPS) (Ghosh et al. 2022), in mm/d.
FLOW_EPS = 0.005


def transform_inputs(x: np.ndarray, flow_index: int | None) -> np.ndarray:
    """Apply the flow transform ``log10(q + 0.005)`` to channel ``flow_index`` of a copy of ``x``.

    Negative flows (gauge artefacts) are clipped to zero first so the logarithm stays finite.
    """
    x = np.array(x, dtype=np.float32, copy=True)
    if flow_index is not None:
        q = x[:, flow_index]
        x[:, flow_index] = np.log10(np.clip(q, 0.0, None) + FLOW_EPS)
    return x


def input_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-variable mean and standard deviation over basins and time, NaNs skipped.

    The statistics are global across basins on purpose: a per-basin z-score would remove
    exactly the between-basin differences the embedding has to encode.
    """
    mean = np.nanmean(x, axis=(0, 2))
    std = np.nanstd(x, axis=(0, 2))
    if not np.all(np.isfinite(mean)):
        raise ValueError("an input variable has no valid value in the training data")
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def season_channels(dayofyear: np.ndarray) -> np.ndarray:
    """``(2, time)`` sine and cosine of the day of the year: windows start on any day."""
    angle = 2 * np.pi * (np.asarray(dayofyear, dtype=np.float32) - 1) / 365.25
    return np.stack([np.sin(angle), np.cos(angle)]).astype(np.float32)


def encoder_channels(x: np.ndarray, mean: np.ndarray, std: np.ndarray, flow_index: int | None,
                     dayofyear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model channels from raw inputs ``x (basin, variable, time)``.

    Returns ``channels (basin, variable + 3, time)`` -- z-scored inputs with NaN set to 0
    (the training mean), a flow-observed flag and the two season channels -- and the
    boolean flow-observed mask ``(basin, time)`` (all True when there is no flow input).
    """
    z = (transform_inputs(x, flow_index) - mean[None, :, None]) / std[None, :, None]
    if flow_index is None:
        observed = np.ones((x.shape[0], x.shape[2]), dtype=bool)
    else:
        observed = np.isfinite(z[:, flow_index])
    z = np.nan_to_num(z, nan=0.0)
    season = np.broadcast_to(season_channels(dayofyear), (x.shape[0], 2, x.shape[2]))
    channels = np.concatenate([z, observed[:, None].astype(np.float32), season], axis=1)
    return channels.astype(np.float32), observed


def valid_starts(observed: np.ndarray, length: int, min_observed: float) -> list[np.ndarray]:
    """Per basin, the window start indices whose flow is observed on at least ``min_observed`` of the days."""
    n_time = observed.shape[-1]
    if n_time < length:
        return [np.zeros(0, dtype=np.int64) for _ in range(observed.shape[0])]
    csum = np.concatenate([np.zeros((observed.shape[0], 1)), np.cumsum(observed, axis=-1)], axis=-1)
    counts = csum[:, length:] - csum[:, :-length]
    return [np.flatnonzero(c >= min_observed * length) for c in counts]


def strided_starts(n_time: int, length: int, stride: int) -> np.ndarray:
    """Start indices of windows of ``length`` every ``stride`` days, the last one flush with the end."""
    if n_time < length:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, n_time - length + 1, stride)
    if starts[-1] != n_time - length:
        starts = np.append(starts, n_time - length)
    return starts


def gather_windows(channels: np.ndarray, basins: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``(window, time, channel)`` array of the windows ``channels[basins[i], :, starts[i]:starts[i]+length]``."""
    idx = starts[:, None] + np.arange(length)[None, :]
    return np.ascontiguousarray(channels[basins[:, None], :, idx])


# ----------------------------------------------------------------------------------------------
# xarray side


def drop_leap_days(obj):
    """Remove 29 February so every year has 365 days and windows keep their seasonal phase."""
    time = obj["time"]
    return obj.isel(time=~((time.dt.month == 2) & (time.dt.day == 29)).values)


def select_period(ds: xr.Dataset, period) -> xr.Dataset:
    """``ds`` restricted to ``period`` (None, a ``slice`` or a ``(start, end)`` pair of dates)."""
    if period is None:
        return ds
    if isinstance(period, slice):
        out = ds.sel(time=period)
    elif isinstance(period, (tuple, list)) and len(period) == 2:
        out = ds.sel(time=slice(*period))
    else:
        raise TypeError(f"period must be None, a slice or a (start, end) pair, got {period!r}")
    if out.sizes["time"] == 0:
        raise ValueError(f"period {period!r} selects no time step")
    return out


def stack_inputs(ds: xr.Dataset, inputs, period=None) -> xr.DataArray:
    """Lazy ``(basin, variable, time)`` float32 array of ``inputs`` in ``period``, leap days dropped.

    Inputs with a canonical name (``prcp``, ``tmean``, ``pet``, ``streamflow``, ...) are checked
    for units and converted to canonical ones (:func:`basinsx.units.to_canonical`).
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"expected an xarray Dataset, got {type(ds).__name__}")
    inputs = list(inputs)
    missing = [v for v in inputs if v not in ds]
    if missing:
        raise KeyError(f"input variables {missing} not in the dataset; it has {sorted(ds.data_vars)}")
    for v in inputs:
        if set(ds[v].dims) != {"basin", "time"}:
            raise ValueError(f"input {v!r} must have dims (basin, time), it has {ds[v].dims}")
    from ..units import canonical_units, dataset_to_canonical

    ds, _ = dataset_to_canonical(ds, [v for v in inputs if canonical_units(v)])  # K -> degC, m3 s-1 -> mm d-1, ...
    sub = drop_leap_days(select_period(ds[inputs], period))
    da = sub.to_dataarray("variable").transpose("basin", "variable", "time").astype(np.float32)
    return da


def static_array(ds: xr.Dataset, names) -> np.ndarray:
    """``(basin, attribute)`` float array of the static variables ``names`` (NaN where unknown)."""
    names = list(names)
    missing = [v for v in names if v not in ds]
    if missing:
        raise KeyError(f"attributes {missing} not in the dataset")
    bad = [v for v in names if ds[v].dims != ("basin",)]
    if bad:
        raise ValueError(f"attributes {bad} must be static variables with dims (basin,)")
    return np.stack([np.asarray(ds[v].values, dtype=np.float64) for v in names], axis=1)


def static_features(ds: xr.Dataset, names, units: dict | None = None) -> xr.DataArray:
    """``(basin, feature)`` float64 array of the static attributes ``names`` of ``ds``, lazy if ``ds`` is.

    ``units`` (attribute -> units, e.g. :func:`attribute_units` of the training data) converts each
    attribute that has units into those (:func:`basinsx.units.to_canonical`); an attribute without
    units is taken to be in them. Raises KeyError naming attributes the dataset lacks, ValueError for
    non-numeric ones or units that do not convert.
    """
    from ..units import to_canonical

    missing = [a for a in names if a not in ds]
    if missing:
        raise KeyError(f"attributes {missing} are not variables of the dataset")
    bad = [a for a in names if ds[a].dims != ("basin",) or ds[a].dtype.kind not in "biuf"]
    if bad:
        raise ValueError(f"attributes {bad} must be numeric static variables with dims (basin,)")
    units = units or {}
    columns = [to_canonical(ds[a], a, expected=units[a])[0] if units.get(a) else ds[a] for a in names]
    out = xr.concat([c.astype(np.float64).reset_coords(drop=True) for c in columns], dim="feature")
    return out.assign_coords(feature=np.asarray(names, dtype=str)).transpose("basin", "feature")


def attribute_units(ds: xr.Dataset, names) -> dict:
    """``attribute -> units`` of ``ds`` (None where an attribute has none): what features are compared in."""
    return {a: ds[a].attrs.get("units") for a in names if a in ds}
