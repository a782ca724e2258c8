"""Progress bars for dask work, on the local schedulers and on dask-distributed alike."""

from __future__ import annotations


def compute(*collections, progress: bool = True, desc: str | None = None) -> tuple:
    """Compute dask collections like :func:`dask.compute`, optionally with a progress bar.

    A local-scheduler callback (``dask.diagnostics.ProgressBar``) sees nothing when a
    ``distributed.Client`` is active, so with a client the futures' progress is shown
    instead (a text bar in a terminal, a widget in a notebook); otherwise a tqdm bar.

    Returns
    -------
    tuple
        The computed results, one per collection.
    """
    import dask

    if not progress:
        return dask.compute(*collections)
    try:
        from distributed import default_client

        client = default_client()
    except ValueError:  # no client: threads, processes or synchronous
        client = None
    if client is None:
        from tqdm.dask import TqdmCallback

        with TqdmCallback(desc=desc, mininterval=1.0):
            return dask.compute(*collections)
    from distributed import progress as show

    futures = client.compute(list(collections))
    show(futures)
    return tuple(client.gather(futures))
