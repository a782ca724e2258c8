"""Reader for the Caravan layout (Kratzert et al. 2023)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from ..units import canonical_units, to_canonical
from .conventions import check_daily, check_unique, finalize, select_basins
from .readers import FileFormatError, basin_chunk, merge_tables, read_table, reading, require_rows, stack_basins

#: Caravan names of the canonical variables; every other variable keeps its name.
RENAME = {
    "total_precipitation_sum": "prcp",
    "temperature_2m_mean": "tmean",
    "potential_evaporation_sum": "pet",
    "streamflow": "streamflow",
}

# Units of the other Caravan (ERA5-Land) series, by name pattern.
_UNITS = [
    (r"^(dewpoint_)?temperature_2m_", "degC"),
    (r"_sum$", "mm d-1"),
    (r"^surface_pressure", "kPa"),
    (r"radiation", "W m-2"),
    (r"wind", "m s-1"),
    (r"^volumetric_soil_water", "m3 m-3"),
    (r"^snow_depth_water_equivalent", "mm"),
]

#: Caravan's ERA5-Land PET is several times observation-based PET in many basins; readers mark it (inputs.KNOWN_BIAS).
ERA5_PET_BIAS = (
    "ERA5-Land potential_evaporation_sum (Caravan) exceeds observation-based PET several-fold in many basins "
    "(Clerc-Schwarzenbach et al. 2024, HESS 28, 4219, doi:10.5194/hess-28-4219-2024)"
)

LAYOUT = (
    "expected the Caravan layout: <root>/timeseries/{netcdf,csv}/<subset>/<subset>_<id>.{nc,csv} "
    "and <root>/attributes/<subset>/attributes_*_<subset>.csv"
)
LICENSE = "CC-BY-4.0"
CITATION = (
    "Kratzert, F. et al. (2023): Caravan - A global community dataset for large-sample hydrology. "
    "Scientific Data 10, 61, doi:10.1038/s41597-023-01975-w; "
    "CAMELS-US: Newman, A. J. et al. (2015), HESS 19, 209-223, doi:10.5194/hess-19-209-2015"
)


def _files(root: Path, subset: str, fmt: str) -> dict[str, Path]:
    ext = {"netcdf": "nc", "csv": "csv"}.get(fmt)
    if ext is None:
        raise ValueError(f"format must be 'netcdf' or 'csv', got {fmt!r}")
    folder = root / "timeseries" / fmt / subset
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}; {LAYOUT}")
    files = {p.stem[len(subset) + 1 :]: p for p in sorted(folder.glob(f"{subset}_*.{ext}"))}
    if not files:
        raise FileNotFoundError(f"no {subset}_<id>.{ext} files in {folder}; {LAYOUT}")
    check_unique(list(files), "basin")
    return files


@contextlib.contextmanager
def _open_netcdf(path: Path):
    # h5py walks the metadata first: on a corrupt file h5netcdf fails half-built and prints a
    # traceback when the wreck is collected, even though the error itself is caught.
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, obj: None)
        with xr.open_dataset(h5, engine="h5netcdf") as f:
            yield f


def _read_header(path: Path) -> tuple[pd.DatetimeIndex, list[str]]:
    """Dates and (canonical) variable names of one time-series file, values left unread."""
    with reading(path, "a Caravan time series"):
        if path.suffix == ".nc":
            with _open_netcdf(path) as f:
                if "date" not in f.variables:
                    raise FileFormatError(path, "no 'date' variable")
                _check_dims(path, f)
                dates, names = pd.DatetimeIndex(f["date"].values), [str(n) for n in f.data_vars]
        else:
            names = pd.read_csv(path, nrows=0).columns.tolist()
            if "date" not in names:
                raise FileFormatError(path, f"no 'date' column (columns: {names[:5]} ...)")
            names.remove("date")
            dates = pd.DatetimeIndex(pd.read_csv(path, usecols=["date"], parse_dates=["date"])["date"]).rename(None)
    _check_dates(path, dates)
    return dates, [RENAME.get(n, n) for n in names]


def _read_series(path: Path, variables: list[str]) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    with reading(path, "a Caravan time series"):
        if path.suffix == ".nc":
            with _open_netcdf(path) as f:
                _check_dims(path, f)
                f = f.load()
            dates = pd.DatetimeIndex(f["date"].values)
            values = {name: _in_caravan_units(f[name], RENAME.get(name, name)) for name in f.data_vars}
        else:
            frame = pd.read_csv(path, parse_dates=["date"])
            dates = pd.DatetimeIndex(frame.pop("date")).rename(None)
            values = {name: frame[name].to_numpy(dtype=np.float32) for name in frame.columns}
    values = {RENAME.get(k, k): v for k, v in values.items()}
    _check_variables(path, variables, values)
    _check_dates(path, dates)
    return dates, values


def _check_dims(path: Path, f: xr.Dataset) -> None:
    """Every series of a netCDF file is one value per day: dims ``('date',)``."""
    for name, var in f.data_vars.items():
        if var.dims != ("date",):
            raise FileFormatError(path, f"variable {name!r} has dims {var.dims}; every series must have the one "
                                        "dim 'date'")


def _check_dates(path: Path, dates: pd.DatetimeIndex) -> None:
    """Plain days: no time zone, no time of day, daily and increasing (errors name the file)."""
    if dates.tz is not None:
        raise FileFormatError(path, f"dates carry a time zone ({dates.tz}); Caravan dates are plain days "
                                    "(e.g. 1981-01-01), without a time or time zone")
    off = dates != dates.normalize()
    if off.any():
        raise FileFormatError(path, f"dates have a time of day, e.g. {dates[int(np.argmax(off))]}; Caravan dates "
                                    "are plain days (e.g. 1981-01-01)")
    try:
        check_daily(dates, str(path))
    except ValueError as err:
        raise FileFormatError(path, str(err).removeprefix(f"{path}: ")) from None


def _units(name: str) -> str | None:
    """The units of a (canonical) series name as Caravan documents them (its files carry none)."""
    return canonical_units(name) or next((u for pattern, u in _UNITS if re.search(pattern, name)), None)


def _in_caravan_units(var: xr.DataArray, name: str) -> np.ndarray:
    """A file variable's values in :func:`_units`, converted from its own ``units`` where it has them."""
    expected = _units(name)
    if expected is None or not var.attrs.get("units"):
        return var.values
    return to_canonical(var, name, expected=expected)[0].values  # a UnitsError names variable and units


