"""Zarr stores written atomically, and :func:`open_dataset` for every source basinsx knows."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from importlib.resources import files
from pathlib import Path

import numpy as np
import xarray as xr

from .progress import compute

SAMPLE = "sample"


def to_zarr(ds: xr.Dataset, store, *, basin_chunk: int = 16, overwrite: bool = False,
            progress: bool = False) -> Path:
    """Write ``ds`` to a zarr store chunked ``{"basin": basin_chunk, "time": -1}``.

    The store is written under a temporary name beside ``store`` and renamed
    into place only when complete (with consolidated metadata), so a crash or
    an interrupt never leaves a store that opens. Dask-backed input is computed
    chunk by chunk while writing; ``progress=True`` shows a progress bar.

    Returns the path of the store.
    """
    store = Path(store).expanduser()
    if store.exists() and not overwrite:
        raise FileExistsError(f"{store} exists; pass overwrite=True to replace it")
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_name(f".{store.name}.tmp-{uuid.uuid4().hex[:8]}")
    out = _pack_statics(chunk_dynamic(ds, min(basin_chunk, max(ds.sizes.get("basin", 1), 1))))
    for var in out.variables.values():
        var.encoding.pop("chunks", None)
        var.encoding.pop("preferred_chunks", None)
    # zarr needs fixed-width strings: labels held as Python objects become unicode (they are small).
    strings = {name: out[name].astype(str) for name, var in out.variables.items() if var.dtype == object}
    out = out.assign_coords({n: v for n, v in strings.items() if n in out.coords})
    out = out.assign({n: v for n, v in strings.items() if n not in out.coords})
    try:
        job = out.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2, compute=False)
        compute(job, progress=progress, desc="writing zarr")
        if store.exists():
            old = store.with_name(f".{store.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(store, old)
            os.replace(tmp, store)
            shutil.rmtree(old)
        else:
            os.replace(tmp, store)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return store


STATICS = "static_attributes"


def _pack_statics(ds: xr.Dataset) -> xr.Dataset:
    """Numeric per-basin attributes go into one ``(basin, static_name)`` array in the store.

    A data set carries hundreds of them (Caravan: ~200), and one zarr array each
    would cost one file read each; packed, they cost one. :func:`open_zarr` unpacks.
    """
    names = [n for n, v in ds.data_vars.items() if v.dims == ("basin",) and v.dtype.kind in "fiub"]
    if not names:
        return ds
    packed = xr.concat([ds[n].astype(np.float64) for n in names], dim=xr.Variable("static_name", names),
                       coords="minimal", compat="override")
    packed.attrs = {"basinsx_packed": json.dumps({n: [ds[n].dtype.str, ds[n].attrs] for n in names})}
    return ds.drop_vars(names).assign({STATICS: packed.transpose("basin", "static_name")})


def _unpack_statics(ds: xr.Dataset) -> xr.Dataset:
    if STATICS not in ds:
        return ds
    packed = ds[STATICS].load()
    meta = json.loads(packed.attrs["basinsx_packed"])
    rows = dict(zip(packed["static_name"].values.tolist(), packed.transpose("static_name", "basin").values))
    statics = {name: xr.Variable("basin", rows[name].astype(dtype), attrs) for name, (dtype, attrs) in meta.items()}
    return ds.drop_vars([STATICS, "static_name"]).assign(statics)


def is_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / f).exists() for f in (".zmetadata", ".zgroup", "zarr.json"))


def open_zarr(path, chunks="auto") -> xr.Dataset:
    """Open a basinsx zarr store lazily (dask) with its stored chunks."""
    # Opened without dask first, so labels and statics stay lazily indexed and load without a dask compute.
    ds = _unpack_statics(xr.open_zarr(path, chunks=None))
    dynamic = {}
    for name, var in ds.data_vars.items():
        if "time" in var.dims and chunks is not None:
            size = dict(zip(var.dims, var.encoding.get("chunks", var.shape))) if chunks == "auto" else chunks
            dynamic[name] = var.chunk(size if isinstance(size, dict) else {"basin": size, "time": -1})
    strings = {n: v.astype(object) for n, v in ds.variables.items() if v.dtype.kind == "U"}
    ds = ds.assign({n: v for n, v in strings.items() if n not in ds.coords} | dynamic)
    return ds.assign_coords({n: v for n, v in strings.items() if n in ds.coords})


def open_sample(chunks="auto") -> xr.Dataset:
    """The bundled sample: real CAMELS-US basins in Caravan form, with the 27 CAMELS attributes."""
    path = files("basinsx") / "data" / "sample.nc"
    with xr.open_dataset(path, engine="h5netcdf") as f:
        ds = f.load()
    for name in list(ds.variables):
        if ds[name].dtype.kind in "SU":
            ds[name] = ds[name].astype(object)
    return ds if chunks is None else chunk_dynamic(ds, 1 if chunks == "auto" else chunks)


def chunk_dynamic(ds: xr.Dataset, basin) -> xr.Dataset:
    """Chunk the time-dependent variables along ``basin`` (whole time axis per chunk); statics stay in memory."""
    if isinstance(basin, dict):
        basin = basin.get("basin", "auto")
    dynamic = [name for name, var in ds.data_vars.items() if "time" in var.dims]
    return ds.assign({name: ds[name].chunk({"basin": basin, "time": -1}) for name in dynamic})


def open_dataset(name_or_path, *, basins=None, chunks="auto", **kwargs) -> xr.Dataset:
    """Open a data set by name or path, lazily.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"sample"`` (bundled, offline), a catalog name (see :func:`basinsx.catalog`;
        fetched and converted to zarr once), a zarr store, a Caravan folder or a
        CAMELS-US folder.
    basins : list of str, optional
        Subset of basin ids.
    chunks : "auto", int, dict or None
        Dask chunks (basins per chunk); ``None`` loads into memory.
    **kwargs
        Passed to the reader (``forcing=`` for CAMELS-US, ``subset=``/``format=`` for Caravan).
    """
    from .camels_us import read_camels_us
    from .caravan import read_caravan
    from .catalog import CATALOG_ENV, fetch, load_catalog

    def subset(ds):
        if basins is None:
            return ds
        from .variables import select_basins

        return ds.sel(basin=select_basins(list(ds.basin.values), basins))

    if isinstance(name_or_path, str) and name_or_path == SAMPLE:
        return subset(open_sample(chunks))
    path = Path(name_or_path).expanduser()
    if not path.exists():
        names = load_catalog()
        if str(name_or_path) in names:
            return subset(open_zarr(fetch(str(name_or_path), **kwargs), chunks))
        raise FileNotFoundError(
            f"{name_or_path!r} is neither 'sample', a catalog name ({', '.join(sorted(names))}; "
            f"more via ${CATALOG_ENV}) nor an existing path"
        )
    if is_zarr(path):
        ds = subset(open_zarr(path, chunks))
        return ds if chunks is not None else ds.load()
    if (path / "timeseries").is_dir():
        return read_caravan(path, basins=basins, chunks=chunks, **kwargs)
    if (path / "basin_mean_forcing").is_dir():
        return read_camels_us(path, basins=basins, chunks=chunks, **kwargs)
    raise ValueError(
        f"cannot tell what {path} holds: expected a zarr store, a Caravan folder (with timeseries/) "
        "or a CAMELS-US folder (with basin_mean_forcing/)"
    )


DONE = ".basinsx-done"


def to_zarr_regions(result: xr.Dataset, store, *, basin_chunk: int = 16, progress: bool = False) -> Path:
    """Compute a lazy per-basin ``result`` into a zarr store one basin block at a time, restartably.

    The store's metadata is written first; then each block of ``basin_chunk``
    basins is computed and written into its own region, and a marker file is
    left for it once it is complete. A rerun after a crash or a killed job skips
    the blocks already marked and computes only the rest. Blocks are independent
    dask tasks, so a distributed cluster writes them in parallel.

    Returns the path of the store.
    """
    import dask

    store = Path(store).expanduser()
    if "basin" not in result.dims:
        raise ValueError("to_zarr_regions needs a result with a 'basin' dimension")
    # zarr needs fixed-width strings: labels are loaded (small), computed strings get a fixed width.
    labels = {n: np.asarray(c.values, dtype=str) for n, c in result.coords.items() if c.dtype == object}
    result = result.assign_coords({n: (result[n].dims, v) for n, v in labels.items()})
    result = result.assign({n: v.astype("U200") for n, v in result.data_vars.items() if v.dtype == object})
    result = result.chunk({"basin": basin_chunk})
    for var in result.variables.values():
        var.encoding.pop("chunks", None)
        var.encoding.pop("preferred_chunks", None)
    marks = store / DONE
    if not is_zarr(store):
        result.to_zarr(store, mode="w", compute=False, consolidated=True, zarr_format=2)
    marks.mkdir(exist_ok=True)

    def write(block: xr.Dataset, region: slice, mark: Path) -> None:
        block = block.drop_vars([n for n in block.variables if "basin" not in block[n].dims])
        block.to_zarr(store, region={"basin": region}, mode="r+", zarr_format=2)
        mark.touch()

    tasks, start = [], 0
    for size in result.chunks["basin"]:
        region = slice(start, start + size)
        mark = marks / f"{region.start}-{region.stop}"
        if not mark.exists():
            tasks.append(dask.delayed(write)(result.isel(basin=region), region, mark))
        start += size
    compute(*tasks, progress=progress, desc="writing basin blocks")
    return store
