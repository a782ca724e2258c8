"""benchmarks/common.py's cache of simulated training sets never mixes runs of other code or other designs."""

import importlib.util
from pathlib import Path

import numpy as np
import xarray as xr

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load_common():
    spec = importlib.util.spec_from_file_location("bench_common_for_cache", BENCH / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def design(values):
    return xr.DataArray(np.array([values], dtype=float), dims=("sample", "param"))


def training(params, out):
    return xr.Dataset({"params": params, "output": (("sample", "obs"), np.full((1, 2), out))})


def test_a_set_made_by_other_solver_code_is_made_again(tmp_path):
    common = load_common()
    p = design((1.0, 2.0))
    made = []

    def make(out):
        made.append(out)
        return training(p, out)

    common.cached(tmp_path, "set", lambda: make(1.0), params=p, key="upwind solver")
    again = common.cached(tmp_path, "set", lambda: make(2.0), params=p, key="upwind solver")
    assert made == [1.0] and float(again.output[0, 0]) == 1.0
    other = common.cached(tmp_path, "set", lambda: make(3.0), params=p, key="tvd solver")
    assert made == [1.0, 3.0] and float(other.output[0, 0]) == 3.0
    assert not list(tmp_path.glob(".*tmp"))  # written whole, then renamed


def test_a_set_stored_without_a_key_is_not_taken_for_one_with_a_key(tmp_path):
    common = load_common()
    p = design((1.0, 2.0))
    training(p, 1.0).to_netcdf(tmp_path / "set.nc")  # as an older benchmark run stored it
    got = common.cached(tmp_path, "set", lambda: training(p, 5.0), params=p, key="current solver")
    assert float(got.output[0, 0]) == 5.0


def test_code_digest_changes_with_the_source(tmp_path):
    common = load_common()
    src = tmp_path / "solver.py"
    src.write_text("x = 1\n")
    first = common.code_digest(src)
    src.write_text("x = 2\n")
    assert common.code_digest(src) != first
    assert common.code_digest(common) == common.code_digest(BENCH / "common.py")
