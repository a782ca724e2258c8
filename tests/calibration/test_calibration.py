"""Calibration machinery on a linear-reservoir model with hand-derived sensitivities.

The reservoir ``S_t = (1 - k) S_{t-1} + b P_t``, ``q_t = k S_t`` follows the model
interface of :mod:`basinsx.models`, so the optimizers, the multi-start and the
xarray driver are tested independently of the conceptual models themselves.
"""

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from basinsx.calibration import calibrate
from basinsx.calibration.optimize import Problem, calibrate_basin, latin_hypercube

from conftest import raise_if_dask_computes


class LinearReservoir:
    name = "linear_reservoir"
    params = ("b", "k")
    bounds = {"b": (0.2, 1.5), "k": (0.01, 0.9)}
    units = {"b": "1", "k": "d-1"}
    states = ("S",)
    forcings = ("prcp",)

    def run(self, theta, forcing, warmup=0, sensitivities=True):
        b, k = theta
        p = forcing[0]
        T = p.size
        q, J = np.empty(T), np.empty((T, 2))
        s, ds_db, ds_dk = 0.0, 0.0, 0.0
        for t in range(T):
            ds_db = (1 - k) * ds_db + p[t]
            ds_dk = -s + (1 - k) * ds_dk
            s = (1 - k) * s + b * p[t]
            q[t] = k * s
            J[t] = k * ds_db, s + k * ds_dk
        return q[warmup:], (J[warmup:] if sensitivities else None)


MODEL = LinearReservoir()
TRUE = np.array([0.8, 0.3])


def rain(T, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(T) < 0.3, rng.exponential(8.0, T), 0.0)[None, :]


def test_latin_hypercube_strata():
    u = latin_hypercube(8, 3, seed=1)
    assert u.shape == (8, 3)
    for j in range(3):  # one point per stratum on every axis
        assert sorted(np.floor(u[:, j] * 8).astype(int)) == list(range(8))
    np.testing.assert_array_equal(u, latin_hypercube(8, 3, seed=1))


