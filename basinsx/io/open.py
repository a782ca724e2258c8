"""Open any data set basinsx knows, by name or path: the top of the data layer.

The data layer imports one way: :mod:`~basinsx.io.conventions` -> :mod:`~basinsx.io.readers`
(and the readers of :mod:`~basinsx.io.registry`) -> :mod:`~basinsx.io.store` ->
:mod:`~basinsx.io.catalog` -> this module.
"""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path

import xarray as xr

from .catalog import CATALOG_ENV, fetch, load_catalog
from .conventions import select_basins
from .registry import READERS, detect
from .sample import SAMPLE, open_sample, sample_id
from .store import STORE_ID, is_zarr, open_zarr, warn_recovered

__all__ = ["open_dataset", "source_id"]


def open_dataset(name_or_path, *, basins=None, chunks="auto", allow_incomplete: bool = False,
                 **kwargs) -> xr.Dataset:
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
    allow_incomplete : bool
        Open a result store whose run was stopped part-way (see :func:`~basinsx.io.store.open_zarr`)
        instead of raising :class:`~basinsx.io.store.IncompleteStoreError`.
    **kwargs
        Passed to the reader (``forcing=`` for CAMELS-US, ``subset=``/``format=`` for Caravan).
    """

    def subset(ds):
        if basins is None:
            return ds
        return ds.sel(basin=select_basins(list(ds.basin.values), basins))

    def no_options(what):
        if kwargs:
            raise ValueError(f"{what} takes no reader options; got {sorted(kwargs)}")

    if isinstance(name_or_path, str) and name_or_path == SAMPLE:
        no_options("the bundled sample")
        return subset(open_sample(chunks))
    path = Path(name_or_path).expanduser()
    if not path.exists():
        warn_recovered(path)  # a write killed between its two renames left the store as .old-*
    if not path.exists():
        held = sorted(path.parent.glob(f".{glob.escape(path.name)}.old-*"))
        if held:
            raise FileNotFoundError(f"{path} is missing: {held[0]} holds the previous store while it is being "
                                    "replaced by a running write; retry when that write ends")
        names = load_catalog()
        if str(name_or_path) in names:
            return subset(open_zarr(fetch(str(name_or_path), **kwargs), chunks))
        raise FileNotFoundError(
            f"{name_or_path!r} is neither 'sample', a catalog name ({', '.join(sorted(names))}; "
            f"more via ${CATALOG_ENV}) nor an existing path"
        )
    if is_zarr(path):
        no_options("a zarr store")
        ds = subset(open_zarr(path, chunks, allow_incomplete=allow_incomplete))
        return ds if chunks is not None else ds.load()
    reader = detect(path)
    if reader is not None:
        return reader.read(path, basins=basins, chunks=chunks, **kwargs)
    markers = ", ".join(f"{r.name} (with {r.marker}/)" for r in READERS.values())
    raise ValueError(f"cannot tell what {path} holds: expected a zarr store or a folder of a known layout: {markers}")


def _files(path: Path) -> list[Path]:
    """The files under ``path`` (``path`` itself if a file), following links to folders (data linked in from a
    shared place, as on a cluster), each folder once (a link back up is not walked again)."""
    if not path.is_dir():
        return [path]
    files, seen = [], set()
    for folder, dirs, names in os.walk(path, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        files += [Path(folder, n) for n in names if Path(folder, n).is_file()]
    return sorted(files)


def _fingerprint(path: Path) -> str:
    """Names, sizes and modification times of every file under ``path`` (through links), hashed (cheap for any
    size)."""
    digest = hashlib.sha256()
    for file in _files(path):
        stat = file.stat()
        name = file.relative_to(path) if file != path else file.name
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def source_id(name_or_path) -> str:
    """The identity of a data set, by which a restartable run recognises its input.

    ``"sample"``: a hash of the bundled file; a store written by :func:`~basinsx.io.store.to_zarr`:
    its ``basinsx_store_id`` (new with every write); a catalog name: that of its
    converted store; any other folder: a hash of its files' names, sizes and
    modification times.
    """
    if isinstance(name_or_path, str) and name_or_path == SAMPLE:
        return sample_id()
    path = Path(name_or_path).expanduser()
    if not path.exists():
        path = fetch(str(name_or_path), progress=False)
    if is_zarr(path):
        store_id = xr.open_zarr(path, chunks=None).attrs.get(STORE_ID)
        if store_id:
            return f"store:{store_id}"
    return f"files:{_fingerprint(path)}"
