"""Zarr stores: written atomically (:func:`to_zarr`), restartably by basin block (:func:`to_zarr_regions`), opened
lazily (:func:`open_zarr`)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..flags import user_stacklevel
from ..progress import compute

STORE_ID = "basinsx_store_id"
STALE_AFTER = 86400.0  # seconds a lock from another machine (whose processes we cannot see) is trusted


class StoreBusyError(FileExistsError):
    """Another process is writing the store: two writers never share one (their results would mix)."""


def _check_chunk(basin_chunk) -> None:
    if isinstance(basin_chunk, bool) or not isinstance(basin_chunk, (int, np.integer)) or basin_chunk < 1:
        raise ValueError(f"basin_chunk must be a positive number of basins, got {basin_chunk!r}")


def check_destination(store, overwrite: bool = False, source=None) -> None:
    """Raise unless a store may be written at ``store``: it is absent, or ``overwrite`` and it is a zarr store.

    An empty folder counts as absent; another folder, a file, or ``source``
    (the path being read) is never replaced (``ValueError``).
    """
    store = Path(store).expanduser()
    if source is not None and store.resolve() == Path(source).expanduser().resolve():
        raise ValueError(f"{store} is the input being read; write to another path")
    if not store.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{store} exists; pass overwrite=True to replace it")
    if not is_zarr(store) and not (store.is_dir() and not any(store.iterdir())):
        what = "a folder with other files" if store.is_dir() else "a file"
        raise ValueError(f"{store} is {what}, not a zarr store: overwrite replaces only zarr stores")


def write_file(path, write) -> None:
    """``write(tmp)`` to a unique temporary file beside ``path``, then rename it into place: an interrupted
    write leaves the old file or none, never half a file (model files, data sets, figures)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _writer(store: Path, kind: str, token: str) -> Path:
    """The sibling ``.NAME.{tmp,old,lock}-TOKEN`` of ``store`` used by the write with ``token``."""
    return store.with_name(f".{store.name}.{kind}-{token}")


def _writer_alive(lock: Path) -> bool:
    """Whether the process named in ``lock`` (``pid@host``) may still be writing."""
    try:
        pid, _, host = lock.read_text().partition("@")
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    if host != socket.gethostname() or not pid.isdigit():  # another machine, or a lock still being written
        return age < STALE_AFTER
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def recover(store) -> list[str]:
    """Clean up after killed writes of ``store``: what stale ``.tmp-*``/``.old-*`` siblings were there.

    A write works in ``.NAME.tmp-TOKEN`` beside the store, next to a lock file
    ``.NAME.lock-TOKEN`` naming its process, and swaps with two renames (store
    to ``.NAME.old-TOKEN``, temporary to store). For a writer that is gone,
    the temporary is removed, and the old store is put back if the store is
    missing (killed between the two renames) or removed if not. Siblings of a
    writer that may still be running are left alone and only reported.

    Returns
    -------
    list of str
        One line per sibling restored, removed or left alone.
    """
    store = Path(store).expanduser()
    if not store.parent.is_dir():
        return []
    groups: dict[str, dict[str, Path]] = {}
    for path in store.parent.glob(f".{glob.escape(store.name)}.*-*"):
        kind, _, token = path.name[len(store.name) + 2:].partition("-")
        if kind in ("tmp", "old", "lock"):
            groups.setdefault(token, {})[kind] = path
    report = []
    for token, paths in sorted(groups.items()):
        lock = _writer(store, "lock", token)
        if _writer_alive(lock):
            report.extend(f"left {p.name}: its writer (see {lock.name}) may still be running"
                          for kind, p in paths.items() if kind != "lock")
            continue
        if "old" in paths and not store.exists():
            os.replace(paths.pop("old"), store)
            report.append(f"restored {store} from {_writer(store, 'old', token).name}, left by a write killed "
                          "between its two renames")
        for kind in ("tmp", "old"):
            if kind in paths:
                shutil.rmtree(paths[kind], ignore_errors=True)
                report.append(f"removed {paths[kind].name}, left by a killed write")
        if "lock" in paths:
            paths["lock"].unlink(missing_ok=True)
    return report


