"""Parameter bounds, Latin-hypercube designs and parallel training-set simulation with dask."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import xarray as xr

__all__ = ["as_bounds", "latin_hypercube", "training_set"]


def as_bounds(bounds) -> xr.DataArray:
    """Validate bounds and return them as a DataArray ``(param, bound)`` with ``bound = [lower, upper]``.

    ``bounds`` is a mapping ``{name: (lower, upper)}``, a ``(n, 2)`` array (parameters named
    ``p0, p1, ...``) or a DataArray with dims ``(param, bound)``.
    """
    if isinstance(bounds, xr.DataArray):
        if set(bounds.dims) != {"param", "bound"} or bounds.sizes["bound"] != 2:
            raise ValueError(f"bounds DataArray needs dims (param, bound=2), got {dict(bounds.sizes)}")
        da = bounds.transpose("param", "bound")
        names = list(da["param"].values) if "param" in da.coords else None
        arr = np.asarray(da.values, float)
    elif isinstance(bounds, Mapping):
        names = list(bounds)
        arr = np.array([tuple(bounds[k]) for k in names], dtype=float)
    else:
        arr = np.asarray(bounds, dtype=float)
        names = None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise ValueError(f"bounds must be n pairs (lower, upper), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("bounds must be finite")
    bad = np.flatnonzero(arr[:, 0] >= arr[:, 1])
    if bad.size:
        raise ValueError(f"lower bound must be below upper bound; violated for parameter index {bad.tolist()}")
    names = names if names is not None else [f"p{k}" for k in range(arr.shape[0])]
    return xr.DataArray(arr, dims=("param", "bound"), coords={"param": names, "bound": ["lower", "upper"]})


def latin_hypercube(bounds, n: int, seed=None) -> xr.DataArray:
    """A Latin-hypercube design of ``n`` samples inside ``bounds``: DataArray ``(sample, param)``.

    Each parameter's range is cut into ``n`` equal strata and every stratum holds exactly one
    sample (McKay et al., 1979); strata are paired at random across parameters.
    """
    if int(n) < 1:
        raise ValueError("n must be a positive number of samples")
    b = as_bounds(bounds)
    rng = np.random.default_rng(seed)
    d = b.sizes["param"]
    u = (rng.permuted(np.tile(np.arange(n), (d, 1)), axis=1).T + rng.random((n, d))) / n
    lo, hi = b.values[:, 0], b.values[:, 1]
    return xr.DataArray(
        lo + u * (hi - lo), dims=("sample", "param"), coords={"sample": np.arange(n), "param": b["param"].values}
    )


def _run_batch(simulator, block):
    return [simulator(row) for row in block]


def _as_dataset(out) -> xr.Dataset:
    if isinstance(out, xr.Dataset):
        return out
    if isinstance(out, xr.DataArray):
        return out.to_dataset(name=out.name or "obs")
    if isinstance(out, Mapping):
        return xr.Dataset({k: (xr.DataArray(v) if not isinstance(v, xr.DataArray) else v) for k, v in out.items()})
    raise TypeError(f"the simulator returned {type(out).__name__}; return an array, a mapping or xarray object")


def training_set(
    simulator: Callable,
    params: xr.DataArray,
    *,
    batch_size: int = 16,
    scheduler: str | None = None,
    progress: bool = True,
    **compute_kwargs,
) -> xr.Dataset:
    """Simulate every sample of a design in parallel with dask and stack the results.

    Parameters
    ----------
    simulator : callable
        ``simulator(theta) -> outputs`` for one parameter vector ``theta`` (1-D numpy array
        ordered like ``params.param``). Outputs are a 1-D array (stored as ``obs(sample, obs)``),
        a mapping of arrays, or a Dataset/DataArray; they must have the same shape each call.
        It must be picklable for ``scheduler="processes"`` (a module-level function or an
        object such as :class:`basinsx.groundwater.Aquifer` with a bound method).
    params : xarray.DataArray
        Design ``(sample, param)``, e.g. from :func:`latin_hypercube`.
        A simulator returning arrays gives the variable ``output(sample, obs)``.
    batch_size : int
        Samples per dask task.
    scheduler : str, optional
        A local dask scheduler (``"threads"``, ``"processes"``, ``"synchronous"``); by default
        the active one, so a ``distributed.Client`` (LocalCluster, dask-jobqueue) runs the samples.
    progress : bool
        Show a tqdm bar over the tasks (local schedulers; a distributed cluster has its dashboard).
    **compute_kwargs
        Passed to :func:`dask.compute`, e.g. ``pool=ProcessPoolExecutor(2)`` to reuse worker
        processes across calls (each new pool re-imports the simulator's modules).

    Returns
    -------
    xarray.Dataset
        ``params(sample, param)`` plus the simulator outputs with a leading ``sample`` dim.
    """
    import dask
    from dask.callbacks import Callback

    if not isinstance(params, xr.DataArray) or params.dims != ("sample", "param"):
        raise ValueError("params must be a DataArray with dims (sample, param)")
    values = np.asarray(params.values, float)  # the design is small and made by the caller
    blocks = [values[k : k + batch_size] for k in range(0, len(values), batch_size)]
    tasks = [dask.delayed(_run_batch)(simulator, blk) for blk in blocks]

    class _Bar(Callback):
        def __init__(self, total):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="simulating", unit="sample", disable=not progress)
            super().__init__()

        def _posttask(self, key, result, dsk, state, worker_id):
            if isinstance(result, list):
                self.bar.update(len(result))

        def _finish(self, dsk, state, errored):
            self.bar.close()

    with _Bar(len(values)):
        results = dask.compute(*tasks, **({"scheduler": scheduler} if scheduler else {}), **compute_kwargs)
    outs = [o for batch in results for o in batch]
    if isinstance(outs[0], (np.ndarray, list, tuple)):
        arr = np.stack([np.asarray(o, float) for o in outs])
        if arr.ndim != 2:
            raise ValueError("a simulator returning an array must return a 1-D observation vector")
        ds = xr.Dataset({"output": (("sample", "obs"), arr, {"long_name": "simulated observations"})})
    else:
        ds = xr.concat([_as_dataset(o) for o in outs], dim="sample", coords="minimal", compat="override", join="exact")
    ds = ds.assign_coords(sample=params["sample"].values)
    ds["params"] = params.rename(None)
    return ds
