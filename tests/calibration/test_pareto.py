"""The front between two calibration losses, on the fast linear reservoir of test_posterior."""

import numpy as np
import pytest
import xarray as xr
from test_posterior import FastReservoir, reservoir_dataset

from basinsx.calibration import calibrate
from basinsx.calibration.multiobjective import pareto, pareto_basin

from conftest import raise_if_dask_computes


def positive_dataset(n_basins):
    ds = reservoir_dataset(n_basins, noise=0.3)
    return ds.assign(streamflow=abs(ds["streamflow"]))  # the log loss needs flow >= 0


def test_front_runs_from_one_optimum_to_the_other():
    ds = positive_dataset(1)
    model = FastReservoir()
    forcing, obs = ds["prcp"].values[:1], ds["streamflow"].values[0][100:]
    res = pareto_basin(model, forcing, obs, losses=("nse", "lognse"), n_points=6, warmup=100, n_starts=3)
    ends = [calibrate(ds, model=model, loss=loss, period=None, warmup=100, n_starts=3) for loss in ("nse", "lognse")]
    np.testing.assert_allclose(res["loss"][0, 0], float(ends[0]["loss"][0]), rtol=1e-6)
    np.testing.assert_allclose(res["loss"][-1, 1], float(ends[1]["loss"][0]), rtol=1e-4)
    # weighted-sum optima: the first loss can only grow and the second only shrink as w moves to the second
    assert np.all(np.diff(res["loss"][:, 0]) >= -1e-9) and np.all(np.diff(res["loss"][:, 1]) <= 1e-9)
    assert res["loss"][-1, 0] > res["loss"][0, 0] + 1e-4 and not res["dominated"].any()
    assert res["n_evals"] > 6


def test_pareto_dataset_is_lazy_and_matches_the_kernel():
    ds = positive_dataset(2)
    kw = {"model": FastReservoir(), "losses": ("nse", "lognse"), "n_points": 4, "period": None, "warmup": 100,
          "n_starts": 2}
    with raise_if_dask_computes():
        lazy = pareto(ds.chunk({"basin": 1}), **kw)
    out = lazy.compute()
    assert out["params"].dims == ("basin", "point", "param") and out["loss"].dims == ("basin", "point", "objective")
    assert list(out["objective"].values) == ["nse", "lognse"] and out["weight"].values[-1] == 1.0
    one = pareto_basin(FastReservoir(), ds["prcp"].values[1:2], ds["streamflow"].values[1][100:], ("nse", "lognse"),
                       4, 100, 2)
    np.testing.assert_allclose(out["loss"][1], one["loss"])
    xr.testing.assert_identical(out, pareto(ds, **kw))


def test_pareto_arguments():
    ds = reservoir_dataset(1)
    with pytest.raises(ValueError, match="between two losses"):
        pareto(ds, model=FastReservoir(), losses=("nse",))
    with pytest.raises(ValueError, match="unknown loss 'foo'"):
        pareto(ds, model=FastReservoir(), losses=("nse", "foo"))


def test_front_plot():
    pytest.importorskip("matplotlib")
    ds = positive_dataset(1)
    front = pareto(ds, model=FastReservoir(), losses=("nse", "lognse"), n_points=3, period=None, warmup=100,
                   n_starts=2)
    ax = front.hydro.plot.pareto()
    assert ax.get_xlabel() == "nse loss" and ax.get_ylabel() == "lognse loss"
    np.testing.assert_allclose(ax.lines[0].get_xydata(), front["loss"].values[0])


def test_cemaneige_front_runs_on_the_basins_elevation_layers():
    import basinsx
    from basinsx.calibration.losses import get_loss

    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).sel(time=slice("1990", "1992"))
    ds = ds.assign(hypsometry=ds["elev_mean"] + xr.DataArray(np.linspace(-600.0, 900.0, 101), dims="quantile"))
    kw = {"model": "gr4j", "snow": "cemaneige", "pet": "oudin", "losses": ("kge", "nse"), "n_points": 2,
          "n_starts": 1, "maxiter": 10, "period": ("1991", "1992"), "warmup": 365}
    front = pareto(ds, **kw).isel(basin=0)
    # the recorded losses are those of the layered model, as simulate runs it (before: of one layer)
    q = ds.hydro.simulate(front["params"].isel(point=1, drop=True), model="gr4j", snow="cemaneige", pet="oudin",
                          warmup=365).isel(basin=0)
    obs = ds["streamflow"].isel(basin=0).sel(time=q["time"]).values
    for k, name in enumerate(("kge", "nse")):
        np.testing.assert_allclose(get_loss(name)(q.values, obs)[0], front["loss"][1, k], rtol=1e-6)


def test_results_record_the_snow_module_so_simulate_runs_them_as_calibrated():
    import basinsx

    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).sel(time=slice("1990", "1991"))
    kw = {"snow": True, "pet": "oudin", "n_starts": 1, "maxiter": 5, "period": ("1991", "1991"), "warmup": 365}
    cal = calibrate(ds, model="gr4j", n_screen=0, **kw)
    assert cal.attrs["snow"] == "degree_day" and cal["params"].attrs["snow"] == "degree_day"
    # before: simulate took the result for plain gr4j (and cut T_tr, f_dd, or refused them)
    xr.testing.assert_identical(ds.hydro.simulate(cal, pet="oudin"), ds.hydro.simulate(cal, snow=True, pet="oudin"))
    xr.testing.assert_identical(ds.hydro.simulate(cal["params"], pet="oudin"),
                                ds.hydro.simulate(cal, snow=True, pet="oudin"))
    front = pareto(ds, model="gr4j", n_points=2, **kw)
    assert front.attrs["snow"] == "degree_day" and front.attrs["model"] == "gr4j"
    assert (front.attrs["n_starts"], front.attrs["seed"], front.attrs["maxiter"]) == (1, 0, 5)
    plain = calibrate(ds, model="gr4j", n_screen=0, **{**kw, "snow": False})
    assert plain.attrs["snow"] == 0
