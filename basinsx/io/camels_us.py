"""Reader for the original CAMELS-US v1.2 text layout (Newman et al. 2015; Addor et al. 2017)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from ..units import UnitsError, to_canonical
from .conventions import check_daily, check_unique, finalize, select_basins
from .readers import FileFormatError, basin_chunk, merge_tables, read_table, reading, require_rows, stack_basins

PRODUCTS = ("daymet", "maurer", "maurer_extended", "nldas")
FORCING_VARIABLES = ("prcp", "tmean", "tmin", "tmax", "srad", "vp", "dayl", "swe")
FILE_VARIABLES = tuple(v for v in FORCING_VARIABLES if v != "tmean")  # tmean is derived
MISSING = -999  # missing-value code of the original text files
CFS_TO_M3S = 0.3048**3
#: A forcing file's header area (km2) must lie within this factor of ``area_gages2`` or ``area_geospa_fabric``.
#: The header areas of the four sample basins differ from ``area_gages2`` by up to 6 % (03015500), and over all 671
#: basins the two attribute areas differ from each other by a factor 0.52 to 36 (10166430): either may be the closer
#: one. A factor 2 accepts those and catches an area written in km2 (1e6) or converted from or to square miles (2.59).
AREA_TOLERANCE = 2.0

LAYOUT = (
    "expected the CAMELS-US v1.2 layout: <root>/basin_mean_forcing/<product>/[<HUC02>/]<id>_lump_*_forcing_leap.txt, "
    "<root>/usgs_streamflow/[<HUC02>/]<id>_streamflow_qc.txt and "
    "<root>/camels_attributes_v2.0/camels_*.txt"
)
LICENSE = "CAMELS-US: free to use with citation (NCAR/UCAR terms of use)"
CITATION = (
    "Newman, A. J. et al. (2015): Development of a large-sample watershed-scale hydrometeorological data set "
    "for the contiguous USA. HESS 19, 209-223, doi:10.5194/hess-19-209-2015; Addor, N. et al. (2017): The "
    "CAMELS data set: catchment attributes and meteorology for large-sample studies. HESS 21, 5293-5313, "
    "doi:10.5194/hess-21-5293-2017"
)

#: Units of the CAMELS attributes v2.0 (Addor et al. 2017, Table 1-4).
ATTRIBUTE_UNITS = {
    "p_mean": "mm d-1", "pet_mean": "mm d-1", "aridity": "1", "p_seasonality": "1", "frac_snow": "1",
    "high_prec_freq": "d yr-1", "high_prec_dur": "d", "low_prec_freq": "d yr-1", "low_prec_dur": "d",
    "elev_mean": "m", "slope_mean": "m km-1", "area_gages2": "km2", "area_geospa_fabric": "km2",
    "frac_forest": "1", "lai_max": "1", "lai_diff": "1", "gvf_max": "1", "gvf_diff": "1",
    "soil_depth_pelletier": "m", "soil_depth_statsgo": "m", "soil_porosity": "1", "soil_conductivity": "cm h-1",
    "max_water_content": "m", "sand_frac": "%", "silt_frac": "%", "clay_frac": "%", "water_frac": "%",
    "organic_frac": "%", "other_frac": "%", "carbonate_rocks_frac": "1", "geol_permeability": "log10(m2)",
    "q_mean": "mm d-1", "runoff_ratio": "1", "baseflow_index": "1", "q5": "mm d-1", "q95": "mm d-1",
    "high_q_freq": "d yr-1", "high_q_dur": "d", "low_q_freq": "d yr-1", "low_q_dur": "d", "zero_q_freq": "%",
}


def _find(folder: Path, pattern: str) -> dict[str, Path]:
    """Files matching ``pattern`` directly in ``folder`` or in its HUC02 subfolders, keyed by basin id."""
    found: dict[str, Path] = {}
    for p in sorted(folder.glob(pattern)) + sorted(folder.glob(f"*/{pattern}")):
        basin = p.name.split("_")[0]
        if basin in found:
            raise ValueError(f"duplicate basin id {basin}: {found[basin]} and {p}")
        found[basin] = p
    return found


def _forcing_columns(header: str) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Column names, and ``{name: (column as written, units)}`` of the columns that give units: ``prcp(mm/day)``."""
    names, units = [], {}
    for raw in header.split():
        match = re.fullmatch(r"(.*?)\((.*)\)", raw)
        name = (match.group(1) if match else raw).lower()
        name = {"mnth": "month"}.get(name, name)
        names.append(name)
        if match and match.group(2).strip():
            units[name] = (raw, match.group(2).strip())
    return names, units


