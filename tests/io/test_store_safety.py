"""Stores and restartable runs: no mixed runs, no incomplete store taken as complete, no user file deleted."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import basinsx
from basinsx.cli import main
from basinsx.io.store import DONE, IncompleteStoreError, StoreBusyError

ROOT = Path(__file__).resolve().parents[2]
CAL = ["--period", "1982", "1995", "--n-starts", "2"]


def run_cli(*argv, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "basinsx.cli", *map(str, argv)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def kill_after_first_block(out: Path, *argv) -> None:
    """Start ``basinsx calibrate`` and SIGKILL it as soon as its first basin block is marked done."""
    proc = run_cli("calibrate", "sample", "--out", out, *argv)
    try:
        while not (out / DONE).is_dir() or not any((out / DONE).iterdir()):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_killed_calibration_never_mixes_runs(tmp_path, capsys):
    out = tmp_path / "r.zarr"
    argv = ["--basins", "01031500", "01440000", "01606500", "02324400", "--basin-chunk", "1", *CAL]
    kill_after_first_block(out, *argv, "--scheduler", "synchronous")
    done = sorted(p.name for p in (out / DONE).iterdir())
    assert 1 <= len(done) < 4, done  # killed part-way

    # an incomplete store never opens as complete
    with pytest.raises(IncompleteStoreError, match="incomplete") as err:
        basinsx.open_dataset(out)
    missing = [b for i, b in enumerate(argv[1:5]) if f"{i}-{i + 1}" not in done]
    assert all(b in str(err.value) for b in missing) and "allow_incomplete=True" in str(err.value)
    with pytest.warns(UserWarning, match=missing[0]):
        partial = basinsx.open_dataset(out, allow_incomplete=True)
    assert sorted(partial.basin.values[~partial.written.values]) == missing

    # other basins, another model or loss: exit 2 naming what differs, nothing written
    other = ["--basins", "01031500", "03346000", "12010000", "09510200", "--basin-chunk", "1", *CAL]
    assert main(["calibrate", "sample", "--out", str(out), *other]) == 2
    message = capsys.readouterr().err
    assert "--basins" in message and "01440000" in message and "--overwrite" in message
    assert main(["calibrate", "sample", "--out", str(out), *argv, "--model", "hymod"]) == 2
    assert "--model: gr4j in r.zarr, hymod now" in capsys.readouterr().err
    assert sorted(p.name for p in (out / DONE).iterdir()) == done

    # the same arguments resume and give the result of an uninterrupted run
    assert main(["calibrate", "sample", "--out", str(out), *argv]) == 0
    clean = tmp_path / "clean.zarr"
    assert main(["calibrate", "sample", "--out", str(clean), *argv]) == 0
    resumed = basinsx.open_dataset(out).compute()
    xr.testing.assert_identical(resumed.drop_attrs(), basinsx.open_dataset(clean).compute().drop_attrs())
    assert np.isfinite(resumed.kge).all()

    # a finished store and another loss: exit 2 (the old result is not printed); --overwrite starts afresh
    capsys.readouterr()
    assert main(["calibrate", "sample", "--out", str(out), *argv, "--loss", "nse"]) == 2
    captured = capsys.readouterr()
    assert "--loss: kge in r.zarr, nse now" in captured.err and "median KGE" not in captured.out
    assert main(["calibrate", "sample", "--out", str(out), *argv, "--loss", "nse", "--overwrite"]) == 0
    assert basinsx.open_dataset(out).attrs["basinsx_run"]["--loss"] == "nse"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_input_identity_is_part_of_the_run(tmp_path, capsys):
    src = tmp_path / "s.zarr"
    assert main(["convert", "sample", str(src), "--basins", "01031500", "01440000"]) == 0
    argv = ["calibrate", str(src), "--out", str(tmp_path / "r.zarr"), "--period", "1982", "1983", "--n-starts", "1"]
    assert main(argv) == 0
    assert main(argv) == 0  # same input, same arguments: nothing to do
    assert main(["convert", "sample", str(src), "--basins", "01031500", "01440000", "--overwrite"]) == 0
    capsys.readouterr()
    assert main(argv) == 2  # a rewritten input is another input, even with the same basins
    assert "input" in capsys.readouterr().err


def test_a_folder_of_links_is_known_by_the_files_behind_them(tmp_path):
    from basinsx.io.open import source_id

    data = tmp_path / "shared" / "v1"
    (data / "timeseries").mkdir(parents=True)
    (data / "timeseries" / "a.csv").write_text("date,q\n2000-01-01,1.0\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "timeseries").symlink_to(data / "timeseries", target_is_directory=True)  # data linked in, as on a cluster
    (tmp_path / "empty").mkdir()
    # before: rglob did not enter the link, so every such folder was "empty input" and a rerun on new data resumed
    assert source_id(mine) != source_id(tmp_path / "empty")
    first = source_id(mine)
    (data / "timeseries" / "a.csv").write_text("date,q\n2000-01-01,5.0\n")
    assert source_id(mine) != first  # the data behind the link changed
    (mine / "loop").symlink_to(mine, target_is_directory=True)  # a link back up is walked once, not forever
    assert source_id(mine).startswith("files:")
    single = data / "timeseries" / "a.csv"
    assert source_id(single) != source_id(tmp_path / "empty")  # a single file is known by itself


def test_cli_rejects_bad_chunks_and_out_equal_to_input(tmp_path, capsys):
    for bad in ("0", "-3"):
        with pytest.raises(SystemExit) as exit_:
            main(["calibrate", "sample", "--out", str(tmp_path / "r.zarr"), "--basin-chunk", bad])
        assert exit_.value.code == 2 and "--basin-chunk" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["convert", "sample", str(tmp_path / "s.zarr"), "--basin-chunk", bad])
    with pytest.raises(ValueError, match="basin_chunk"):
        basinsx.to_zarr(basinsx.open_dataset("sample"), tmp_path / "s.zarr", basin_chunk=0)
    src = tmp_path / "s.zarr"
    assert main(["convert", "sample", str(src), "--basins", "01031500"]) == 0
    for argv in (["calibrate", str(src), "--out", str(src)], ["embed", str(src), "--out", str(src), "--overwrite"],
                 ["convert", str(src), str(src), "--overwrite"]):
        assert main(argv) == 2
        assert "is the input" in capsys.readouterr().err
    assert basinsx.open_dataset(src).sizes["basin"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_overwrite_replaces_a_zarr_store_and_nothing_else(tmp_path, data_dir, capsys):
    ds = basinsx.open_dataset("sample", basins=["01031500"])
    folder = tmp_path / "mydir"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    plain = tmp_path / "notes.txt"
    plain.write_text("keep me")
    for dest in (folder, plain):
        with pytest.raises(ValueError, match="not a zarr store"):
            basinsx.to_zarr(ds, dest, overwrite=True)
        assert main(["convert", "sample", str(dest), "--overwrite"]) == 2
        assert "not a zarr store" in capsys.readouterr().err
        for command in ("calibrate", "embed"):
            assert main([command, "sample", "--out", str(dest), "--overwrite"]) == 2
    assert (folder / "thesis.tex").read_text() == "years of work" and plain.read_text() == "keep me"

    caravan = tmp_path / "cv"  # files linked to the shared data: deleting the copy would delete only links
    shutil.copytree(data_dir / "caravan", caravan, copy_function=os.symlink)
    before = sorted(str(p.relative_to(caravan)) for p in caravan.rglob("*"))
    assert main(["convert", str(caravan), str(caravan), "--basins", "01031500", "--overwrite"]) == 2
    assert sorted(str(p.relative_to(caravan)) for p in caravan.rglob("*")) == before

    store = basinsx.to_zarr(ds, tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="is the input"):
        basinsx.to_zarr(basinsx.open_dataset(store), store, overwrite=True)
    (tmp_path / "empty").mkdir()  # an empty folder holds nothing to lose
    basinsx.to_zarr(ds, tmp_path / "empty", overwrite=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


SWAP_KILLED = """
import os, signal, sys
import basinsx, basinsx.io.store as store

