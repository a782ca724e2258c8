"""Calibration of the discrete GR4J: parameter recovery, the Dataset API, schedulers."""

import warnings

import dask
import numpy as np
import pytest
import xarray as xr

import basinsx
import basinsx.models as bm
from basinsx.calibration import calibrate
from basinsx.calibration.optimize import calibrate_basin

TRUE = np.array([300.0, 0.8, 60.0, 1.9])


@pytest.fixture(scope="module")
def sample():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.NegativePETWarning)
        ds = basinsx.open_dataset("sample", chunks=None)
    # ERA5-Land PET has small negative values; the model clips them (with a warning).
    return ds.assign(pet=ds["pet"].clip(min=0))


@pytest.fixture(scope="module")
def synthetic(sample):
    """Two real basins' forcing with flows GR4J itself generated from known parameters."""
    ds = sample.isel(basin=[7, 8]).sel(time=slice("1985", "1989"))[["prcp", "pet"]]
    theta = np.array([TRUE, [700.0, -0.5, 150.0, 3.2]])
    model = bm.get("gr4j")
    flow = [model.run(th, np.vstack([ds["prcp"][i], ds["pet"][i]]), sensitivities=False)[0]
            for i, th in enumerate(theta)]
    return ds.assign(streamflow=(("basin", "time"), np.array(flow))), theta


@pytest.mark.parametrize("optimizer,loss", [("lbfgsb", "nse"), ("lbfgsb", "kge"), ("lm", "nse"), ("lm", "sse")])
def test_gr4j_parameter_recovery(synthetic, optimizer, loss):
    ds, _ = synthetic
    b = ds.isel(basin=1)
    forcing = np.vstack([b["prcp"], b["pet"]]).astype(float)
    obs = bm.get("gr4j").run(TRUE, forcing, warmup=365, sensitivities=False)[0]
    res = calibrate_basin(bm.get("gr4j"), forcing, obs, loss=loss, warmup=365, n_starts=4, optimizer=optimizer)
    np.testing.assert_allclose(res["params"], TRUE, rtol=1e-3)
    assert res["kge"] > 0.9999 and res["converged"]


def test_calibrate_accessor_recovers_and_labels(synthetic):
    ds, theta = synthetic
    out = ds.hydro.calibrate(model="gr4j", loss="nse", period=slice("1986", "1989"), warmup=365, n_starts=3)
    assert list(out["param"].values) == ["x1", "x2", "x3", "x4"]
    np.testing.assert_allclose(out["params"].values, theta, rtol=1e-3)
    assert (out["nse"] > 0.9999).all() and out["converged"].all()
    assert out.attrs["model"] == "gr4j" and out.attrs["warmup_days"] == 365
    # The calibrated parameters feed simulate directly.
    sim = ds.hydro.simulate(out["params"], model="gr4j", warmup=365)
    np.testing.assert_allclose(sim.sel(time="1986").values, ds["streamflow"].sel(time="1986").values, rtol=1e-3,
                               atol=1e-4)


@pytest.mark.slow
def test_same_result_under_threads_and_a_2_process_localcluster(synthetic):
    distributed = pytest.importorskip("distributed")
    ds, _ = synthetic
    ds = ds.isel(time=slice(0, 3 * 365)).chunk({"basin": 1})
    kw = dict(model="gr4j", loss="kge", period=slice("1986", "1987"), warmup=365, n_starts=2)
    eager = calibrate(ds.compute(), **kw)
    lazy = calibrate(ds, **kw)
    assert lazy["params"].chunks == ((1, 1), (4,))
    with dask.config.set(scheduler="threads"):
        xr.testing.assert_identical(lazy.compute(), eager)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster):
            xr.testing.assert_identical(lazy.compute(), eager)


def test_failing_basins_do_not_stop_the_batch(sample):
    ds = sample.isel(basin=[0, 1, 2]).sel(time=slice("1984", "1986")).copy(deep=True)
    ds["streamflow"][1] = np.nan
    ds["prcp"][2, 500] = np.nan
    out = calibrate(ds, model="gr4j", period=slice("1985", "1986"), warmup=365, n_starts=1)
    assert np.isfinite(out["params"][0]).all() and out["converged"][0]
    assert np.isnan(out["params"][1:]).all()
    assert out["message"].values[1].startswith("failed: no observed streamflow")
    assert out["message"].values[2] == "failed: forcing 'prcp' is NaN on 1985-05-15"