def _check_units(path: Path, units: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The units of the forcing variables as the header gives them, checked convertible to the canonical ones."""
    checked = {}
    for name in FILE_VARIABLES:
        if name not in units:
            continue  # no units given: taken to be the canonical ones
        raw, given = units[name]
        try:
            to_canonical(xr.DataArray(np.zeros(1, np.float32), attrs={"units": given}), name)
        except UnitsError as err:
            raise FileFormatError(path, f"column {raw!r} of the column header (line 4): {err}") from None
        checked[name] = given
    return checked


def _read_header(f, path: Path) -> tuple[dict, list[str]]:
    """The three header numbers and the column names of an open forcing file.

    ``header["units"]`` holds the units the column header gives the forcing variables (checked
    convertible to the canonical ones; a column without units is taken to be in them).
    """
    header = {}
    for key, what in (("lat", "latitude"), ("elev", "elevation (m)"), ("area", "basin area (m2)")):
        line = f.readline()
        try:
            header[key] = float(line)
        except ValueError:
            raise FileFormatError(path, f"header line {len(header) + 1} should hold the {what}, found {line.strip()!r} "
                                        "(lines 1-3: latitude, elevation in m, area in m2)") from None
    if not header["area"] > 0:
        raise FileFormatError(path, f"basin area in the header is {header['area']:.0f} m2; streamflow is divided by "
                                    "it, so it must be positive")
    columns, units = _forcing_columns(f.readline())
    missing = [c for c in ("year", "month", "day", *FILE_VARIABLES) if c not in columns]
    if missing:
        raise FileFormatError(path, f"no column {', '.join(missing)} in the column header (line 4)")
    header["units"] = _check_units(path, units)
    return header, columns


def _check_rows(frame: pd.DataFrame, path: Path, first_line: int) -> None:
    short = frame.isna().any(axis=1).to_numpy()
    if short.any():
        line = first_line + int(np.argmax(short))
        raise FileFormatError(path, f"line {line} has fewer than the {frame.shape[1]} fields of the other rows")


def read_forcing_file(path: Path) -> tuple[dict, pd.DatetimeIndex, dict[str, np.ndarray]]:
    """Header (latitude, elevation m, area m2, units), dates and variables of one forcing file.

    -999 becomes NaN; values are converted from the units in the column header (``prcp(in/day)``,
    ``tmax(K)``) to the canonical ones, and units that cannot be are an error naming file and column.
    """
    with reading(path, "a CAMELS-US forcing file"), open(path) as f:
        header, columns = _read_header(f, path)
        frame = pd.read_csv(f, sep=r"\s+", header=None, names=columns)
        _check_rows(frame, path, 5)
        dates = pd.DatetimeIndex(pd.to_datetime(frame[["year", "month", "day"]]))
        values = {name: frame[name].to_numpy(np.float32) for name in FILE_VARIABLES}
    check_daily(dates, str(path))
    for v in values.values():
        v[v == MISSING] = np.nan
    for name, units in header["units"].items():  # after the -999s are NaN: -999 K is not a temperature
        values[name] = to_canonical(xr.DataArray(values[name], attrs={"units": units}), name)[0].values
    values["tmean"] = (values["tmax"] + values["tmin"]) / 2
    return header, dates, values


def read_streamflow_file(path: Path, area_m2: float, basin: str | None = None) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """USGS discharge (cfs) converted to mm/d over ``area_m2``; negative values (-999) and flag ``M`` become NaN.

    Every row's ``gauge_id`` must be ``basin`` (default: the id the file name starts with).
    """
    path = Path(path)
    basin = path.name.split("_")[0] if basin is None else basin
    if not area_m2 > 0:
        raise ValueError(f"{path}: basin area must be positive to convert cfs to mm/d, got {area_m2} m2")
    with reading(path, "a CAMELS-US streamflow file"):
        frame = pd.read_csv(path, sep=r"\s+", header=None, names=["gauge_id", "year", "month", "day", "q", "flag"],
                            dtype={"gauge_id": str, "flag": str})
        _check_rows(frame, path, 1)
        _check_gauge(path, frame["gauge_id"].to_numpy(), basin)
        dates = pd.DatetimeIndex(pd.to_datetime(frame[["year", "month", "day"]]))
        q = frame["q"].to_numpy(np.float64)
    check_daily(dates, str(path))
    bad = (q < 0) | frame["flag"].str.startswith("M").to_numpy()
    q = np.where(bad, np.nan, q) * CFS_TO_M3S * 86400.0 / area_m2 * 1000.0
    return dates, q.astype(np.float32)


def _check_gauge(path: Path, found: np.ndarray, basin: str, first_line: int = 1) -> None:
    wrong = found != basin
    if wrong.any():
        i = int(np.argmax(wrong))
        raise FileFormatError(path, f"line {first_line + i} holds gauge {found[i]}, but the file name says "
                                    f"{basin}: the file holds another gauge's record")


def _read_table(path: Path) -> pd.DataFrame:
    frame = read_table(path, "a CAMELS attribute table (';'-separated, keyed by gauge_id)", sep=";",
                       dtype={"gauge_id": str, "huc_02": str}, na_values=["NA"], keep_default_na=False)
    check_unique(frame.index, f"gauge ({path.name})")
    for c in frame.columns:
        if frame[c].dtype == object or str(frame[c].dtype) in ("str", "string"):
            frame[c] = frame[c].str.strip()
    return frame


def read_attributes(folder, basins=None) -> pd.DataFrame:
    """All ``camels_*.txt`` attribute tables merged on ``gauge_id`` (ids and HUC codes stay strings).

    Ids are stripped of whitespace. A column in several tables must hold the same values in each
    (else a ``ValueError`` naming it, the files and a basin). With ``basins``, the rows of those
    basins in that order; a table without a row for one of them is a ``KeyError`` naming the table
    and the basins.
    """
    folder = Path(folder)
    paths = sorted(folder.glob("camels_*.txt"))
    if not paths:
        raise FileNotFoundError(f"no camels_*.txt in {folder}; {LAYOUT}")
    tables = {path: _read_table(path) for path in paths}
    merged = merge_tables(tables)
    if basins is None:
        return merged
    basins = list(basins)
    require_rows(tables, basins, " (read_camels_us(..., attributes=False) reads without them)")
    return merged.loc[basins]


def read_camels_us(path, forcing="daymet", basins=None, chunks=None, attributes: bool = True) -> xr.Dataset:
    """Read the original CAMELS-US v1.2 text files into the canonical Dataset.

    Parameters
    ----------
    path : path-like
        Root folder holding ``basin_mean_forcing/``, ``usgs_streamflow/`` and
        (optionally) ``camels_attributes_v2.0/``. Files may lie flat or in
        ``<HUC02>/`` subfolders.
    forcing : str or list of str
        ``"daymet"``, ``"maurer"``, ``"maurer_extended"`` or ``"nldas"``. A list
        gives the forcing variables a ``source`` dimension.
    basins : list of str, optional
        8-digit USGS ids; default: every basin with forcing files.
    chunks : None, int, "auto" or dict
        ``None`` parses now; otherwise dask-backed, this many basins per chunk.
    attributes : bool
        Merge the static attributes of ``camels_attributes_v2.0``.

    Notes
    -----
    Streamflow is converted from cfs to mm/d with the basin area written in the
    header of the (first) forcing file: it is the area the forcing was averaged
    over, so precipitation and flow depths are consistent, and it is the
    convention of the CAMELS-US benchmarks (Kratzert et al. 2019, NeuralHydrology).
    The GAGES-II area is kept as the static attribute ``area_gages2``. ``tmean``
    is (tmax + tmin) / 2. In the maurer and nldas files of the originals tmax
    equals tmin; that quirk is passed on, not repaired. The missing-value code
    -999 (forcing and streamflow) and streamflow flagged ``M`` become NaN. A file
    that cannot be parsed (header without the area line, a zero or negative
    area, a short row, duplicate dates, a missing column) raises
    :class:`~basinsx.io.readers.FileFormatError` (a ``ValueError``) naming it.
    """
    root = Path(path).expanduser()
    products = [forcing] if isinstance(forcing, str) else list(forcing)
    ids, forcing_files, flow_files = _locate(root, products, basins)

    # Headers and dates are read up front (cheap); values are read by the loader, lazily with chunks.
    headers, time = _headers(ids, products, forcing_files)
    for b in ids:  # the first row; the loader checks every row
        _check_flow_gauge(flow_files[b], b)
    folder = root / "camels_attributes_v2.0"
    table = read_attributes(folder, ids) if attributes and folder.is_dir() else None
    _check_areas(headers, forcing_files, _reference_areas(folder, table))

    variables = [f"{v}@{p}" for p in products for v in FORCING_VARIABLES] + ["streamflow"]

    def loader(basin):
        series = {}
        for p in products:
            _, d, v = read_forcing_file(forcing_files[p][basin])
            series.update({f"{k}@{p}": pd.Series(a, index=d) for k, a in v.items()})
        qd, q = read_streamflow_file(flow_files[basin], headers[basin, products[0]]["area"], basin)
        frame = pd.DataFrame(series)
        frame["streamflow"] = pd.Series(q, index=qd).reindex(frame.index)
        return pd.DatetimeIndex(frame.index), {k: frame[k].to_numpy(np.float32) for k in frame.columns}

    arrays = stack_basins(loader, ids, variables, time, basin_chunk(chunks, len(ids)), desc="camels-us")
    first = {b: headers[b, products[0]] for b in ids}
    ds = _dataset(arrays, ids, time, first, products, lazy=chunks is not None)
    if attributes:
        ds = _merge_attributes(ds, folder, table)
    return finalize(ds, source=f"CAMELS-US v1.2 ({', '.join(products)})", license=LICENSE, citation=CITATION)


def _headers(ids, products, forcing_files) -> tuple[dict, pd.DatetimeIndex]:
    """The header of each basin's forcing file of each product, keyed ``(basin, product)``, and the union of
    the forcing files' dates."""
    headers, time = {}, None
    for b in ids:
        for p in products:
            headers[b, p], dates = _header_and_dates(forcing_files[p][b])
            time = dates if time is None else time.union(dates)
    check_daily(time, "union of the forcing time axes")
    return headers, time


def _check_flow_gauge(path: Path, basin: str) -> None:
    """The gauge id of the first row of a streamflow file is the one its name says."""
    with reading(path, "a CAMELS-US streamflow file"), open(path) as f:
        fields = f.readline().split()
    if fields:
        _check_gauge(path, np.array(fields[:1]), basin)


def _reference_areas(folder: Path, table: pd.DataFrame | None) -> pd.DataFrame | None:
    """The basin areas of the attributes (km2), from the merged ``table`` or, without one, ``camels_topo.txt``."""
    if table is None:
        topo = folder / "camels_topo.txt"
        if not topo.is_file():
            return None
        table = _read_table(topo)
    columns = [c for c in ("area_gages2", "area_geospa_fabric") if c in table.columns]
    return table[columns] if columns else None


def _check_areas(headers: dict, forcing_files: dict, reference: pd.DataFrame | None) -> None:
    """Each header area within :data:`AREA_TOLERANCE` of one of the attribute areas of its basin.

    Streamflow is divided by the header area: one in km2 instead of m2 passes the ``> 0`` check and
    makes the flow 1e6 times too large. Basins without attribute areas are not checked.
    """
    if reference is None:
        return
    for (basin, product), header in headers.items():
        if basin not in reference.index:
            continue
        known = {c: float(v) for c, v in reference.loc[basin].items() if np.isfinite(v) and v > 0}
        km2 = header["area"] / 1e6
        if known and not any(1 / AREA_TOLERANCE <= km2 / v <= AREA_TOLERANCE for v in known.values()):
            shown = ", ".join(f"{c} {v:g} km2" for c, v in known.items())
            raise FileFormatError(forcing_files[product][basin],
                                  f"basin area in the header ({km2:.6g} km2) is not within a factor "
                                  f"{AREA_TOLERANCE:g} of the basin's attributes ({shown}); line 3 must hold the "
                                  "area in m2 (streamflow is divided by it)")


def _dataset(arrays, ids, time, headers, products, lazy: bool) -> xr.Dataset:
    """The forcing and streamflow ``arrays`` of :func:`read_camels_us` as a Dataset with header coordinates.

    With several forcing ``products`` the forcing variables get a ``source`` dimension (stacked
    with dask when ``lazy``).
    """
    data = {}
    for v in FORCING_VARIABLES:
        parts = [arrays[f"{v}@{p}"] for p in products]
        if len(products) == 1:
            data[v] = (("basin", "time"), parts[0])
        else:
            stack = da.stack if lazy else np.stack
            data[v] = (("source", "basin", "time"), stack(parts))
    data["streamflow"] = (("basin", "time"), arrays["streamflow"])
    coords = {"basin": ids, "time": time,
              "area": ("basin", np.array([headers[b]["area"] / 1e6 for b in ids])),
              "gauge_lat": ("basin", np.array([headers[b]["lat"] for b in ids])),
              "elevation": ("basin", np.array([headers[b]["elev"] for b in ids]),
                            {"units": "m", "long_name": "basin mean elevation (forcing file header)"})}
    if len(products) > 1:
        coords["source"] = products
    ds = xr.Dataset(data, coords=coords)
    ds["tmean"].attrs["comment"] = "(tmax + tmin) / 2"
    ds["area"].attrs["comment"] = "area in the forcing file header, used to convert streamflow from cfs to mm/d"
    return ds


def _locate(root: Path, products: list[str], basins) -> tuple[list[str], dict[str, dict[str, Path]],
                                                            dict[str, Path]]:
    """The selected basin ids, their forcing files per product and their streamflow files; errors name the layout."""
    for p in products:
        if p not in PRODUCTS:
            raise ValueError(f"unknown forcing product {p!r}; choose from {PRODUCTS}")
    check_unique(products, "forcing product")
    forcing_files = {}
    for p in products:
        folder = root / "basin_mean_forcing" / p
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder {folder}; {LAYOUT}")
        forcing_files[p] = _find(folder, "*_lump_*_forcing_leap.txt")
    flow_folder = root / "usgs_streamflow"
    if not flow_folder.is_dir():
        raise FileNotFoundError(f"no folder {flow_folder}; {LAYOUT}")
    flow_files = _find(flow_folder, "*_streamflow_qc.txt")

    available = sorted(set.intersection(*(set(f) for f in forcing_files.values())))
    if not available:
        raise FileNotFoundError(f"no basin has forcing files for all of {products}; {LAYOUT}")
    ids = select_basins(available, basins)
    missing_flow = [b for b in ids if b not in flow_files]
    if missing_flow:
        raise FileNotFoundError(f"no usgs_streamflow/<id>_streamflow_qc.txt for basins {missing_flow}; {LAYOUT}")
    return ids, forcing_files, flow_files


def _header_and_dates(path: Path) -> tuple[dict, pd.DatetimeIndex]:
    with reading(path, "a CAMELS-US forcing file"), open(path) as f:
        header, _ = _read_header(f, path)
        frame = pd.read_csv(f, sep=r"\s+", header=None, usecols=[0, 1, 2], names=["year", "month", "day"])
        dates = pd.DatetimeIndex(pd.to_datetime(frame))
    check_daily(dates, str(path))
    return header, dates


def _merge_attributes(ds: xr.Dataset, folder: Path, table: pd.DataFrame | None) -> xr.Dataset:
    """The attribute ``table`` (one row per basin of ``ds``, in order) as ``(basin,)`` variables and coordinates.

    An attribute that is missing (NA) never replaces a value ``ds`` has from the forcing header
    (``gauge_lat``).
    """
    if table is None:
        warnings.warn(f"no attribute folder {folder}: static attributes and gauge names left out", stacklevel=3)
        return ds.assign_coords(gauge_name=("basin", np.full(ds.sizes["basin"], "", dtype=object)),
                                gauge_lon=("basin", np.full(ds.sizes["basin"], np.nan)))
    for column in table.columns:
        values = table[column].to_numpy()
        if values.dtype.kind in "OUT" or str(table[column].dtype) in ("str", "string"):
            values = values.astype(object)
        if column in ds.coords and values.dtype.kind == "f":
            values = np.where(np.isnan(values), ds[column].values, values)
        if column in ("gauge_name", "gauge_lat", "gauge_lon"):
            ds = ds.assign_coords({column: ("basin", values)})
        else:
            ds[column] = ("basin", values, {"units": ATTRIBUTE_UNITS[column]} if column in ATTRIBUTE_UNITS else {})
    return ds