def _check_variables(path: Path, variables, found) -> None:
    missing = [v for v in variables if v not in found]
    if missing:
        raise FileFormatError(path, f"no variable {', '.join(missing)}; every basin file must hold the same "
                                    "variables (a missing series is never filled with NaN)")


def read_attributes(root: Path, subset: str, gauge_ids=None) -> pd.DataFrame:
    """All ``attributes_*_<subset>.csv`` tables merged on ``gauge_id`` (index, stripped of whitespace).

    A column in several tables must hold the same values in each (else a ``ValueError`` naming
    it, the files and a basin). With ``gauge_ids``, the rows of those gauges in that order; a
    table without a row for one of them is a ``KeyError`` naming the table and the gauges.
    """
    folder = Path(root) / "attributes" / subset
    paths = sorted(folder.glob(f"attributes_*_{subset}.csv"))
    if not paths:
        raise FileNotFoundError(f"no attributes_*_{subset}.csv in {folder}; {LAYOUT}")
    tables = {}
    for path in paths:
        tables[path] = read_table(path, "a Caravan attribute table (keyed by gauge_id)")
        check_unique(tables[path].index, f"gauge ({path.name})")
    merged = merge_tables(tables)
    if gauge_ids is None:
        return merged
    gauge_ids = list(gauge_ids)
    require_rows(tables, gauge_ids)
    return merged.loc[gauge_ids]


def read_caravan(path, subset: str = "camels", basins=None, format: str = "netcdf", chunks=None) -> xr.Dataset:
    """Read a Caravan data set (or part of one) into the canonical Dataset.

    Parameters
    ----------
    path : path-like
        Root of the Caravan folder (holding ``timeseries/`` and ``attributes/``).
    subset : str
        Caravan subset, e.g. ``"camels"``, ``"camelsgb"``, ``"hysets"``.
    basins : list of str, optional
        Bare basin ids (``"01022500"``); default all basins of the subset.
    format : {"netcdf", "csv"}
        Which copy of the time series to parse.
    chunks : None, int, "auto" or dict
        ``None`` reads everything now; otherwise the result is dask-backed with
        this many basins per chunk and the whole time axis in one chunk.

    Returns
    -------
    xarray.Dataset
        Dims ``basin`` (bare id) and ``time``; ``prcp``, ``tmean``, ``pet``,
        ``streamflow`` (mm/d, degC) and every other series under its Caravan
        name (in Caravan's documented units: a netCDF variable with a ``units``
        attribute is converted from it, or the file is an error naming it); static
        attributes as ``(basin,)`` variables; coordinates
        ``gauge_id`` (with the subset prefix), ``gauge_name``, ``gauge_lat``,
        ``gauge_lon``, ``area``.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder {root}; {LAYOUT}")
    files = _files(root, subset, format)
    ids = select_basins(list(files), basins)

    # Every file's header is read now (cheap): the variables are those of all files, and a file
    # lacking one is an error rather than a basin (or, from the first file, a variable) silently dropped.
    names, time = {}, None
    for basin in ids:
        dates, names[basin] = _read_header(files[basin])
        time = dates if time is None or dates.equals(time) else time.union(dates)
    variables = list(dict.fromkeys(name for found in names.values() for name in found))
    for basin in ids:
        _check_variables(files[basin], variables, names[basin])
    check_daily(time, f"union of the time axes of {subset}")

    def loader(basin):
        return _read_series(files[basin], variables)

    block = basin_chunk(chunks, len(ids))
    arrays = stack_basins(loader, ids, variables, time, block, desc=f"caravan/{subset}")
    ds = xr.Dataset({name: (("basin", "time"), arr) for name, arr in arrays.items()},
                    coords={"basin": ids, "time": time})
    for name in variables:
        if name not in RENAME.values() and _units(name):
            ds[name].attrs["units"] = _units(name)

    gauge_ids = [f"{subset}_{b}" for b in ids]
    attrs = read_attributes(root, subset, gauge_ids)
    ds = ds.assign_coords(gauge_id=("basin", np.array(gauge_ids, dtype=object)))
    for column in attrs.columns:
        values = attrs[column].to_numpy()
        if values.dtype.kind in "OUT" or str(attrs[column].dtype) in ("str", "string"):
            values = values.astype(object)
        if column in ("gauge_name", "gauge_lat", "gauge_lon", "area"):
            ds = ds.assign_coords({column: ("basin", values)})
        else:
            ds[column] = ("basin", values)
    if "pet" in ds:
        ds["pet"].attrs["known_bias"] = ERA5_PET_BIAS
    return finalize(ds, source=f"Caravan ({subset})", license=LICENSE, citation=CITATION)