def warn_recovered(store: Path) -> None:
    """:func:`recover` ``store``, each line of its report a warning attributed to the user's code."""
    for line in recover(store):
        warnings.warn(line, stacklevel=user_stacklevel())


@contextlib.contextmanager
def _locked(store: Path):
    """A token whose ``.tmp-``/``.old-`` siblings belong to this process until the block ends.

    Refused (:class:`StoreBusyError`) while another writer of ``store`` is alive: each writer
    leaves its lock first and looks for others after, so of two that start together at least
    one sees the other (both may refuse; neither writes into the other's store).
    """
    token = uuid.uuid4().hex[:8]
    lock = _writer(store, "lock", token)
    lock.write_text(f"{os.getpid()}@{socket.gethostname()}")  # before the siblings, so none is ever unowned
    try:
        for other in sorted(store.parent.glob(f".{glob.escape(store.name)}.lock-*")):
            if other != lock and _writer_alive(other):
                raise StoreBusyError(f"{store} is being written by another process (see {other}); wait for it "
                                     "to end, or remove that lock file if no such process is running")
        yield token
    finally:
        shutil.rmtree(_writer(store, "tmp", token), ignore_errors=True)
        old = _writer(store, "old", token)
        if old.exists():  # failed between the two renames: put the old store back
            if store.exists():
                shutil.rmtree(old)
            else:
                os.replace(old, store)
        lock.unlink(missing_ok=True)


def _replace(store: Path, new: Path, token: str, overwrite: bool) -> None:
    """Put ``new`` at ``store``; with ``overwrite`` an existing store is kept as ``.old-TOKEN`` until ``new`` is
    in place. Without, a store that appeared since the destination was checked is never replaced."""
    if overwrite and store.exists():
        old = _writer(store, "old", token)
        os.replace(store, old)
        os.replace(new, store)
        shutil.rmtree(old)
        return
    try:
        os.rename(new, store)  # replaces at most an empty folder: rename refuses a non-empty one, or a file
    except OSError as err:
        raise FileExistsError(f"{store} appeared while it was being written; it was left as it is") from err


def _fixed_width_strings(ds: xr.Dataset, width: str = "U200") -> xr.Dataset:
    """zarr v2 needs fixed-width unicode: labels (object or numpy StringDType) are converted.

    In-memory labels are small and converted exactly; lazily computed strings
    (e.g. messages) get the fixed ``width``. The old encoding is dropped: a
    ``vlen-utf8`` filter kept from a source store would make an unreadable store.
    """
    def fixed(var: xr.Variable) -> xr.Variable:
        if var.chunks:
            return xr.Variable(var.dims, var.data.astype(width), var.attrs)
        missing = pd.isnull(var.values)  # NaN / None in object labels, e.g. a CAMELS class given as NA
        out = xr.Variable(var.dims, np.where(missing, "", var.values.astype(object)).astype(str), var.attrs)
        if missing.any():  # read back as NaN (not the strings "nan", "None"); only then: "" may be a label
            out.encoding["_FillValue"] = ""
        return out

    strings = {n: fixed(v) for n, v in ds.variables.items() if v.dtype.kind in "OTU"}
    ds = ds.assign_coords({n: v for n, v in strings.items() if n in ds.coords})
    return ds.assign({n: v for n, v in strings.items() if n not in ds.coords})


def _for_zarr(ds: xr.Dataset) -> xr.Dataset:
    ds = _fixed_width_strings(ds)
    for var in ds.variables.values():
        var.encoding.pop("chunks", None)
        var.encoding.pop("preferred_chunks", None)
    return ds


