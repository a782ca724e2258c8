"""Model files are read without running code from them: crafted, truncated, foreign and old files.

Every model ``load`` (and every ``fit(checkpoint=..., resume=True)``) goes through
:mod:`basinsx._serialization`, which checks the format tag without unpickling and then reads
with ``torch.load(weights_only=True)``.
"""

import collections
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

from basinsx.cli import main  # noqa: E402
from basinsx.embedding import KGSSL, ForwardLSTM  # noqa: E402

KGSSL_SMALL = {"dim": 4, "hidden": 8, "window": 60, "stride": 30, "basins_per_batch": 4, "windows_per_basin": 2,
               "epochs": 1, "progress": False}
FORWARD_SMALL = {"hidden": 8, "seq_length": 60, "warmup": 10, "batch_size": 8, "epochs": 1, "progress": False}


class Payload:
    """Unpickling this object creates ``marker``: what a crafted model file could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def crafted_files(tmp_path, fmt):
    """A bare pickle and a torch zip whose format tag is right but whose content runs code."""
    marker = tmp_path / "pwned"
    bare = tmp_path / "bare.pt"
    bare.write_bytes(pickle.dumps(Payload(marker)))
    zipped = tmp_path / "zipped.pt"
    torch.save({"format": fmt, "config": Payload(marker), "stats": {}, "weights": {}, "training": None}, zipped)
    assert not marker.exists()
    return marker, [bare, zipped]


def basins(n=4, days=400, seed=0):
    rng = np.random.default_rng(seed)
    time = pd.date_range("2001-01-01", periods=days, freq="D")
    dims = ("basin", "time")
    prcp = rng.exponential(3.0, (n, days)).astype(np.float32)
    return xr.Dataset(
        {"prcp": (dims, prcp), "tmean": (dims, rng.normal(10, 5, (n, days)).astype(np.float32)),
         "pet": (dims, np.full((n, days), 2.0, np.float32)),
         "streamflow": (dims, (0.3 * prcp + rng.random((n, days))).astype(np.float32)),
         "k": ("basin", np.linspace(0.1, 0.5, n))},
        coords={"basin": [f"b{i}" for i in range(n)], "time": time})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ds():
    return basins()


@pytest.fixture(scope="module")
def kgssl(ds):
    return KGSSL(**KGSSL_SMALL).fit(ds, attributes=["k"])


@pytest.fixture(scope="module")
def forward(ds):
    return ForwardLSTM(**FORWARD_SMALL).fit(ds, static=["k"])


ENTRIES = {
    "KGSSL.load": (KGSSL.FORMAT, lambda path, ds: KGSSL.load(path)),
    "ForwardLSTM.load": (ForwardLSTM.FORMAT, lambda path, ds: ForwardLSTM.load(path)),
    "KGSSL.fit resume": (KGSSL.FORMAT, lambda path, ds: KGSSL(**KGSSL_SMALL).fit(ds, checkpoint=path, resume=True)),
    "ForwardLSTM.fit resume": (ForwardLSTM.FORMAT,
                               lambda path, ds: ForwardLSTM(**FORWARD_SMALL).fit(ds, checkpoint=path, resume=True)),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_crafted_file_runs_no_code(entry, ds, tmp_path):
    fmt, read = ENTRIES[entry]
    marker, paths = crafted_files(tmp_path, fmt)
    for path in paths:
        with pytest.raises(ValueError, match=path.name):
            read(path, ds)
        assert not marker.exists(), f"{entry} ran code from {path.name}"


def test_embed_resume_runs_no_code_from_the_checkpoint(tmp_path, capsys):
    marker, paths = crafted_files(tmp_path, KGSSL.FORMAT)
    for path in paths:
        argv = ["embed", "sample", "--out", str(tmp_path / "emb.zarr"), "--basins", "01031500", "03346000",
                "--period", "2000", "2001", "--epochs", "1", "--dim", "4", "--checkpoint", str(path), "--resume"]
        try:  # the CLI reports a ValueError as exit 2 (or lets it through, depending on cli.main)
            assert main(argv) == 2
            assert path.name in capsys.readouterr().err
        except ValueError as err:
            assert path.name in str(err)
        assert not marker.exists()
        assert not (tmp_path / "emb.zarr").exists()


@pytest.mark.parametrize("cls", [KGSSL, ForwardLSTM])
def test_truncated_and_foreign_files_give_a_clear_error(cls, kgssl, forward, tmp_path):
    model = kgssl if cls is KGSSL else forward
    good = tmp_path / "good.pt"
    model.save(good)
    data = good.read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "tail-cut.pt": data[:-10],
        "empty.pt": b"",
        "text.pt": b"hello, I am not a model\n",
        "random.pt": np.random.default_rng(0).bytes(4096),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"weights": torch.ones(3)}, tmp_path / "other-torch.pt")
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    np.save(tmp_path / "array.npy", np.ones(3))
    (forward if cls is KGSSL else kgssl).save(tmp_path / "other-model.pt")
    for name in [*cases, "other-torch.pt", "tensor.pt", "array.npy", "other-model.pt"]:
        with pytest.raises(ValueError, match=rf"{name}.*not a basinsx {cls.__name__} model file"):
            cls.load(tmp_path / name)


def test_a_file_damaged_inside_gives_a_clear_error(kgssl, tmp_path):
    good = tmp_path / "good.pt"
    kgssl.save(good)
    damaged = tmp_path / "damaged.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename.endswith("data.pkl"):  # tag intact, the rest of the pickle cut
                body = body[: len(body) // 2]
            dst.writestr(item, body)
    with pytest.raises(ValueError, match="damaged.pt.*not a basinsx KGSSL model file"):
        KGSSL.load(damaged)


def test_files_of_the_previous_format_ask_to_save_again(tmp_path):
    old = tmp_path / "old.pt"
    torch.save({"format": "basinsx.KGSSL/1", "config": {}, "stats": {"mean": np.zeros(3)}, "weights": {},
                "training": None}, old)
    with pytest.raises(ValueError, match=r"old.pt.*basinsx.KGSSL/1.*save"):
        KGSSL.load(old)


def test_round_trips_give_identical_outputs(ds, kgssl, forward, tmp_path):
    kgssl.save(tmp_path / "k.pt")
    xr.testing.assert_identical(KGSSL.load(tmp_path / "k.pt").transform(ds), kgssl.transform(ds))
    forward.save(tmp_path / "f.pt")
    loaded = ForwardLSTM.load(tmp_path / "f.pt")
    xr.testing.assert_identical(loaded.predict(ds, static=["k"]), forward.predict(ds, static=["k"]))
    assert loaded.history == forward.history and loaded.config == forward.config


def test_helper_round_trips_plain_data_and_arrays(tmp_path):
    from basinsx import _serialization

    content = {
        "arrays": [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1.5, np.nan, -np.inf]),
                   np.array([3, -4], dtype=np.int64), np.array([True, False]), np.array(["a", "bc"]),
                   np.zeros(0), np.array(2.5)],
        "scalars": (np.float32(0.1), np.int64(7), np.str_("x"), 2**100, float("inf"), None, True, "text"),
        "rng": np.random.default_rng(3).bit_generator.state,
        "tensor": torch.arange(4.0),
    }
    _serialization.save(tmp_path / "x.pt", "basinsx.Test/1", content)
    back = _serialization.load(tmp_path / "x.pt", "basinsx.Test/1", kind="Test model")
    for a, b in zip(back["arrays"], content["arrays"]):
        assert type(a) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert back["scalars"] == content["scalars"]
    assert [type(v) for v in back["scalars"]] == [np.float32, np.int64, np.str_, int, float, type(None), bool, str]
    assert back["rng"] == content["rng"]
    torch.testing.assert_close(back["tensor"], content["tensor"], rtol=0, atol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]  # no temporary file left


def test_helper_refuses_what_it_cannot_store_safely(tmp_path):
    from basinsx import _serialization

    for bad, where in [({"a": {"b": object()}}, r"\['a'\]\['b'\]"), ({"a": [np.array([object()])]}, r"\['a'\]\[0\]"),
                       ({"d": np.array(["2000-01-01"], dtype="datetime64[D]")}, r"\['d'\]"),
                       ({"s": (1, np.array([b"x"]))}, r"\['s'\]\[1\]"),
                       ({"n": collections.namedtuple("Pair", "a b")(1, 2)}, r"Pair at \['n'\]")]:
        with pytest.raises(TypeError, match=where):
            _serialization.save(tmp_path / "x.pt", "basinsx.Test/1", bad)
    assert not list(tmp_path.iterdir())
