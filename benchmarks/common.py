"""What the benchmark scripts share: data paths, a best-of-N timer, a peak-memory sampler, the Caravan loader.

The scripts run as ``python benchmarks/<name>.py`` from the repository root; Python puts this folder first on
``sys.path``, so ``from common import ...`` (and a script importing a sibling) needs no path manipulation.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CARAVAN = DATA / "caravan"
CAMELS_ATTRIBUTES = DATA / "camels_us" / "camels_attributes_v2.0"
ROCKS = DATA / "rocks"
STATOIL = ROCKS / "statoil"
RESULTS = ROOT / "docs" / "benchmarks"  # saved results (JSON, figures) next to their pages
BENCHMARK_DATA = ROOT / "benchmarks" / "data"  # small files the benchmarks made, kept in the repository
PET_CHOICES = ("era5", "oudin")


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """The argument parser of a benchmark script: ``--help`` prints the script's docstring as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Seconds of the fastest of ``repeat`` calls of ``fn`` and the last call's result.

    On a shared machine the minimum is the least disturbed estimate of the cost.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, not {repeat}")
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def process_rss() -> dict[int, int]:
    """Resident set size in bytes of this process and each of its children (worker processes), by pid."""
    import psutil

    me = psutil.Process()
    out = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            out[proc.pid] = proc.memory_info().rss
        except psutil.Error:  # a child that ended between the listing and the reading
            pass
    return out


def dask_worker_memory(client) -> Callable[[], dict[str, int]]:
    """A reader for :class:`PeakMemory`: the memory in bytes the scheduler reports for each worker, by address."""
    return lambda: {addr: info["metrics"]["memory"] for addr, info in client.scheduler_info()["workers"].items()}


class PeakMemory:
    """Sample memory in a background thread while a ``with`` block runs.

    ``read`` returns ``{name: bytes}`` (default :func:`process_rss`). After the block, ``peak`` is the largest
    sum over names at one sample and ``peaks`` the largest value of each name, both in bytes.
    """

    def __init__(self, read: Callable[[], dict] = process_rss, interval: float = 0.1):
        self.read, self.interval = read, interval
        self.peak, self.peaks = 0, {}
        self._stop = threading.Event()

    def _sample(self) -> None:
        while True:
            now = self.read()
            self.peak = max(self.peak, sum(now.values()))
            for name, value in now.items():
                self.peaks[name] = max(self.peaks.get(name, 0), value)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def code_digest(*sources) -> str:
    """SHA-256 of the source files of ``sources`` (paths, or modules, classes and functions: their files).

    What a cached result was computed by: the solver's modules and the script defining the simulator.
    """
    import hashlib
    import inspect

    h = hashlib.sha256()
    for src in sources:
        path = Path(src) if isinstance(src, (str, Path)) else Path(inspect.getfile(src))
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cached(cache: Path | str | None, name: str, make: Callable[[], xr.Dataset], params=None,
           key: str = "") -> xr.Dataset:
    """A training set from ``cache/name.nc`` if it was made of ``params`` by the code ``key`` names, else ``make()``.

    ``key`` identifies what computed the set (e.g. :func:`code_digest` of the solver's module and the script):
    a set stored by other code or from other parameters is made again, never mixed into this run. The result
    of ``make()`` is stored (written to a temporary file, then renamed) when ``cache`` is set.
    """
    path = Path(cache, f"{name}.nc") if cache else None
    if path is not None and path.exists():
        ds = xr.load_dataset(path)
        same_params = params is None or ("params" in ds and np.array_equal(ds.params.values, params.values))
        if same_params and ds.attrs.get("cache_key", "") == key:
            return ds
    ds = make().assign_attrs(cache_key=key)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        ds.to_netcdf(tmp)
        tmp.replace(path)
    return ds


def caravan(pet: str = "era5", *, basins=None, path: Path | str = CARAVAN, clip_pet: bool = False) -> xr.Dataset:
    """The Caravan basins of ``path`` (default the 100 CAMELS-US basins of ``../shared/data``) in memory.

    Parameters
    ----------
    pet : {"era5", "oudin"}
        ``"era5"`` keeps Caravan's ERA5-Land PET (several times observation-based PET on average);
        ``"oudin"`` replaces it by Oudin et al. (2005) from ``tmean`` and latitude (``ds.hydro.pet("oudin")``).
    basins : list of str, optional
        Basin ids to read (default all).
    path : path-like
        A Caravan folder.
    clip_pet : bool
        Set negative PET (ERA5-Land's condensation days) to 0, as code that runs a model on raw arrays needs.
    """
    if pet not in PET_CHOICES:
        raise ValueError(f"pet must be one of {PET_CHOICES}, not {pet!r}")
    import basinsx

    ds = basinsx.open_dataset(path, basins=basins, chunks=None)
    if pet == "oudin":
        ds["pet"] = ds.hydro.pet("oudin")
    if clip_pet:
        ds["pet"] = ds["pet"].clip(min=0)
    return ds