def to_zarr(ds: xr.Dataset, store, *, basin_chunk: int = 16, overwrite: bool = False,
            progress: bool = False) -> Path:
    """Write ``ds`` to a zarr store chunked ``{"basin": basin_chunk, "time": -1}``.

    The store is written under a temporary name beside ``store`` and renamed
    into place only when complete (with consolidated metadata), so a crash or
    an interrupt never leaves a store that opens. Dask-backed input is computed
    chunk by chunk while writing; ``progress=True`` shows a progress bar. Every
    store gets a new id in its attrs (``basinsx_store_id``), by which a
    restartable run recognises its input.

    ``overwrite=True`` replaces only a zarr store (or an empty folder), never
    another folder, a file or the store ``ds`` was read from (``ValueError``).
    The old store is kept as ``.NAME.old-*`` until the new one is in place; if
    the process is killed between the two renames, the next open or write puts
    it back. Temporaries left by killed writes are removed on the next write
    (see :func:`recover`), those of a writer still running are left alone; while
    another process writes the same store, the write is refused
    (:class:`StoreBusyError`). Without ``overwrite`` a store that appears at
    ``store`` during the write is never replaced (``FileExistsError``).
    The store ``ds`` was read from is known by ``ds.encoding["source"]``,
    which :func:`open_dataset` sets and some xarray operations drop.

    Returns the path of the store.
    """
    store = Path(store).expanduser()
    _check_chunk(basin_chunk)
    for name, index in ds.indexes.items():  # a store keeps one value per label: selecting a twin is ambiguous
        if index.has_duplicates:
            twin = index[index.duplicated()][0]
            raise ValueError(f"to_zarr: duplicate {name} labels, e.g. "
                             f"{twin.date() if isinstance(twin, pd.Timestamp) else twin}")
    store.parent.mkdir(parents=True, exist_ok=True)
    warn_recovered(store)
    check_destination(store, overwrite, ds.encoding.get("source"))
    out = _pack_statics(chunk_dynamic(ds, min(basin_chunk, max(ds.sizes.get("basin", 1), 1))))
    out = _for_zarr(out).assign_attrs({STORE_ID: uuid.uuid4().hex})
    with _locked(store) as token:
        tmp = _writer(store, "tmp", token)
        job = out.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2, compute=False)
        compute(job, progress=progress, desc="writing zarr")
        _replace(store, tmp, token, overwrite)
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
    # numpy scalars and arrays in attrs (as netCDF gives them) as JSON numbers and lists
    packed.attrs = {"basinsx_packed": json.dumps({n: [ds[n].dtype.str, ds[n].attrs] for n in names},
                                                 default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))}
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
    """Whether ``path`` is a zarr store (v2 or v3 metadata at its top)."""
    return path.is_dir() and any((path / f).exists() for f in (".zmetadata", ".zgroup", "zarr.json"))


def open_zarr(path, chunks="auto", *, allow_incomplete: bool = False) -> xr.Dataset:
    """Open a basinsx zarr store lazily (dask) with its stored chunks.

    A :func:`to_zarr_regions` store whose run was stopped part-way raises
    :class:`IncompleteStoreError` naming the missing basins; with
    ``allow_incomplete=True`` it opens with a warning and a boolean coordinate
    ``written(basin)`` that is False for the basins never written.
    """
    path = Path(path).expanduser()
    # Opened without dask first, so labels and statics stay lazily indexed and load without a dask compute.
    raw = xr.open_zarr(path, chunks=None)
    missing = _missing_blocks(path, raw)
    ds = _unpack_statics(raw)
    dynamic = {}
    for name, var in ds.data_vars.items():
        if "time" in var.dims and chunks is not None:
            size = dict(zip(var.dims, var.encoding.get("chunks", var.shape))) if chunks == "auto" else chunks
            dynamic[name] = var.chunk(size if isinstance(size, dict) else {"basin": size, "time": -1})
    # labels come back as fixed-width or numpy StringDType arrays; basinsx holds them as Python strings
    strings = {n: v.astype(object) for n, v in ds.variables.items() if v.dtype.kind in "UT"}
    ds = ds.assign({n: v for n, v in strings.items() if n not in ds.coords} | dynamic)
    ds = ds.assign_coords({n: v for n, v in strings.items() if n in ds.coords})
    ds.attrs.pop(STORE_ID, None)
    ds.encoding["source"] = str(path.resolve())
    if not missing:
        return ds
    written = np.ones(ds.sizes["basin"], dtype=bool)
    for a, b in missing:
        written[a:b] = False
    names = ds.basin.values[~written].tolist()
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    blocks = ", ".join(f"{a}-{b}" for a, b in missing)
    if not allow_incomplete:
        run = ds.attrs.get(RUN, {})
        options = [k if v is True else f"{k} {_show(v)}" for k, v in run.items()
                   if k.startswith("--") and v not in (None, False)]
        rerun = f": basinsx {run['command']} INPUT --out {path} {' '.join(options)}" if "command" in run else ""
        raise IncompleteStoreError(
            f"{path} is incomplete: basin blocks {blocks} (basins {shown}) were never written, the run that "
            f"writes it was stopped. Rerun it with the same input and arguments to finish it{rerun}; "
            "or open it with allow_incomplete=True")
    warnings.warn(f"{path} is incomplete: {len(names)} basins never written ({shown}); "
                  "they are marked written=False", stacklevel=user_stacklevel())
    return ds.assign_coords(written=("basin", written))


