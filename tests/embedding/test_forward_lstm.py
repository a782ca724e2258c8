"""basinsx.embedding.forward: the LSTM forward model fed static vectors."""

import numpy as np
import pytest
import xarray as xr
from embedding_cases import synthetic

from conftest import raise_if_dask_computes

torch = pytest.importorskip("torch")

# imported after the importorskip: basinsx.embedding needs torch
from basinsx.embedding import ForwardLSTM  # noqa: E402
from basinsx.units import UnitsError  # noqa: E402

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


TINY = {"hidden": 8, "seq_length": 60, "warmup": 20, "epochs": 1, "steps_per_epoch": 3, "progress": False}
TEST = ("2002-01-01", "2002-03-31")


def test_static_features_are_matched_by_name(ds):
    ds = ds.assign(a=2 * ds.k)
    model = ForwardLSTM(**TINY).fit(ds, static=["k", "c"])
    sim = model.predict(ds, static=["k", "c"], period=TEST)
    # before: by position, ["c", "k"] fed c as k (1.4-2 mm/d off on the sample) and ["k", "a"] ran silently
    xr.testing.assert_equal(model.predict(ds, static=["c", "k"], period=TEST), sim)
    with raise_if_dask_computes():  # before: refused, one chunk per static variable
        lazy = model.predict(ds.chunk({"basin": 4}), static=["c", "k"], period=TEST)
    assert lazy.chunks is not None
    xr.testing.assert_allclose(lazy.compute(), sim)
    other = r"fitted with static features \['k', 'c'\]; got \['k', 'a'\], which lack \['c'\] and add \['a'\]"
    with pytest.raises(ValueError, match=other):
        model.predict(ds, static=["k", "a"], period=TEST)
    table = ds[["k", "c"]].to_dataarray("attr").transpose("basin", "attr")
    by_table = ForwardLSTM(**TINY).fit(ds, static=table)
    xr.testing.assert_equal(by_table.predict(ds, static=table.isel(attr=[1, 0], basin=slice(None, None, -1)),
                                             period=TEST), by_table.predict(ds, static=table, period=TEST))
    xr.testing.assert_equal(by_table.predict(ds, static=["c", "k"], period=TEST), sim)  # same seed, same features
    with pytest.raises(ValueError, match=r"got \['k'\], which lack \['c'\]$"):
        by_table.predict(ds, static=table.sel(attr=["k"]), period=TEST)


def test_inputs_target_and_static_attributes_are_taken_in_their_units(ds):
    n = ds.sizes["basin"]
    ds = ds.assign_coords(area=("basin", np.linspace(50.0, 800.0, n), {"units": "km2"}))
    ds = ds.assign(elev=("basin", np.linspace(100.0, 2000.0, n), {"units": "m"}))
    ds["tmean"].attrs["units"], ds["streamflow"].attrs["units"] = "degC", "mm d-1"
    model = ForwardLSTM(**TINY).fit(ds, static=["k", "elev"])
    sim = model.predict(ds, static=["k", "elev"], period=TEST)
    # before: K taken as degC, km as m
    other = ds.assign(tmean=(ds.tmean + 273.15).assign_attrs(units="K"), elev=(ds.elev / 1000).assign_attrs(units="km"))
    xr.testing.assert_allclose(model.predict(other, static=["k", "elev"], period=TEST), sim, rtol=1e-4, atol=1e-4)
    with pytest.raises(UnitsError, match="'elev' is in 'degC', which cannot be converted to m"):
        model.predict(ds.assign(elev=ds.elev.assign_attrs(units="degC")), static=["k", "elev"], period=TEST)
    # before: a discharge in m3 s-1 was trained on as mm/d and the output labelled mm d-1
    cumecs = ds.assign(streamflow=(ds.streamflow * ds.area * 1e3 / 86400).assign_attrs(units="m3 s-1"))
    by_cumecs = ForwardLSTM(**TINY).fit(cumecs, static=["k", "elev"]).predict(cumecs, static=["k", "elev"],
                                                                               period=TEST)
    assert by_cumecs.attrs["units"] == "mm d-1"
    xr.testing.assert_allclose(by_cumecs, sim, rtol=1e-3, atol=1e-3)


def test_a_time_axis_with_a_gap_or_out_of_order_is_refused(ds):
    model = ForwardLSTM(**TINY).fit(ds)
    gap = ds.sel(time=ds.time.dt.year != 2001)
    # before: sequences ran across the missing year, or over days in random order
    with pytest.raises(ValueError, match="ForwardLSTM.fit: time axis is not daily: 2000-12-31 is followed by 2002"):
        ForwardLSTM(**TINY).fit(gap)
    with pytest.raises(ValueError, match="ForwardLSTM.fit: time axis is not daily"):
        ForwardLSTM(**TINY).fit(ds.isel(time=np.random.default_rng(0).permutation(ds.sizes["time"])))
    with raise_if_dask_computes(), pytest.raises(ValueError, match="ForwardLSTM.predict: time axis is not daily"):
        model.predict(gap.chunk({"basin": 4}))
