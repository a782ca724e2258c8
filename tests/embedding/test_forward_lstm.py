"""basinsx.embedding.forward: the LSTM forward model fed static vectors."""

import numpy as np
import pytest
import xarray as xr
from embedding_cases import synthetic

torch = pytest.importorskip("torch")

# imported after the importorskip: basinsx.embedding needs torch
from basinsx.embedding import ForwardLSTM  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ds():
    return synthetic()


def test_forward_lstm_uses_static_vector(ds, tmp_path):
    cfg = {"hidden": 16, "seq_length": 120, "warmup": 30, "epochs": 15, "patience": 15, "lr": 1e-2,
           "progress": False, "batch_size": 32, "steps_per_epoch": 10}
    period, test = ("2000-01-01", "2001-12-31"), ("2002-01-01", "2002-12-31")
    with_static = ForwardLSTM(**cfg).fit(ds, static=["k", "c"], period=period)
    sim = with_static.predict(ds, static=["k", "c"], period=test)
    assert sim.dims == ("basin", "time")
    assert sim.sizes["time"] == 365 and str(sim.time.values[0])[:10] == "2002-01-01"
    obs = ds.streamflow.sel(time=sim.time).assign_attrs(units="mm d-1")
    nse_static = ds.hydro.metrics(sim, obs).nse
    plain = ForwardLSTM(**cfg).fit(ds, period=period).predict(ds, period=test)
    nse_plain = ds.hydro.metrics(plain, obs).nse
    # without k and c the model cannot tell a flashy reservoir from a slow one
    assert float(nse_static.median()) > 0.8
    assert float(nse_static.median()) > float(nse_plain.median()) + 0.05


def test_forward_lstm_round_trip_and_laziness(ds, tmp_path):
    cfg = {"hidden": 8, "seq_length": 60, "warmup": 20, "epochs": 1, "progress": False}
    emb = xr.DataArray(np.random.default_rng(0).normal(size=(ds.sizes["basin"], 3)), dims=("basin", "embedding_dim"),
                       coords={"basin": ds.basin})
    model = ForwardLSTM(**cfg).fit(ds, static=emb)
    model.save(tmp_path / "f.pt")
    loaded = ForwardLSTM.load(tmp_path / "f.pt")
    lazy = ds.chunk({"basin": 8})
    sim = loaded.predict(lazy, static=emb, period=("2002-01-01", "2002-03-01"))
    assert sim.chunks is not None
    xr.testing.assert_allclose(sim.compute(), model.predict(ds, static=emb, period=("2002-01-01", "2002-03-01")))
    with pytest.raises(ValueError, match="static features"):
        loaded.predict(ds, static=None)