def chunk_dynamic(ds: xr.Dataset, basin) -> xr.Dataset:
    """Chunk the time-dependent variables along ``basin`` (whole time axis per chunk); statics stay in memory."""
    if isinstance(basin, dict):
        basin = basin.get("basin", "auto")
    dynamic = [name for name, var in ds.data_vars.items() if "time" in var.dims]
    return ds.assign({name: ds[name].chunk({"basin": basin, "time": -1} if "basin" in ds[name].dims else {"time": -1})
                      for name in dynamic})


DONE = ".basinsx-done"
RUN = "basinsx_run"


class IncompleteStoreError(ValueError):
    """A restartable result store whose run was stopped before every basin block was written."""


class RunMismatchError(ValueError):
    """An existing result store was written by another run; ``differences`` says what differs."""

    def __init__(self, store: Path, differences: list[str]):
        self.differences = differences
        super().__init__(f"{store} holds another run: {'; '.join(differences)}; pass overwrite=True to start afresh")


def _show(value) -> str:
    if value is None:
        return "unset"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _missing_blocks(path: Path, ds: xr.Dataset) -> list[tuple[int, int]]:
    """Basin blocks ``(start, stop)`` of a :func:`to_zarr_regions` store without a completion mark."""
    if not (path / DONE).is_dir():
        return []
    n = ds.sizes["basin"]
    chunked = [v.encoding["chunks"][v.dims.index("basin")] for v in ds.data_vars.values()
               if "basin" in v.dims and "chunks" in v.encoding]
    step = chunked[0] if chunked else n
    blocks = [(start, min(start + step, n)) for start in range(0, n, step)]
    return [(a, b) for a, b in blocks if not (path / DONE / f"{a}-{b}").exists()]


def _differences(store: Path, result: xr.Dataset, run: dict, basin_chunk: int) -> list[str]:
    """What differs between the run recorded in ``store`` and this one (empty: the rerun may resume)."""
    old = xr.open_zarr(store, chunks=None)
    recorded = old.attrs.get(RUN, {})
    keys = list(dict.fromkeys([*recorded, *run]))
    differences = [f"{k}: {_show(recorded.get(k))} in {store.name}, {_show(run.get(k))} now"
                   for k in keys if recorded.get(k) != run.get(k)]
    if differences:
        return differences
    if old.basin.values.tolist() != result.basin.values.tolist():
        differences.append(f"basins: {_show(old.basin.values.tolist())} in {store.name}, "
                           f"{_show(result.basin.values.tolist())} now")
    differences += [f"variable {n}: {dict(old[n].sizes) if n in old else 'absent'} in {store.name}, "
                    f"{dict(v.sizes)} now" for n, v in result.variables.items()
                    if n not in old or dict(old[n].sizes) != dict(v.sizes)]
    chunks = [v.encoding["chunks"][v.dims.index("basin")] for v in old.data_vars.values() if "basin" in v.dims]
    if chunks and chunks[0] != min(basin_chunk, old.sizes["basin"]):
        differences.append(f"basin_chunk: {chunks[0]} in {store.name}, {basin_chunk} now")
    return differences


