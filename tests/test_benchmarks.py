"""The benchmark scripts share ``benchmarks/common.py`` and one entry point: ``main(argv=None)`` with argparse.

Nothing here times anything: the helpers are checked for what they return, the scripts for their ``--help``.
"""

import ast
import importlib
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import benchmark_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
HELPERS = {"common.py", "embedding_data.py"}  # modules the scripts import, not scripts
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name not in HELPERS)


@pytest.fixture(scope="module")
def common():
    with benchmark_script("common") as module:
        yield module


def entry_point_problems(path: Path) -> list[str]:
    """What keeps ``path`` from the convention: ``def main(argv=None)`` parsing with argparse, a bare
    ``main()`` under ``if __name__ == "__main__"``, and no ``sys.path`` edits or own data paths."""
    text = path.read_text()
    tree = ast.parse(text)
    problems = []
    main = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    if not main or [a.arg for a in main[0].args.args] != ["argv"] or len(main[0].args.defaults) != 1:
        problems.append("no def main(argv=None)")
    elif "parse_args(argv)" not in ast.unparse(main[0]):
        problems.append("main does not parse argv")
    guard = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "__name__ == '__main__'"]
    if len(guard) != 1 or [ast.unparse(s) for s in guard[0].body] != ["main()"]:
        problems.append('the __main__ block is not just main()')
    if "sys.path" in text:
        problems.append("edits sys.path")
    if "__file__" in text:
        problems.append("builds its own path from __file__ (use common)")
    return problems


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_follows_the_entry_point_convention(script):
    assert not entry_point_problems(script), f"benchmarks/{script.name}: {entry_point_problems(script)}"


def test_the_convention_check_catches_the_old_forms(tmp_path):
    old = tmp_path / "old.py"
    old.write_text("import sys\nfrom pathlib import Path\nsys.path.insert(0, str(Path(__file__).parent))\n"
                   "def main(a):\n    pass\nif __name__ == '__main__':\n    import argparse\n"
                   "    main(argparse.ArgumentParser().parse_args())\n")
    assert len(entry_point_problems(old)) == 4


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_help(script, common, capsys):
    module = importlib.import_module(script.stem)
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse may rewrap the description
    assert " ".join(module.__doc__.strip().splitlines()[0].split()) in out


def test_best_of_returns_the_fastest_time_and_the_last_result(common):
    calls = []

    def work():
        calls.append(None)
        time.sleep(0.05 if len(calls) != 2 else 0.0)
        return len(calls)

    seconds, result = common.best_of(work, 3)
    assert result == 3 and len(calls) == 3
    assert seconds < 0.04  # the second, fast call
    with pytest.raises(ValueError, match="repeat must be at least 1, not 0"):
        common.best_of(work, 0)


def test_peak_memory_keeps_the_largest_sum_and_each_largest_value(common):
    now = {"a": 1, "b": 2}
    seen = threading.Event()

    def read():
        if now["a"] == 5:
            seen.set()
        return dict(now)

    with common.PeakMemory(read, interval=0.001) as mem:
        now.update(a=5, b=1)
        assert seen.wait(5)
        now.update(a=1, b=1)
    assert mem.peak == 6
    assert mem.peaks == {"a": 5, "b": 2}


def test_peak_memory_sees_an_allocation_of_this_process(common):
    with common.PeakMemory(interval=0.01) as idle:
        time.sleep(0.05)
    with common.PeakMemory(interval=0.01) as busy:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, every page touched
        time.sleep(0.1)
        del block
    assert busy.peak - idle.peak > 150 * 2**20


def test_cached_makes_once_and_remakes_for_other_params(common, tmp_path):
    made = []

    def make(values=(1.0, 2.0)):
        made.append(values)
        return xr.Dataset({"params": ("sample", np.array(values)), "out": ("sample", 2 * np.array(values))})

    first = common.cached(tmp_path, "set", make)
    again = common.cached(tmp_path, "set", make, params=first.params)
    xr.testing.assert_identical(first, again)
    assert len(made) == 1 and (tmp_path / "set.nc").exists()
    other = xr.DataArray([3.0, 4.0], dims="sample")
    common.cached(tmp_path, "set", lambda: make((3.0, 4.0)), params=other)
    assert made == [(1.0, 2.0), (3.0, 4.0)]
    common.cached(None, "set", make)  # no cache: made every time
    assert len(made) == 3


def test_caravan_loader_chooses_the_pet(common, data_dir):
    basins = ["01031500", "01055000"]  # both have days of negative ERA5-Land PET
    era5 = common.caravan("era5", basins=basins)
    assert list(era5.basin.values) == basins
    assert (era5["pet"] < 0).any("time").all()
    clipped = common.caravan("era5", basins=basins, clip_pet=True)
    np.testing.assert_array_equal(clipped["pet"].values, np.maximum(era5["pet"].values, 0))
    oudin = common.caravan("oudin", basins=basins)
    xr.testing.assert_identical(oudin["pet"], era5.hydro.pet("oudin"))
    xr.testing.assert_identical(oudin.drop_vars("pet"), era5.drop_vars("pet"))
    with pytest.raises(ValueError, match=r"pet must be one of \('era5', 'oudin'\), not 'daymet'"):
        common.caravan("daymet", basins=basins)
