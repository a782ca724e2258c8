import HydroErr as he
import numpy as np
import pytest
import xarray as xr

import basinsx
from basinsx.metrics import METRICS

from conftest import raise_if_dask_computes


@pytest.fixture(scope="module")
def pair():
    ds = basinsx.open_dataset("sample", chunks=None)
    sim = (ds.streamflow.shift(time=2) * 0.8 + 0.2).rename("sim")
    return ds, sim


def test_against_hydroerr_on_real_flow(pair):
    ds, sim = pair
    m = ds.hydro.metrics(sim)
    for i, basin in enumerate(ds.basin.values):
        o, s = ds.streamflow.values[i], sim.values[i]
        ok = np.isfinite(o) & np.isfinite(s)
        o, s = o[ok].astype(float), s[ok].astype(float)
        assert m.nse[i] == pytest.approx(he.nse(s, o), rel=1e-9)
        assert m.kge[i] == pytest.approx(he.kge_2009(s, o), rel=1e-9)
        assert m.kge2012[i] == pytest.approx(he.kge_2012(s, o), rel=1e-9)
        assert m.rmse[i] == pytest.approx(he.rmse(s, o), rel=1e-9)
        assert m.r[i] == pytest.approx(np.corrcoef(s, o)[0, 1], rel=1e-9)
        assert m.pbias[i] == pytest.approx(100 * (s - o).sum() / o.sum(), rel=1e-9)
        eps = 0.01 * o.mean()
        lo, ls = np.log(o + eps), np.log(s + eps)
        assert m.lognse[i] == pytest.approx(1 - ((ls - lo) ** 2).sum() / ((lo - lo.mean()) ** 2).sum(), rel=1e-9)
        assert m.n_obs[i] == ok.sum()
    assert set(m.data_vars) == set(METRICS) and m.nse.attrs["long_name"]


def test_perfect_simulation_and_nan_pairs():
    obs = xr.DataArray([[1.0, 2.0, np.nan, 4.0, 3.0]], dims=("basin", "time"))
    sim = xr.DataArray([[1.0, 2.0, 5.0, 4.0, np.nan]], dims=("basin", "time"))
    m = obs.hydro.metrics(sim, obs)
    assert m.n_obs.item() == 3
    for name in ("nse", "kge", "kge2012", "r", "alpha", "beta", "gamma", "lognse"):
        assert m[name].item() == pytest.approx(1.0)
    assert m.rmse.item() == 0 and m.pbias.item() == 0
    empty = obs.hydro.metrics(sim * np.nan, obs)
    assert np.isnan(empty.nse.item()) and empty.n_obs.item() == 0


def test_constant_series_leave_the_efficiencies_undefined():
    # the observed variance is zero: NSE, log-NSE, r, alpha and the KGEs are undefined (NaN), not the -6e26 that
    # round-off in the mean made of 1 - sse / 1e-30 (HydroErr's -6.5e30)
    t = np.arange(1000)
    obs = xr.DataArray([np.full(1000, 0.1), np.full(1000, 0.0), 0.1 + 0.05 * np.sin(t / 10)], dims=("basin", "time"))
    sim = xr.DataArray([0.1 + 0.05 * np.sin(t / 10), 0.1 + 0.05 * np.sin(t / 10), np.full(1000, 0.1)],
                       dims=("basin", "time"))
    m = obs.hydro.metrics(sim, obs)
    for name in ("nse", "lognse", "r", "alpha", "gamma", "kge", "kge2012"):
        assert np.isnan(m[name].values[:2]).all(), name
    assert np.isfinite(m.rmse.values).all() and m.beta.values[0] == pytest.approx(1.0008144, rel=1e-6)
    # a constant simulation of a varying flow: no correlation (NaN), no variability (alpha 0), NSE finite
    assert np.isnan(m.r.values[2]) and m.alpha.values[2] == 0.0 and np.isnan(m.kge.values[2])
    assert -1.0 < m.nse.values[2] < 0.0
    same = obs.hydro.metrics(obs, obs)  # constant and equal: still undefined
    assert np.isnan(same.nse.values[:2]).all() and same.nse.values[2] == 1.0


def test_lazy_and_equal_to_numpy(pair):
    ds, sim = pair
    lazy = basinsx.open_dataset("sample")
    with raise_if_dask_computes():
        m = lazy.hydro.metrics(lazy.streamflow.shift(time=2) * 0.8 + 0.2)
    xr.testing.assert_allclose(m.compute(), ds.hydro.metrics(sim))


def test_bad_input(pair):
    ds, sim = pair
    with pytest.raises(ValueError, match="'sim' is in 'degC', which cannot be converted to mm d-1"):
        ds.hydro.metrics(sim.assign_attrs(units="degC"))
    with pytest.raises(ValueError, match="sim and obs share no basin labels"):
        ds.hydro.metrics(sim.assign_coords(basin=[f"x{b}" for b in sim.basin.values]))
    with pytest.raises(ValueError, match="no dimension 'date'"):
        ds.hydro.metrics(sim, dim="date")
    with pytest.raises(KeyError, match="variable 'flow' not in the dataset"):
        ds.hydro.metrics(sim, obs="flow")


def test_discharge_is_converted_to_the_observed_depth_rate(pair):
    ds, sim = pair
    cms = (sim * ds.area / 86.4).assign_attrs(units="m3 s-1")  # the same flow as a discharge
    xr.testing.assert_allclose(ds.hydro.metrics(cms), ds.hydro.metrics(sim), rtol=1e-5)


def test_a_side_without_units_is_taken_in_mm_per_day(pair):
    ds, sim = pair
    ds = ds.isel(basin=slice(0, 3))
    obs, sim = ds.streamflow.drop_attrs(), sim.isel(basin=slice(0, 3)).assign_attrs(units="mm d-1")
    ref = basinsx.metrics.metrics(sim, obs)
    cms = (sim * ds.area / 86.4).assign_attrs(units="m3 s-1")
    # before: the discharge was scored as a depth rate (NSE -82)
    xr.testing.assert_allclose(basinsx.metrics.metrics(cms, obs), ref, rtol=1e-5)
    xr.testing.assert_allclose(basinsx.metrics.metrics(sim.drop_attrs(), (obs * ds.area / 86.4).assign_attrs(
        units="m3 s-1")), ref, rtol=1e-5)
    assert ref["rmse"].attrs["units"] == "mm d-1"
    # the observed flow's spelling, not either of the two at random
    assert basinsx.metrics.metrics(sim, obs.assign_attrs(units="mm/d"))["rmse"].attrs["units"] == "mm/d"
    with pytest.raises(ValueError, match="'sim' is in 'degC', which cannot be converted to mm d-1"):
        basinsx.metrics.metrics(sim.assign_attrs(units="degC"), obs)