def to_zarr_regions(result: xr.Dataset, store, *, basin_chunk: int = 16, run: dict | None = None,
                    overwrite: bool = False, progress: bool = False) -> Path:
    """Compute a lazy per-basin ``result`` into a zarr store one basin block at a time, restartably.

    The store's metadata is written first (atomically, with ``run`` in its
    attrs); then each block of ``basin_chunk`` basins is computed and written
    into its own region, and a marker file is left for it once it is complete.
    A rerun after a crash or a killed job skips the blocks already marked and
    computes only the rest. Blocks are independent dask tasks, so a distributed
    cluster writes them in parallel. Until every block is marked,
    :func:`open_dataset` refuses the store (see ``allow_incomplete``).

    Parameters
    ----------
    result : xarray.Dataset
        Lazy result with a ``basin`` dimension.
    store : path-like
        Result store to create, or to resume.
    basin_chunk : int
        Basins per block.
    run : dict, optional
        JSON-able description of everything that determines ``result`` (arguments,
        the input's identity). An existing store is resumed only when its recorded
        ``run``, basins, variables and blocks equal this one's; otherwise
        :class:`RunMismatchError` names what differs. Default: the dask token of
        ``result``, so that only the same lazy result (the same inputs and operations,
        as a rerun of the same script builds it) resumes the store.
    overwrite : bool
        Start afresh: replace an existing zarr store (never another folder or file).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The store.

    Raises
    ------
    StoreBusyError
        Another process is writing (or starting, resuming or replacing) the same store: the
        lock of a run is held from its first check until its last block, so two runs never
        write into one store, even with ``overwrite``.
    """
    from dask.base import tokenize

    store = Path(store).expanduser()
    _check_chunk(basin_chunk)
    if "basin" not in result.dims:
        raise ValueError("to_zarr_regions needs a result with a 'basin' dimension")
    result = _for_zarr(result)
    # labels without a basin dim (param_units, ...) are written with the metadata, so they stay in memory
    shared = {n: v.compute() for n, v in result.variables.items() if "basin" not in v.dims and n not in result.indexes}
    result = result.chunk({"basin": basin_chunk})
    result = result.assign_coords({n: v for n, v in shared.items() if n in result.coords})
    result = result.assign({n: v for n, v in shared.items() if n not in result.coords})
    if run is None:  # no description: the lazy result's own deterministic dask token tells its reruns apart
        run = {"result": tokenize(result)}
    run = json.loads(json.dumps(run))  # as the store's attrs give it back: lists, not tuples
    store.parent.mkdir(parents=True, exist_ok=True)
    warn_recovered(store)
    with _locked(store) as token:  # held until the last block: no other run writes or replaces the store meanwhile
        if store.exists() and not overwrite:
            if not (is_zarr(store) and (store / DONE).is_dir()):
                raise FileExistsError(f"{store} exists and is not a restartable result store; "
                                      "pass overwrite=True to replace it")
            differences = _differences(store, result, run, basin_chunk)
            if differences:
                raise RunMismatchError(store, differences)
        else:
            check_destination(store, overwrite)
            tmp = _writer(store, "tmp", token)
            start = result.assign_attrs({STORE_ID: uuid.uuid4().hex, RUN: run})
            start.to_zarr(tmp, mode="w", compute=False, consolidated=True, zarr_format=2)
            (tmp / DONE).mkdir()
            _replace(store, tmp, token, overwrite)
        _write_blocks(result, store, progress)
    return store


def _mark_done(_, mark: Path) -> None:
    mark.touch()


def _write_blocks(result: xr.Dataset, store: Path, progress: bool) -> None:
    """Compute and write the basin blocks of ``result`` not yet marked done in ``store``, marking each when written."""
    import dask

    tasks, sizes, names, start, ids = [], [], [], 0, result["basin"].values
    for size in result.chunks["basin"]:
        region = slice(start, start + size)
        mark = store / DONE / f"{region.start}-{region.stop}"
        if not mark.exists():
            # xarray's own region writer: dask.delayed(f)(block) lost tasks of some graphs ("Missing dependency")
            block = result.isel(basin=region)
            block = block.drop_vars([n for n in block.variables if "basin" not in block[n].dims])
            job = block.to_zarr(store, region={"basin": region}, mode="r+", zarr_format=2, compute=False)
            tasks.append(dask.delayed(_mark_done)(job, mark))
            sizes.append(size)
            names.append(f"{mark.name} ({ids[region.start]}..{ids[region.stop - 1]})")
        start += size
    # the bar counts basins; a block that fails is named (IncompleteError), the finished ones stay written
    compute(*tasks, progress=progress, desc="writing basin blocks", weights=sizes, labels=names)
