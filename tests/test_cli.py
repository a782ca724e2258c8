import subprocess
import sys

import numpy as np

import basinsx
from basinsx.cli import main


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
