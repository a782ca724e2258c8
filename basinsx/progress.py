"""Progress bars that count basins, on the local schedulers and on dask-distributed alike.

A bar over dask tasks tells a user nothing (a calibration is a few tasks of very different
lengths, a write many tiny ones). :func:`compute` counts basins instead: an xarray object
chunked along ``basin`` is computed as its basin blocks, and each block counts its basins
when it is done (for other collections, the caller says what each one is worth).
"""

from __future__ import annotations

import os
import threading
import time

import xarray as xr

__all__ = ["IncompleteError", "compute", "exit_with_parent"]


class IncompleteError(RuntimeError):
    """Some parts of a computation did not finish; ``pending`` holds their labels.

    Raised by :func:`compute` given ``labels``, with the error that stopped them as ``__cause__``.
    """

    def __init__(self, message: str, pending: list[str]):
        super().__init__(message)
        self.pending = pending


def _basin_blocks(obj) -> tuple[list, list[int], bool]:
    """``obj`` split along its basin chunks, the basins of each part, and whether it was split."""
    if not isinstance(obj, (xr.Dataset, xr.DataArray)) or "basin" not in obj.dims:
        return [obj], [1], False
    try:
        chunks = obj.chunksizes.get("basin") if obj.chunks is not None else None
    except ValueError:  # variables chunked differently along basin: one part
        chunks = None
    if not chunks or len(chunks) == 1:
        return [obj], [obj.sizes["basin"]], False
    starts = [sum(chunks[:i]) for i in range(len(chunks))]
    return [obj.isel(basin=slice(a, a + n)) for a, n in zip(starts, chunks)], list(chunks), True


def compute(*collections, progress: bool = True, desc: str | None = None, weights=None, labels=None) -> tuple:
    """Compute dask collections like :func:`dask.compute`, with a progress bar over basins.

    An xarray object chunked along ``basin`` is computed block by block (one graph, shared
    work computed once) and each block counts its basins when it is done; a collection
    without a basin dim counts ``weights[i]`` (default 1, then the bar counts blocks). The
    same bar (tqdm: text in a terminal, a widget in a notebook) runs on the local
    schedulers and with a ``distributed.Client``, where it counts the futures as they
    finish. On a client every part runs to its end even when another fails, so work that
    writes its own output (one store region per part) keeps all it can.

    Parameters
    ----------
    *collections
        Dask collections, xarray objects or plain values.
    progress : bool
        Show the bar.
    desc : str, optional
        Label of the bar.
    weights : sequence of int, optional
        Basins in each collection (one number per collection), for collections that do
        not carry a basin dim (e.g. one delayed write per block of basins).
    labels : sequence of str, optional
        A name per collection (e.g. ``"basins 8-16"``). Given labels, a failure raises
        :class:`IncompleteError` naming the collections that did not finish.

    Returns
    -------
    tuple
        The computed results, one per collection.
    """
    from tqdm.auto import tqdm

    parts, part_weights, owner, split = [], [], [], []
    for i, obj in enumerate(collections):
        pieces, sizes, was_split = _basin_blocks(obj)
        if weights is not None:  # the caller's count replaces ours
            sizes = [weights[i]] if len(pieces) == 1 else sizes
        parts += pieces
        part_weights += sizes
        owner += [i] * len(pieces)
        split.append(was_split)
    counts_basins = weights is not None or all(
        isinstance(c, (xr.Dataset, xr.DataArray)) and "basin" in c.dims for c in collections)
    done = [False] * len(parts)
    bar = tqdm(total=sum(part_weights), desc=desc, unit="basin" if counts_basins else "block",
               disable=not progress, mininterval=1.0)

    def finished(j):
        if not done[j]:
            done[j] = True
            bar.update(part_weights[j])

    try:
        client = _client()
        results = _on_client(client, parts, finished) if client is not None else _local(parts, finished)
    except Exception as err:
        if labels is None:
            raise
        pending = list(dict.fromkeys(labels[owner[j]] for j in range(len(parts)) if not done[j]))
        raise IncompleteError(f"{len(pending)} of {len(collections)} parts did not finish ({type(err).__name__}: "
                              f"{err}): {', '.join(pending)}", pending) from err
    finally:
        bar.close()
    out = []
    for i, was_split in enumerate(split):
        mine = [r for r, o in zip(results, owner) if o == i]
        out.append(_concat(mine) if was_split else mine[0])
    return tuple(out)


def _client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):  # no client: threads, processes or synchronous
        return None


def _local(parts, finished) -> list:
    """``dask.compute`` with a callback that marks a part finished when its last output key is."""
    import dask
    from dask.callbacks import Callback
    from dask.core import flatten

    owners = {}
    left = []
    for j, part in enumerate(parts):
        keys = set(flatten(part.__dask_keys__())) if dask.is_dask_collection(part) else set()
        left.append(keys)
        for key in keys:
            owners.setdefault(key, []).append(j)
        if not keys:
            finished(j)

    def posttask(key, result, dsk, state, worker_id):
        for j in owners.get(key, ()):
            left[j].discard(key)
            if not left[j]:
                finished(j)

    with Callback(posttask=posttask):
        results = dask.compute(*parts)
    for j in range(len(parts)):  # keys that were data, not tasks, never report
        finished(j)
    return list(results)


def _on_client(client, parts, finished) -> list:
    """Futures of every part, counted as they finish; all run to their end before the first error is raised."""
    from distributed import as_completed

    futures = client.compute(list(parts))
    index = {f.key: j for j, f in enumerate(futures)}
    errors = []
    for future in as_completed(futures):
        if future.status == "finished":
            finished(index[future.key])
        else:
            errors.append(future)
    if errors:
        first = min(errors, key=lambda f: index[f.key])
        raise first.exception().with_traceback(first.traceback())
    return client.gather(futures)


def _concat(blocks):
    """Basin blocks computed separately, put back together as one object."""
    options = {"coords": "minimal", "compat": "override", "join": "override", "combine_attrs": "override"}
    if isinstance(blocks[0], xr.DataArray):
        return xr.concat(blocks, dim="basin", **options)
    return xr.concat(blocks, dim="basin", data_vars="minimal", **options)


def exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """Worker-process initializer: exit when the process ``parent`` is no longer this one's parent.

    A process pool's workers otherwise keep computing after their client is killed
    outright (``kill -9``, a lost session), holding cores for nothing. The parent's pid
    is given, not read here: a client killed while a worker starts up has already
    handed it to another parent. Used by the command line for ``--scheduler processes``
    (dask's ``multiprocessing.initializer``, as ``functools.partial(exit_with_parent, os.getpid())``).
    """

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