@pytest.mark.parametrize("loss", ["nse", "kge", "fdc_log", "recession"])
def test_unit_cube_gradient_matches_finite_differences(loss):
    forcing = rain(200)
    obs = MODEL.run(TRUE, forcing, warmup=20)[0] * 1.1 + 0.05
    problem = Problem(MODEL, forcing, obs, loss, warmup=20)
    u = np.array([0.4, 0.55])
    _, g = problem.value_grad(u)
    h = 1e-6
    fd = [(problem.value_grad(u + h * e)[0] - problem.value_grad(u - h * e)[0]) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(g, fd, rtol=1e-6)


@pytest.mark.parametrize("optimizer,loss", [("lbfgsb", "nse"), ("lbfgsb", "kge"), ("lm", "sse"), ("lm", "kge")])
def test_parameter_recovery(optimizer, loss):
    forcing = rain(400)
    obs = MODEL.run(TRUE, forcing, warmup=50)[0]
    res = calibrate_basin(MODEL, forcing, obs, loss=loss, warmup=50, n_starts=3, optimizer=optimizer)
    np.testing.assert_allclose(res["params"], TRUE, rtol=1e-3)
    assert res["kge"] > 0.999 and res["nse"] > 0.999 and res["n_evals"] > 3


def test_starts_reaching_a_known_optimum_are_merged(monkeypatch):
    import basinsx.calibration.optimize as optimize

    forcing = rain(300)
    obs = MODEL.run(TRUE, forcing, warmup=30)[0]
    merged = calibrate_basin(MODEL, forcing, obs, loss="nse", warmup=30, n_starts=6)
    monkeypatch.setattr(optimize, "MERGE_RADIUS", 0.0)
    full = calibrate_basin(MODEL, forcing, obs, loss="nse", warmup=30, n_starts=6)
    np.testing.assert_allclose(merged["params"], full["params"], rtol=1e-6)
    assert merged["n_evals"] < full["n_evals"]


class FragileReservoir(LinearReservoir):
    """Fails like a diverging ODE integration for fast reservoirs."""

    def run(self, theta, forcing, warmup=0, sensitivities=True, **solver_options):
        if theta[1] > 0.6:
            raise FloatingPointError("the integration diverged")
        return super().run(theta, forcing, warmup, sensitivities)


def test_a_failing_start_does_not_fail_the_basin():
    forcing = rain(300)
    obs = MODEL.run(TRUE, forcing, warmup=30)[0]
    res = calibrate_basin(FragileReservoir(), forcing, obs, loss="nse", warmup=30, n_starts=4)
    np.testing.assert_allclose(res["params"], TRUE, rtol=1e-3)
    res = calibrate_basin(FragileReservoir(), forcing, obs, loss="sse", warmup=30, n_starts=4, optimizer="lm")
    np.testing.assert_allclose(res["params"], TRUE, rtol=1e-3)
    with pytest.raises(FloatingPointError, match="failed at all 1 parameter sets"):
        calibrate_basin(FragileReservoir(), forcing, obs, loss="nse", warmup=30, n_starts=1, seed=1,
                        solver_options={"method": "fixed"}, n_screen=0)
    # the screening skips the points where the model fails; the basin fails if it fails at all of them
    res = calibrate_basin(FragileReservoir(), forcing, obs, loss="nse", warmup=30, n_starts=1, seed=1)
    np.testing.assert_allclose(res["params"], TRUE, rtol=1e-3)
    broken = FragileReservoir()
    broken.bounds = {"b": (0.2, 1.5), "k": (0.7, 0.9)}  # fails everywhere
    with pytest.raises(FloatingPointError, match="failed at all 8 screened parameter sets"):
        calibrate_basin(broken, forcing, obs, loss="nse", warmup=30, n_screen=8)


def test_lm_rejects_non_residual_loss():
    forcing = rain(50)
    with pytest.raises(ValueError, match="no residual form"):
        calibrate_basin(MODEL, forcing, forcing[0], loss="sae", optimizer="lm")


def make_dataset(n_basins=4, start="1990-01-01", end="1993-12-31"):
    time = pd.date_range(start, end, freq="D")
    forcing = np.concatenate([rain(time.size, seed=i) for i in range(n_basins)])
    theta = np.stack([np.linspace(0.5, 1.2, n_basins), np.linspace(0.1, 0.6, n_basins)], axis=1)
    flow = np.stack([MODEL.run(th, f[None, :])[0] for th, f in zip(theta, forcing)])
    basins = [f"b{i}" for i in range(n_basins)]
    ds = xr.Dataset({"prcp": (("basin", "time"), forcing.astype("float32")),
                     "streamflow": (("basin", "time"), flow.astype("float32"))},
                    coords={"basin": basins, "time": time})
    return ds, theta


def test_calibrate_dataset_and_failures():
    ds, theta = make_dataset()
    ds["streamflow"][1] = np.nan  # no observations at all
    ds["prcp"][2, 400] = np.nan  # bad forcing
    out = calibrate(ds, model=MODEL, loss="nse", period=slice("1991", "1993"), warmup=365, n_starts=2)
    assert out["params"].dims == ("basin", "param")
    assert list(out["param"].values) == ["b", "k"] and list(out["param_units"].values) == ["1", "d-1"]
    for i in (0, 3):
        np.testing.assert_allclose(out["params"][i], theta[i], rtol=2e-3)  # float32 flows
        assert out["converged"][i] and out["nse"][i] > 0.9999
        assert float(out["loss"][i]) == pytest.approx(1 - float(out["nse"][i]), abs=1e-12)
    assert np.isnan(out["params"][1]).all() and "no observed streamflow" in out["message"].values[1]
    assert np.isnan(out["params"][2]).all() and "forcing 'prcp' is NaN on 1991-02-05" in out["message"].values[2]
    assert out["n_evals"][1] == 0 and not out["converged"][2]
    assert out.attrs["model"] == "linear_reservoir" and out.attrs["loss"] == "nse"
    assert out.attrs["period"] == "1991-01-01/1993-12-31" and out.attrs["warmup_days"] == 365


def test_warmup_is_shortened_to_the_record():
    ds, _ = make_dataset(n_basins=1)
    out = calibrate(ds, model=MODEL, period=slice("1990-03-01", "1990-12-31"), warmup=365, n_starts=1)
    assert out.attrs["warmup_days"] == 59


def test_lazy_for_dask_input_and_same_result():
    ds, _ = make_dataset(end="1991-12-31")
    eager = calibrate(ds, model=MODEL, period=slice("1991", "1991"), n_starts=2)
    lazy_in = ds.chunk({"basin": 2, "time": 365})  # time gets rechunked to one chunk
    with raise_if_dask_computes():
        lazy = calibrate(lazy_in, model=MODEL, period=slice("1991", "1991"), n_starts=2)
    assert lazy["params"].chunks == ((2, 2), (2,))
    assert len(lazy["params"].data.dask.layers) < 20  # one task per basin chunk, not per day
    with dask.config.set(scheduler="threads"):
        got = lazy.compute()
    xr.testing.assert_identical(got, eager)


def test_bad_arguments_name_the_problem():
    ds, _ = make_dataset(n_basins=1)
    with pytest.raises(KeyError, match=r"\['prcp'\]"):
        calibrate(ds.drop_vars("prcp"), model=MODEL)
    with pytest.raises(ValueError, match="unknown optimizer 'bfgs'"):
        calibrate(ds, model=MODEL, optimizer="bfgs")
    with pytest.raises(ValueError, match="needs a residual loss"):
        calibrate(ds, model=MODEL, optimizer="lm", loss="huber")
    with pytest.raises(ValueError, match="selects no days"):
        calibrate(ds, model=MODEL, period=slice("2001", "2002"))
    with pytest.raises(TypeError, match="lacks"):
        calibrate(ds, model=object())


class BrokenOnMarker(LinearReservoir):
    """Raises an error no optimizer expects (not ValueError/ArithmeticError) for the basin whose rain holds 77."""

    def run(self, theta, forcing, warmup=0, sensitivities=True):
        if np.any(forcing[0] == 77.0):
            raise RuntimeError("solver library crashed")
        return super().run(theta, forcing, warmup, sensitivities)


def test_any_exception_in_one_basin_fails_that_basin_only():
    ds, theta = make_dataset(n_basins=3)
    ds["prcp"][1, 500] = 77.0
    lazy = calibrate(ds.chunk({"basin": 2}), model=BrokenOnMarker(), loss="nse", period=slice("1991", "1993"),
                     n_starts=1)
    with dask.config.set(scheduler="threads"):
        out = lazy.compute()  # one basin's error does not sink its block, nor the others
    assert out["message"].values[1] == "failed: RuntimeError: solver library crashed"
    assert np.isnan(out["params"][1]).all()
    for i in (0, 2):
        np.testing.assert_allclose(out["params"][i], theta[i], rtol=2e-3)


class ReservoirWithPET(LinearReservoir):
    """The linear reservoir fed by ``prcp - pet``: a model that reads PET."""

    forcings = ("prcp", "pet")

    def run(self, theta, forcing, warmup=0, sensitivities=True):
        if np.any(forcing[1] < 0):
            raise AssertionError("calibrate must clip negative PET before the model sees it")
        return super().run(theta, np.maximum(forcing[:1] - 0.1 * forcing[1:], 0.0), warmup, sensitivities)


def pet_dataset():
    ds, _ = make_dataset(n_basins=4)
    pet = np.full(ds["prcp"].shape, 1.0, dtype="float32")
    pet[1, [10, 400, 800]] = -0.5  # day 10 lies before the warm-up window of a calibration from July 1991
    pet[3, 500:520] = -2.0
    return ds.assign(pet=(("basin", "time"), pet))


def test_negative_pet_counted_per_basin_and_summarised_once():
    import warnings

    from basinsx.models import NegativePETWarning

    ds = pet_dataset()
    kwargs = dict(model=ReservoirWithPET(), loss="nse", period=slice("1991-07", "1993"), warmup=365, n_starts=1)
    with pytest.warns(NegativePETWarning) as record:
        eager = calibrate(ds, **kwargs)
    assert [w.filename for w in record] == [__file__]  # one warning, from this line, not from dask or basinsx
    assert str(record[0].message) == "negative PET clipped to zero (days) in 2 of 4 basins: b1 (2), b3 (20)"
    np.testing.assert_array_equal(eager["n_negative_pet"], [0, 2, 0, 20])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing warns while a lazy result is built and computed
        lazy = calibrate(ds.chunk({"basin": 1}), **kwargs)
        with dask.config.set(scheduler="threads"):
            computed = lazy.compute()
    xr.testing.assert_identical(computed, eager)
    from basinsx import flags

    with pytest.warns(NegativePETWarning, match="in 2 of 4 basins: b1 .2., b3 .20.$") as record:
        flags.warn(computed)
    assert [w.filename for w in record] == [__file__]
    with pytest.raises(ValueError, match="compute the result"):
        flags.summarize(lazy)


def test_period_messages_show_dates_and_progress_needs_in_memory_input():
    ds, _ = make_dataset(n_basins=1)
    with pytest.raises(ValueError, match="period 2001 to 2002 selects no days of the record 1990-01-01 to"):
        calibrate(ds, model=MODEL, period=slice("2001", "2002"))
    with pytest.raises(ValueError, match=r"basinsx.progress.compute\(result\)"):
        calibrate(ds.chunk({"basin": 1}), model=MODEL, progress=True)


def test_chunked_coordinates_are_not_computed(data_dir):
    import basinsx

    ds = basinsx.open_dataset(data_dir / "caravan", basins=["01031500", "01055000", "01078000"])
    ds = ds.sel(time=slice("1990", "1991")).chunk({"basin": 2})  # gauge_name becomes an object dask array
    assert ds["gauge_name"].chunks is not None
    params = {"x1": 300.0, "x2": -0.5, "x3": 80.0, "x4": 1.7}
    with raise_if_dask_computes():
        results = [ds.hydro.calibrate(period="1991", n_starts=1), ds.hydro.simulate(params),
                   ds.hydro.sensitivity(params), ds.hydro.metrics(ds.streamflow * 1.1), ds.hydro.signatures(),
                   ds.hydro.pet("oudin")]
    for result in results:
        assert result["gauge_name"].chunks is not None  # kept, still lazy
    with raise_if_dask_computes(max_computes=1):
        cal = results[0].compute()
    assert list(cal.gauge_name.values) == list(ds.gauge_name.values)


def test_wrong_forcing_fails_its_basin_naming_variable_and_date():
    ds, theta = make_dataset()
    ds["prcp"][0, 500] = -999.0  # a fill value
    ds["prcp"][3, 450] = np.inf
    out = calibrate(ds, model=MODEL, loss="nse", period=slice("1991", "1993"), n_starts=2)
    assert out["message"].values[0] == "failed: forcing 'prcp' is negative (-999) on 1991-05-16"
    assert out["message"].values[3] == "failed: forcing 'prcp' is infinite on 1991-03-27"
    np.testing.assert_allclose(out["params"][1], theta[1], rtol=2e-3)  # the others calibrated


def test_wrong_observed_flow_fails_its_basin_naming_the_date():
    ds, theta = make_dataset()
    ds["streamflow"][0, 500] = -999.0  # a fill value: before, calibrated against it
    ds["streamflow"][3, 450] = np.inf  # before: "the model failed at all screened parameter sets"
    out = calibrate(ds, model=MODEL, loss="nse", period=slice("1991", "1993"), n_starts=2)
    assert out["message"].values[0] == "failed: observed streamflow is negative (-999) on 1991-05-16"
    assert out["message"].values[3] == "failed: observed streamflow is infinite on 1991-03-27"
    assert np.isnan(out["params"][[0, 3]]).all() and np.isnan(out["kge"][[0, 3]]).all()
    np.testing.assert_allclose(out["params"][1], theta[1], rtol=2e-3)  # the others calibrated


def test_units_are_converted_and_recorded():
    ds, theta = make_dataset(n_basins=2)
    area = xr.DataArray([86.4, 172.8], dims="basin", attrs={"units": "km2"})
    cms = (ds.streamflow * area / 86.4).assign_attrs(units="m3 s-1")  # the same flow as a discharge
    ds = ds.assign(streamflow=cms, prcp=(ds.prcp / 1000).assign_attrs(units="m d-1")).assign_coords(area=area)
    out = calibrate(ds, model=MODEL, loss="nse", period=("1991", "1993"), n_starts=2)
    np.testing.assert_allclose(out["params"], theta, rtol=2e-3)
    assert out.attrs["units_converted"] == ("prcp converted from m d-1 to mm d-1; streamflow converted from m3 s-1 "
                                            "to mm d-1 with the basin area")
    with pytest.raises(ValueError, match="'streamflow' is a discharge in 'm3 s-1'.*needs the basin area"):
        calibrate(ds.drop_vars("area"), model=MODEL, period=("1991", "1993"))
    with pytest.raises(ValueError, match="'prcp' is in 'degC', which cannot be converted to mm d-1"):
        calibrate(ds.assign(prcp=ds.prcp.assign_attrs(units="degC")), model=MODEL, period=("1991", "1993"))


def test_time_axis_and_period_are_checked():
    ds, _ = make_dataset(n_basins=1)
    weekly = ds.isel(time=slice(None, None, 7))
    with pytest.raises(ValueError, match="calibrate: time axis is not daily: 1990-01-01 is followed by 1990-01-08"):
        calibrate(weekly, model=MODEL, period=None)
    with pytest.raises(ValueError, match="the time axis must hold dates"):
        calibrate(ds.assign_coords(time=np.arange(ds.sizes["time"])), model=MODEL, period=None)
    with pytest.raises(ValueError, match="period runs backwards: 1995 to 1982"):
        calibrate(ds, model=MODEL, period=("1995", "1982"))


def test_parameters_on_a_bound_are_flagged():
    ds, theta = make_dataset(n_basins=2)
    narrow = LinearReservoir()
    narrow.bounds = {"b": (0.2, 1.5), "k": (0.01, 0.1)}  # the true k (> 0.1) lies outside
    out = calibrate(ds, model=narrow, loss="nse", period=("1991", "1993"), n_starts=2)
    assert out["at_bound"].dims == ("basin", "param")
    assert out["at_bound"].sel(param="k").all() and not out["at_bound"].sel(param="b").any()
    free = calibrate(ds, model=MODEL, loss="nse", period=("1991", "1993"), n_starts=2)
    assert not free["at_bound"].any()


def test_inverted_bounds_of_a_model_object_are_an_error():
    ds, _ = make_dataset(n_basins=1)
    inverted = LinearReservoir()
    inverted.bounds = {"b": (1.5, 0.2), "k": (0.01, 0.9)}
    with pytest.raises(ValueError, match=r"bounds must be finite with low < high; got \{'b': \(1.5, 0.2\)\}"):
        calibrate(ds, model=inverted)


def test_lazy_result_keeps_labels_and_computes_by_basin_block():
    import basinsx
    from basinsx.progress import compute

    ds = basinsx.open_dataset("sample").isel(basin=slice(0, 3)).sel(time=slice("1985", "1987"))
    lazy = calibrate(ds, model="gr4j", period="1986", n_starts=1, pet="oudin")
    # labels as the user gave them (in memory), not chunked as one block at odds with the result's basin chunks
    assert list(lazy.basin.values) == list(ds.basin.values) and lazy.gauge_lat.chunks is None
    (done,) = compute(lazy, progress=False)
    xr.testing.assert_identical(done, lazy.compute())
    assert done.attrs["pet"] == "oudin (computed by basinsx.pet)"


def test_failed_basins_are_not_flagged_at_a_bound():
    ds, _ = make_dataset(n_basins=2)
    ds["streamflow"][1] = np.nan  # basin b1 fails: NaN parameters
    wide = LinearReservoir()
    wide.bounds = {"b": (0.2, 1.5), "k": (0.001, 0.9)}  # k spans two decades: searched (and flagged) on a log scale
    out = calibrate(ds, model=wide, loss="nse", period=("1991", "1993"), n_starts=2)
    assert np.isnan(out["params"][1]).all()
    assert not out["at_bound"].any()


def test_a_basin_with_constant_observed_flow_fails_alone_with_the_reason():
    import basinsx
    from basinsx.models import NegativePETWarning

    ds = basinsx.open_dataset("sample", basins=["01031500", "01440000"], chunks=None).isel(time=slice(0, 3 * 365))
    q = ds["streamflow"].values.copy()
    q[1] = 0.7
    ds["streamflow"] = (ds["streamflow"].dims, q, ds["streamflow"].attrs)
    with pytest.warns(NegativePETWarning):
        res = ds.hydro.calibrate(model="gr4j", loss="nse", warmup=365, n_starts=1, n_screen=4)
    assert np.isfinite(res["params"].sel(basin="01031500")).all()
    assert np.isnan(res["params"].sel(basin="01440000")).all()
    assert "observed flow is constant (0.7 on all 730 observed days" in str(res["message"].sel(basin="01440000").item())
    with pytest.warns(NegativePETWarning):  # sse is defined on a constant record: it calibrates
        res = ds.hydro.calibrate(model="gr4j", loss="sse", warmup=365, n_starts=1, n_screen=4)
    assert np.isfinite(res["params"]).all()
    assert np.isnan(res["nse"].sel(basin="01440000")) and np.isnan(res["kge"].sel(basin="01440000"))  # undefined


def test_observations_must_cover_the_days_after_the_warmup():
    import basinsx.models as bm

    m = bm.get("gr4j")
    rng = np.random.default_rng(0)
    forcing, obs = np.abs(rng.normal(2.0, 1.0, (2, 700))), rng.gamma(2.0, 1.0, 700)
    # before: the screening and L-BFGS-B ran on a loss read past the end of the flow, then an IndexError
    with pytest.raises(ValueError, match="obs has 700 days; the forcing after the 365-day warm-up has 335"):
        calibrate_basin(m, forcing, obs, warmup=365, n_starts=1)


@pytest.mark.parametrize("name", ["xinanjiang", "hymod", "hmodel", "sacsma", "gr4j"])
def test_parameters_of_the_unit_cube_lie_within_the_bounds(name):
    import basinsx.models as bm

    m = bm.get(name)
    rng = np.random.default_rng(0)
    p = Problem(m, np.abs(rng.normal(2.0, 1.0, (len(m.forcings), 60))), rng.gamma(2.0, 1.0, 60), "sse")
    lo, hi = (np.array([m.bounds[k][i] for k in m.params]) for i in (0, 1))
    for u in (np.zeros(len(m.params)), np.ones(len(m.params))):
        theta = p.theta(u)
        assert np.all(theta >= lo) and np.all(theta <= hi)  # before: exp(log(100)) = 100.00000000000004
    calibrate_basin(m, p.forcing, p.obs, "sse", n_starts=1, maxiter=2, start=p.theta(np.ones(len(m.params))))
