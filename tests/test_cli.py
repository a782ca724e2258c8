import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import basinsx
from basinsx.cli import main

from conftest import DATA


def test_datasets_lists_the_catalog(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "caravan" in out and "camels-us" in out


def test_convert_writes_a_store(tmp_path, capsys):
    dest = tmp_path / "sample.zarr"
    assert main(["convert", "sample", str(dest), "--basins", "01031500", "01440000", "--basin-chunk", "1"]) == 0
    ds = basinsx.open_dataset(dest)
    assert list(ds.basin.values) == ["01031500", "01440000"] and ds.streamflow.chunks[0] == (1, 1)
    assert main(["convert", "sample", str(dest)]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "x.zarr")]) == 2
    assert "neither 'sample', a catalog name" in capsys.readouterr().err
    assert main(["fetch", "no-such-set"]) == 2
    assert "unknown data set" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "basinsx.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("datasets", "fetch", "convert", "calibrate", "embed", "porenet-dataset", "demo"):
        assert command in out.stdout


def test_calibrate_writes_a_restartable_result(tmp_path, capsys):
    out = tmp_path / "cal.zarr"
    argv = ["calibrate", "sample", "--out", str(out), "--basins", "01031500", "03346000", "--period", "1982", "1984",
            "--n-starts", "1", "--basin-chunk", "1"]
    assert main(argv) == 0
    assert "2 basins" in capsys.readouterr().out
    result = basinsx.open_dataset(out)
    assert result.params.dims == ("basin", "param") and np.isfinite(result.kge).all()
    assert sorted(p.name for p in (out / ".basinsx-done").iterdir()) == ["0-1", "1-2"]
    assert main(argv) == 0  # nothing left to do
    assert main(["calibrate", "sample", "--out", str(out), "--model", "nope"]) == 2


