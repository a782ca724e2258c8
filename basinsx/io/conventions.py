"""Canonical variable names, CF metadata and checks shared by every reader."""

from __future__ import annotations

import difflib
import warnings
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd
import xarray as xr

#: CF metadata of the canonical dynamic variables (basin, time).
VARIABLES: dict[str, dict[str, str]] = {
    "prcp": {"units": "mm d-1", "long_name": "precipitation", "standard_name": "lwe_precipitation_rate"},
    "pet": {"units": "mm d-1", "long_name": "potential evapotranspiration",
            "standard_name": "water_potential_evaporation_flux"},
    "tmean": {"units": "degC", "long_name": "daily mean air temperature", "standard_name": "air_temperature"},
    "tmin": {"units": "degC", "long_name": "daily minimum air temperature", "standard_name": "air_temperature"},
    "tmax": {"units": "degC", "long_name": "daily maximum air temperature", "standard_name": "air_temperature"},
    "srad": {"units": "W m-2", "long_name": "incident shortwave radiation (daylight average)",
             "standard_name": "surface_downwelling_shortwave_flux_in_air"},
    "vp": {"units": "Pa", "long_name": "water vapour pressure", "standard_name": "water_vapor_partial_pressure_in_air"},
    "dayl": {"units": "s", "long_name": "day length"},
    "swe": {"units": "mm", "long_name": "snow water equivalent",
            "standard_name": "lwe_thickness_of_surface_snow_amount"},
    "streamflow": {"units": "mm d-1", "long_name": "observed streamflow (depth over the basin area)",
                   "standard_name": "runoff_flux"},
}

COORD_ATTRS = {
    "gauge_lat": {"units": "degrees_north", "long_name": "gauge latitude", "standard_name": "latitude"},
    "gauge_lon": {"units": "degrees_east", "long_name": "gauge longitude", "standard_name": "longitude"},
    "area": {"units": "km2", "long_name": "basin area"},
    "gauge_name": {"long_name": "gauge name"},
    "gauge_id": {"long_name": "gauge id in the source data set"},
    "streamflow_valid_days": {"long_name": "days with a valid streamflow observation", "units": "1"},
}


def package_version() -> str:
    """The installed basinsx version (``0.0.0+unknown`` in a source tree that is not installed).

    Read from the package metadata, not from ``basinsx.__version__``: the data layer
    imports nothing from the package root.
    """
    try:
        return version("basinsx")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def select_basins(available: list[str], basins) -> list[str]:
    """Return the requested ``basins`` in order, or all of ``available``.

    Raises a :class:`KeyError` that lists close matches for unknown ids.
    """
    if basins is None:
        return list(available)
    if isinstance(basins, str):
        basins = [basins]
    basins = [str(b) for b in basins]
    known = set(available)
    for b in basins:
        if b not in known:
            close = difflib.get_close_matches(b, available, n=5, cutoff=0.6)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise KeyError(f"unknown basin id {b!r} ({len(available)} basins available{hint})")
    dup = pd.Index(basins)[pd.Index(basins).duplicated()]
    if len(dup):
        raise ValueError(f"basin ids requested twice: {sorted(set(dup))}")
    return basins


def check_unique(ids, what: str = "basin") -> None:
    """Raise if ``ids`` holds duplicates."""
    idx = pd.Index(ids)
    if idx.has_duplicates:
        raise ValueError(f"duplicate {what} ids: {sorted(set(idx[idx.duplicated()]))}")


def check_daily(time: pd.DatetimeIndex, where: str) -> None:
    """Raise unless ``time`` is strictly increasing with a step of one day."""
    if time.has_duplicates:
        raise ValueError(f"{where}: duplicate dates, e.g. {time[time.duplicated()][0].date()}")
    if len(time) > 1:
        step = np.diff(time.values).astype("timedelta64[s]")
        bad = step != np.timedelta64(86400, "s")
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{where}: time axis is not daily: {time[i].date()} is followed by {time[i + 1].date()}"
            )


def check_time(ds: xr.Dataset | xr.DataArray, where: str, dim: str = "time") -> pd.DatetimeIndex:
    """The daily, strictly increasing ``dim`` index of ``ds``, or an error naming the first offending date."""
    if dim not in ds.indexes:
        raise ValueError(f"{where}: the data have no {dim!r} coordinate")
    time = ds.indexes[dim]
    calendar = getattr(time, "calendar", None)  # a CFTimeIndex (climate-model calendars)
    if calendar is not None:
        raise ValueError(f"{where}: the time axis is on the {calendar!r} calendar; basinsx needs days of the standard "
                         "calendar (datetime64): convert it, e.g. ds.convert_calendar('standard', align_on='date', "
                         "missing=np.nan), and fill or accept the days it lacks")
    if not isinstance(time, pd.DatetimeIndex):
        raise ValueError(f"{where}: the time axis must hold dates (datetime64), not {time.dtype}; convert the "
                         f"labels themselves, e.g. ds.assign_coords({dim}=pd.to_datetime(ds.{dim}.values))")
    if time.tz is not None:
        raise ValueError(f"{where}: the time axis carries a time zone ({time.tz}); basinsx takes days without "
                         f"one: e.g. ds.assign_coords({dim}=ds.indexes[{dim!r}].tz_localize(None))")
    check_daily(time, where)
    return time


def finalize(ds: xr.Dataset, *, source: str, license: str, citation: str) -> xr.Dataset:
    """Cast dynamic variables to float32, attach CF attrs and flag basins without flow.

    ``streamflow_valid_days(basin)`` counts the valid observations (lazy for dask
    input); basins with none are kept and, when the data are in memory, reported
    in a warning.
    """
    if "time" in ds.indexes and ds.indexes["time"].dtype != "datetime64[ns]":
        ds = ds.assign_coords(time=ds.indexes["time"].astype("datetime64[ns]"))
    for name, var in ds.data_vars.items():
        if "time" in var.dims and var.dtype != np.float32 and np.issubdtype(var.dtype, np.number):
            ds[name] = var.astype(np.float32)
        if name in VARIABLES:
            ds[name].attrs = {**VARIABLES[name], **ds[name].attrs}
    for name, attrs in COORD_ATTRS.items():
        if name in ds.coords:
            ds[name].attrs = {**attrs, **ds[name].attrs}
    if "streamflow" in ds:
        count = ds["streamflow"].count("time")
        if "source" in count.dims:
            count = count.max("source")
        ds = ds.assign_coords(streamflow_valid_days=count.astype(np.int32))
        ds["streamflow_valid_days"].attrs = COORD_ATTRS["streamflow_valid_days"]
        if isinstance(count.data, np.ndarray) and (count.values == 0).any():
            empty = ds.basin.values[count.values == 0].tolist()
            warnings.warn(f"basins with no valid streamflow (kept, flagged by streamflow_valid_days=0): {empty}",
                          stacklevel=3)
    ds.attrs.update(source=source, license=license, citation=citation, basinsx_version=package_version())
    return ds