replace = os.replace
def killed_between_renames(src, dst):
    replace(src, dst)
    if ".old-" in str(dst):
        os.kill(os.getpid(), signal.SIGKILL)
store.os.replace = killed_between_renames
basinsx.to_zarr(basinsx.open_dataset("sample", basins=["01031500", "01440000"]), sys.argv[1], overwrite=True)
"""


def kill_between_the_two_renames(store: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SWAP_KILLED), str(store)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    names = sorted(p.name.rsplit("-", 1)[0] for p in store.parent.iterdir())
    assert names == [".s.zarr.lock", ".s.zarr.old", ".s.zarr.tmp"]  # the old store survives under .old-*


def test_a_kill_between_the_two_renames_stays_recoverable(tmp_path):
    store = tmp_path / "s.zarr"
    basinsx.to_zarr(basinsx.open_dataset("sample", basins=["01031500"]), store)
    kill_between_the_two_renames(store)
    # the next open restores the old store (its writer is dead) and says so
    with pytest.warns(UserWarning, match="restored"):
        assert basinsx.open_dataset(store).sizes["basin"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]

    # ... and so does the next write, which then replaces it as asked
    kill_between_the_two_renames(store)
    with pytest.raises(FileExistsError), pytest.warns(UserWarning, match="restored"):
        basinsx.to_zarr(basinsx.open_dataset("sample"), store)
    basinsx.to_zarr(basinsx.open_dataset("sample", basins=["01440000"]), store, overwrite=True)
    assert list(basinsx.open_dataset(store).basin.values) == ["01440000"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_a_live_writers_swap_is_named_not_touched(tmp_path):
    store = tmp_path / "s.zarr"
    basinsx.to_zarr(basinsx.open_dataset("sample", basins=["01031500"]), store)
    kill_between_the_two_renames(store)
    lock = next(tmp_path.glob(".s.zarr.lock-*"))
    lock.write_text(f"{os.getpid()}@{os.uname().nodename}")  # as if its writer were still at work
    with pytest.raises(FileNotFoundError, match=r"\.s\.zarr\.old-.*being replaced"):
        basinsx.open_dataset(store)
    assert len(list(tmp_path.iterdir())) == 3


def test_stale_temporaries_are_cleaned_up_and_live_ones_left(tmp_path):
    ds = basinsx.open_dataset("sample", basins=["01031500"])
    store = tmp_path / "s.zarr"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = os.uname().nodename
    for token, owner in [("aaaa0001", f"{dead.stdout.strip()}@{host}"), ("aaaa0002", f"{os.getpid()}@{host}"),
                         ("aaaa0003", "1@another-host")]:
        (tmp_path / f".s.zarr.tmp-{token}").mkdir()
        (tmp_path / f".s.zarr.tmp-{token}" / "part").write_text("half-written")
        (tmp_path / f".s.zarr.lock-{token}").write_text(owner)
    old = time.time() - 3 * 86400  # a lock from another machine is trusted for a day
    os.utime(tmp_path / ".s.zarr.lock-aaaa0003", (old, old))
    (tmp_path / ".s.zarr.tmp-aaaa0004").mkdir()  # no lock at all: its writer is gone
    with pytest.warns(UserWarning, match="removed") as record, pytest.raises(StoreBusyError, match="aaaa0002"):
        basinsx.to_zarr(ds, store)  # a live writer of the same store: two writers never share one
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".s.zarr.lock-aaaa0002", ".s.zarr.tmp-aaaa0002"]
    assert "aaaa0002" in " ".join(str(w.message) for w in record)  # the live one is reported, not removed
    (tmp_path / ".s.zarr.lock-aaaa0002").write_text(f"{dead.stdout.strip()}@{host}")  # its writer ends
    with pytest.warns(UserWarning, match="removed .s.zarr.tmp-aaaa0002"):
        basinsx.to_zarr(ds, store)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def _live_lock(store: Path) -> Path:
    """The lock of another writer of ``store`` that is still at work (this test's process, under another token)."""
    lock = store.with_name(f".{store.name}.lock-beefcafe")
    lock.write_text(f"{os.getpid()}@{os.uname().nodename}")
    return lock


def test_a_store_another_run_is_writing_is_never_written(tmp_path):
    from basinsx.io.store import to_zarr_regions

    r = xr.Dataset({"x": ("basin", np.ones(4))}, coords={"basin": list("abcd")})
    store = tmp_path / "r.zarr"
    lock = _live_lock(store)
    with pytest.raises(StoreBusyError, match=r"r.zarr is being written by another process .*lock-beefcafe"):
        to_zarr_regions(r, store, basin_chunk=2)  # before: two runs wrote their blocks into one store
    with pytest.raises(StoreBusyError):
        basinsx.to_zarr(r, store)
    assert not store.exists()
    lock.unlink()
    to_zarr_regions(r, store, basin_chunk=2)
    lock = _live_lock(store)
    with pytest.raises(StoreBusyError):
        to_zarr_regions(r * 2, store, basin_chunk=2, overwrite=True)  # before: replaced under the live run
    with pytest.raises(StoreBusyError):
        to_zarr_regions(r, store, basin_chunk=2)
    np.testing.assert_array_equal(basinsx.open_dataset(store)["x"].values, 1.0)


def test_a_store_that_appears_during_a_write_is_never_replaced(tmp_path, monkeypatch):
    import basinsx.io.store as st

    ds = basinsx.open_dataset("sample", basins=["01031500"])
    store = tmp_path / "s.zarr"
    compute = st.compute

    def another_writer_first(*args, **kwargs):
        store.mkdir()
        (store / "notes.txt").write_text("mine")
        return compute(*args, **kwargs)

    monkeypatch.setattr(st, "compute", another_writer_first)
    with pytest.raises(FileExistsError, match="appeared"):
        basinsx.to_zarr(ds, store)  # before: the folder was swapped out and deleted
    assert (store / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_library_regions_resume_only_the_same_result(tmp_path):
    from basinsx.io.store import RunMismatchError, to_zarr_regions

    ds = basinsx.open_dataset("sample")
    result = ds.hydro.metrics(ds.streamflow.shift(time=1))
    store = to_zarr_regions(result.isel(basin=slice(0, 4)), tmp_path / "m.zarr", basin_chunk=2, run={"lag": 1})
    with pytest.raises(RunMismatchError, match="basins: 01031500 01440000 01606500 02324400 in m.zarr, 0"):
        to_zarr_regions(result.isel(basin=slice(4, 8)), store, basin_chunk=2, run={"lag": 1})
    with pytest.raises(RunMismatchError, match="lag: 1 in m.zarr, 2 now"):
        to_zarr_regions(result.isel(basin=slice(0, 4)), store, basin_chunk=2, run={"lag": 2})
    with pytest.raises(RunMismatchError, match="basin_chunk: 2 in m.zarr, 3 now"):
        to_zarr_regions(result.isel(basin=slice(0, 4)), store, basin_chunk=3, run={"lag": 1})
    plain = basinsx.to_zarr(ds.isel(basin=[0]), tmp_path / "plain.zarr")
    with pytest.raises(FileExistsError, match="not a restartable result store"):
        to_zarr_regions(result, plain, basin_chunk=2)
    xr.testing.assert_allclose(basinsx.open_dataset(store).compute(), result.isel(basin=slice(0, 4)).compute())


def test_library_regions_without_a_run_resume_only_the_same_lazy_result(tmp_path):
    from basinsx.io.store import RunMismatchError, to_zarr_regions

    r1 = xr.Dataset({"x": ("basin", np.ones(4))}, coords={"basin": list("abcd")}).chunk({"basin": 2})
    store = to_zarr_regions(r1, tmp_path / "r.zarr", basin_chunk=2)
    to_zarr_regions(r1, store, basin_chunk=2)  # the same result: nothing left to do
    with pytest.raises(RunMismatchError, match="result: "):
        to_zarr_regions(r1 * 2, store, basin_chunk=2)  # before: kept the first run's ones, silently
    (store / DONE / "2-4").unlink()
    with pytest.raises(RunMismatchError, match="result: "):
        to_zarr_regions(r1 * 2, store, basin_chunk=2)  # before: a store of 1 1 2 2
    to_zarr_regions(r1, store, basin_chunk=2)
    np.testing.assert_array_equal(basinsx.open_dataset(store)["x"].values, 1.0)


def test_regions_write_a_calibration_with_a_computed_pet(tmp_path):
    # dask.delayed(f)(dataset) lost a task of this graph ("Missing dependency ('transpose-...')")
    from basinsx.io.store import to_zarr_regions

    ds = basinsx.open_dataset("sample", basins=["01031500", "01440000", "01606500"], chunks=3)
    result = ds.hydro.calibrate(period=("1982", "1983"), n_starts=1, pet="oudin")
    store = to_zarr_regions(result, tmp_path / "r.zarr", basin_chunk=3)  # one block: the failing case
    back, expected = basinsx.open_dataset(store).compute(), result.compute()
    for name in ("params", "kge", "loss", "message"):  # with their labels (param_units was lost)
        xr.testing.assert_equal(back[name], expected[name])