def test_embed_writes_embeddings(tmp_path, capsys):
    out = tmp_path / "emb.zarr"
    argv = ["embed", "sample", "--out", str(out), "--basins", "01031500", "03346000", "12010000",
            "--attributes", "p_mean", "aridity", "--period", "2000", "2003", "--epochs", "1", "--dim", "4",
            "--save", str(tmp_path / "model.pt")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "aridity" in printed and "embeddings of 3 basins" in printed
    emb = basinsx.open_dataset(out)
    assert emb.embedding.dims == ("basin", "embedding_dim") and emb.sizes["embedding_dim"] == 4
    assert list(emb.attribute.values) == ["p_mean", "aridity"]
    assert (tmp_path / "model.pt").stat().st_size > 0
    assert main(argv) == 2  # the store exists
    assert "overwrite" in capsys.readouterr().err
    assert "missing forcing" not in capsys.readouterr().err
    gappy = tmp_path / "gappy.zarr"
    sample = basinsx.open_dataset("sample").sel(basin=argv[5:8]).compute()
    gap = (sample.basin == argv[6]) & (sample.time.dt.year == 2001) & (sample.time.dt.dayofyear <= 10)
    basinsx.to_zarr(sample.assign(prcp=sample.prcp.where(~gap)), gappy)
    assert main(["embed", str(gappy), "--out", str(tmp_path / "e2.zarr"), *argv[4:-2]]) == 0  # before: no word
    assert f"missing forcing read as the training mean (days) in 1 of 3 basins: {argv[6]} (10)" in \
        capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    for flag in ("--save", "--checkpoint"):  # before: replaced by a torch zip after training, exit 0
        other = [*argv[:3], str(tmp_path / f"other{flag}.zarr"), *argv[4:], flag, str(notes)]
        assert main(other) == 2
        assert f"{notes} exists and is not a KGSSL" in capsys.readouterr().err
        assert notes.read_text() == "my notes" and not (tmp_path / f"other{flag}.zarr").exists()


SOURCES = {  # every kind of data set basinsx opens, cut to two basins and a short period
    "sample": ("sample", ["01031500", "03346000"], ("2001", "2002")),
    "zarr": (None, ["01031500", "03346000"], ("2001", "2002")),
    "caravan": ("caravan", ["01031500", "01055000"], ("2001", "2002")),
    "camels_us": ("camels_us", ["01022500", "01547700"], ("2001", "2002")),
}


@pytest.fixture(params=list(SOURCES))
def source(request, tmp_path, data_dir):
    name, basins, period = SOURCES[request.param]
    if name is None:  # a store written by `basinsx convert`
        name = tmp_path / "in.zarr"
        assert main(["convert", "sample", str(name), "--basins", *basins, "--basin-chunk", "1"]) == 0
    elif name != "sample":
        name = data_dir / name
    return str(name), basins, period


def test_every_command_round_trips_every_data_set(source, tmp_path, capsys):
    src, basins, period = source
    expected = basinsx.open_dataset(src, basins=basins).compute()
    for dest in (tmp_path / "a.zarr", tmp_path / "b.zarr"):  # convert, and convert the store it wrote
        assert main(["convert", src, str(dest), "--basins", *basins]) == 0
        xr.testing.assert_identical(basinsx.open_dataset(dest).compute(), expected)
        src = str(dest)
    assert main(["convert", src, src, "--overwrite"]) == 2

    cal = ["--basins", *basins, "--period", *period, "--n-starts", "1", "--pet", "oudin"]
    assert main(["calibrate", source[0], "--out", str(tmp_path / "r0.zarr"), *cal]) == 0
    assert main(["calibrate", src, "--out", str(tmp_path / "r1.zarr"), *cal]) == 0
    assert "2 basins" in capsys.readouterr().out
    direct, via_store = (basinsx.open_dataset(tmp_path / f"r{i}.zarr").compute().drop_attrs() for i in (0, 1))
    xr.testing.assert_identical(direct, via_store)  # the store holds exactly what the source holds
    assert list(direct.basin.values) == basins and np.isfinite(direct.params).all()

    assert main(["embed", src, "--out", str(tmp_path / "e.zarr"), "--basins", *basins, "--period", *period,
                 "--epochs", "1", "--dim", "4", "--pet", "oudin", "--attributes", "p_mean"]) == 0
    emb = basinsx.open_dataset(tmp_path / "e.zarr")
    assert list(emb.basin.values) == basins and np.isfinite(emb.embedding).all()


def test_version_and_the_default_period_match_python(capsys):
    import inspect

    from basinsx.calibration import calibrate
    from basinsx.cli import build_parser

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"basinsx {basinsx.__version__}"
    default = inspect.signature(calibrate).parameters["period"].default
    args = build_parser().parse_args(["calibrate", "sample", "--out", "x.zarr"])
    assert slice(*args.period) == default
    out = subprocess.run([sys.executable, "-m", "basinsx.cli", "calibrate", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert f"(default {default.start} {default.stop}" in " ".join(out.split())


def test_messages_use_flag_names_and_dates(tmp_path, capsys):
    dest = tmp_path / "s.zarr"
    assert main(["convert", "sample", str(dest), "--basins", "01031500"]) == 0
    assert main(["convert", "sample", str(dest), "--basins", "01031500"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    assert main(["calibrate", "sample", "--out", str(tmp_path / "r.zarr"), "--basins", "01031500",
                 "--period", "2031", "2032", "--pet", "oudin"]) == 2
    err = capsys.readouterr().err
    assert "calibration period 2031 to 2032 selects no days of the record 1981-01-01 to" in err
    assert "slice(" not in err and len(err.strip().splitlines()) == 1


def test_in_flags_rewrites_only_this_commands_options():
    from basinsx.cli import _in_flags, build_parser

    parser = build_parser()
    calibrate = next(a for a in parser._actions if a.choices and "calibrate" in a.choices).choices["calibrate"]
    assert _in_flags("pass overwrite=True to replace it", calibrate) == "pass --overwrite to replace it"
    assert (_in_flags("need n_starts >= 1, got n_starts=0, warmup=-1; gauge_name kept", calibrate)
            == "need --n-starts >= 1, got --n-starts 0, --warmup -1; gauge_name kept")


def test_file_system_errors_exit_2_without_a_traceback(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run = subprocess.run([sys.executable, "-m", "basinsx.cli", "convert", "sample", str(blocker / "sub" / "s.zarr"),
                          "--basins", "01031500"], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith("basinsx convert: error:") and "a-file" in run.stderr


def test_calibrate_summarises_negative_pet_once(tmp_path, capsys):
    ds = basinsx.open_dataset("sample", basins=["01031500", "03346000", "12010000"]).sel(time=slice("1990", "1992"))
    pet = ds.pet.load()
    pet[0, 400:403] = -1.0
    pet[2, 500] = -0.5
    basinsx.to_zarr(ds.assign(pet=pet), tmp_path / "in.zarr", basin_chunk=1)
    assert main(["calibrate", str(tmp_path / "in.zarr"), "--out", str(tmp_path / "r.zarr"), "--period", "1991",
                 "1992", "--n-starts", "1", "--basin-chunk", "1"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "negative PET" in line]
    days = (pet < 0).sum("time").values  # the window is 1990-1992: 365 warm-up days, then the period
    assert days[0] >= 3 and days[2] >= 1  # ERA5-Land PET has negative days of its own
    named = ", ".join(f"{b} ({n})" for b, n in zip(ds.basin.values, days) if n)
    assert lines == [f"warning: negative PET clipped to zero (days) in {(days > 0).sum()} of 3 basins: {named}"]
    assert (basinsx.open_dataset(tmp_path / "r.zarr").n_negative_pet.values == days).all()
    assert "NegativePETWarning" not in captured.err and "dask" not in captured.err


def doomed_store(tmp_path, doomed=1):
    """Three sample basins, 1990-1992; the basin at ``doomed`` carries a marker rain of 77 mm on the first day."""
    ds = basinsx.open_dataset("sample", basins=["01031500", "03346000", "12010000"]).sel(time=slice("1990", "1992"))
    prcp = ds.prcp.load()
    prcp[doomed, 0] = 77.0
    return basinsx.to_zarr(ds.assign(prcp=prcp), tmp_path / "in.zarr", basin_chunk=1)


def test_a_dead_pool_worker_loses_only_its_blocks(tmp_path, capsys, monkeypatch):
    import dask

    import basinsx.models

    real = basinsx.models.get

    class DiesOnMarker:  # a model whose run kills its worker process on one basin (a segfault, the OOM killer)
        def __init__(self, model):
            self.model = model

        def __getattr__(self, name):
            return getattr(self.model, name)

        def run(self, theta, forcing, *args, **kwargs):
            if np.any(np.asarray(forcing) == 77.0):
                os._exit(3)
            return self.model.run(theta, forcing, *args, **kwargs)

    store, out = doomed_store(tmp_path), tmp_path / "r.zarr"
    argv = ["calibrate", str(store), "--out", str(out), "--period", "1991", "1992", "--n-starts", "1",
            "--basin-chunk", "1", "--scheduler", "processes"]
    monkeypatch.setattr(basinsx.models, "get", lambda model, snow=False, **kw: DiesOnMarker(real(model, snow, **kw)))
    # forked workers see the patched model; one task per dispatch, so a dead worker takes only its own block
    with dask.config.set({"multiprocessing.context": "fork", "chunksize": 1, "num_workers": 2}):
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "BrokenProcessPool" in err and "1-2 (03346000..03346000)" in err and "Traceback" not in err
    assert "run the same command again" in err
    marked = {p.name for p in (out / ".basinsx-done").iterdir()}
    assert "1-2" not in marked and all(f"{m} (" not in err for m in marked)  # every block not written is named
    monkeypatch.undo()
    assert main(argv) == 0  # the rerun computes what was lost
    result = basinsx.open_dataset(out)
    assert np.isfinite(result.params).all() and result.sizes["basin"] == 3


def pool_workers(pid):
    """Live (not zombie) multiprocessing children of ``pid``."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError):
            continue
        if stat[1] == str(pid) and stat[0] != "Z" and "spawn_main" in cmd:
            found.append(int(proc.name))
    return found


def alive(pid):
    from pathlib import Path

    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_exit_when_their_client_is_killed(tmp_path):
    import time

    cmd = [sys.executable, "-m", "basinsx.cli", "calibrate", "sample", "--out", str(tmp_path / "r.zarr"),
           "--basins", "01031500", "03346000", "--n-starts", "8", "--basin-chunk", "1", "--scheduler", "processes"]
    client = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (workers := pool_workers(client.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workers, "the process pool never started"
        time.sleep(1.0)  # the workers are busy calibrating
        assert client.poll() is None
    finally:
        client.kill()
        client.wait()
    deadline = time.monotonic() + 10  # a calibration block takes far longer than this
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [w for w in workers if alive(w)]
    for w in left:  # do not leave them behind for the rest of the suite
        os.kill(w, 9)
    assert not left, f"pool workers {left} kept running after their client was killed"


def test_calibrate_pet_choice_and_bound_summary(tmp_path, capsys):
    args = ["calibrate", "sample", "--basins", "01031500", "03346000", "--period", "1991", "1992", "--n-starts", "1"]
    assert main(args + ["--out", str(tmp_path / "era5.zarr")]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if "known bias" in line]  # the ERA5-Land PET, unchosen
    assert len(warned) == 1 and warned[0].startswith("basinsx calibrate: warning: the data set's 'pet'")
    assert "--pet 'oudin'" in warned[0] and "pet='oudin'" not in warned[0] and ".py:" not in warned[0]
    era5 = basinsx.open_dataset(tmp_path / "era5.zarr")
    assert f"{int(era5.at_bound.any('param').sum())} basins with a parameter on a bound" in captured.out
    assert main(args + ["--out", str(tmp_path / "oudin.zarr"), "--pet", "oudin"]) == 0
    captured = capsys.readouterr()
    assert "known bias" not in captured.err
    oudin = basinsx.open_dataset(tmp_path / "oudin.zarr")
    assert oudin.attrs["pet"] == "oudin (computed by basinsx.pet)" and era5.attrs["pet"].startswith("pet ")
    assert not np.allclose(oudin.params, era5.params)


def test_porenet_dataset_replaces_only_its_own_file(tmp_path, capsys, monkeypatch):
    import basinsx.porenet.dataset as dataset

    # the LBM labels take minutes: a one-sample stand-in, since what is written is the question here
    monkeypatch.setattr(dataset, "concat_networks", lambda nets, rows: xr.Dataset({"k": ("sample", [1.0])}))
    notes = tmp_path / "results.nc"
    notes.write_text("my notes")
    base = ["porenet-dataset", "--n-berea", "0", "--n-synthetic", "0", "--n-large", "0",
            "--berea", str(DATA / "rocks" / "berea_100_to_300.npz")]
    assert main([*base[:1], str(notes), *base[1:]]) == 2  # before: the text replaced by netCDF, exit 0
    assert "results.nc exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert main([*base[:1], str(notes), *base[1:], "--overwrite"]) == 2
    assert "not a data set of basinsx porenet-dataset" in capsys.readouterr().err
    assert notes.read_text() == "my notes"
    mine = tmp_path / "nets.nc"
    assert main([*base[:1], str(mine), *base[1:]]) == 0
    assert main([*base[:1], str(mine), *base[1:], "--overwrite"]) == 0
    assert xr.open_dataset(mine).attrs["pnm_model"] == "cones_and_cylinders"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nets.nc", "results.nc"]  # no temporary file left
