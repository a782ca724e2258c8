"""Progress bars count basins, and a computation that stops part-way says which parts did not finish."""

import dask
import numpy as np
import pytest
import xarray as xr

import basinsx
from basinsx.progress import IncompleteError, compute


def lazy_means():
    ds = basinsx.open_dataset("sample").isel(basin=slice(0, 5)).chunk({"basin": 2})
    return ds.streamflow.mean("time"), ds[["prcp", "streamflow"]].mean("time").assign(n=ds.sizes["time"])


def test_the_bar_counts_basins_not_tasks(capsys):
    mean, means = lazy_means()
    with dask.config.set(scheduler="threads"):
        got = compute(mean, means, desc="means")
        expected = dask.compute(mean, means)
    err = capsys.readouterr().err
    assert "means" in err and "10/10" in err and "basin" in err  # 5 + 5 basins, not the ~50 tasks
    for a, b in zip(got, expected):
        xr.testing.assert_identical(a, b)


def test_weights_count_the_basins_of_delayed_parts(capsys):
    parts = [dask.delayed(np.sum)(np.arange(n)) for n in (3, 4)]
    with dask.config.set(scheduler="threads"):
        assert compute(*parts, weights=[8, 5], desc="blocks") == (3, 6)
    assert "13/13" in capsys.readouterr().err


def boom(x):
    raise ValueError(f"bad block {x}")


def test_a_failed_part_is_named():
    parts = [dask.delayed(boom)(1), dask.delayed(np.negative)(2)]
    with dask.config.set(scheduler="synchronous"), pytest.raises(IncompleteError) as info:
        compute(*parts, labels=["basins 0-8", "basins 8-16"], progress=False)
    assert "basins 0-8" in info.value.pending and isinstance(info.value.__cause__, ValueError)
    assert "ValueError: bad block 1" in str(info.value)
    with dask.config.set(scheduler="synchronous"), pytest.raises(ValueError, match="bad block 1"):
        compute(*parts, progress=False)  # without labels: the error itself
