"""simulate / sensitivity: labeled output, laziness under dask, equality with the numpy path and Model.run."""

import dask
import numpy as np
import pytest
import xarray as xr

import basinsx
import basinsx.models as bm
from basinsx.simulation import sensitivity, simulate

from conftest import raise_if_dask_computes

# ERA5-Land PET has a few negative values; their warning is tested on its own below
pytestmark = pytest.mark.filterwarnings("ignore::basinsx.models.NegativePETWarning")

P = {"x1": 350.0, "x2": 0.5, "x3": 90.0, "x4": 1.7}


@pytest.fixture(scope="module")
def sample():
    ds = basinsx.open_dataset("sample")
    assert ds["prcp"].chunks is not None
    return ds.isel(time=slice(0, 3 * 365))


def _per_basin_params(ds):
    n = ds.sizes["basin"]
    vals = np.column_stack([np.linspace(200, 900, n), np.linspace(-1, 1, n), np.linspace(40, 200, n),
                            np.linspace(1.2, 3.5, n)])
    return xr.DataArray(vals, dims=("basin", "param"), coords={"basin": ds["basin"], "param": list(P)})


def test_simulate_is_lazy_and_equals_numpy_path(sample):
    params = _per_basin_params(sample)
    with raise_if_dask_computes():
        q = simulate(sample, params, warmup=100)
    assert q.name == "q_sim" and q.dims == ("basin", "time") and q.attrs["units"] == "mm d-1"
    assert q.chunks[0] == sample["prcp"].chunks[0]  # one task per basin chunk
    np.testing.assert_array_equal(q["time"].values, sample["time"].values[100:])
    qd = q.compute()
    qn = simulate(sample.compute(), params, warmup=100)
    with dask.config.set(scheduler="threads"):
        np.testing.assert_array_equal(q.compute().values, qd.values)
    assert isinstance(qn.data, np.ndarray)
    np.testing.assert_array_equal(qd.values, qn.values)
    # and both equal the plain kernel of one basin
    b = 3
    f = np.vstack([sample["prcp"][b].values, np.maximum(sample["pet"][b].values, 0)]).astype(np.float64)
    q_ref, _ = bm.get("gr4j").run(params[b].values, f, warmup=100, sensitivities=False)
    np.testing.assert_allclose(qd[b].values, q_ref, rtol=1e-12)


def test_parameters_with_basin_coordinates_stay_lazy(sample):
    # a calibration's params carry the basin coordinates (area, gauge_name, ...); chunked with the forcing they
    # were compared to the forcing's at call time: five computes per call, each a scheduler round trip
    params = _per_basin_params(sample).assign_coords(
        {c: sample[c].compute() for c in ("area", "gauge_name", "gauge_lat") if c in sample.coords})
    with raise_if_dask_computes():
        q = simulate(sample, params, warmup=100)
        jac = sensitivity(sample, params, warmup=100)
    bare = _per_basin_params(sample)
    np.testing.assert_array_equal(q.compute().values, simulate(sample, bare, warmup=100).compute().values)
    assert jac.dims == ("basin", "time", "param")


def test_sensitivity_is_lazy_and_matches_model_run(sample):
    with raise_if_dask_computes():
        jac = sensitivity(sample, P, warmup=30)
    assert jac.dims == ("basin", "time", "param")
    assert list(jac["param"].values) == list(P) and list(jac["param_units"].values) == ["mm", "mm d-1", "mm", "d"]
    assert len(jac.data.dask.keys()) > 0 and jac.chunks[0] == sample["prcp"].chunks[0]
    jd = jac.compute()
    jn = sensitivity(sample.compute(), P, warmup=30)
    np.testing.assert_array_equal(jd.values, jn.values)
    f = np.vstack([sample["prcp"][0].values, np.maximum(sample["pet"][0].values, 0)]).astype(np.float64)
    _, j_ref = bm.get("gr4j").run(list(P.values()), f, warmup=30)
    np.testing.assert_allclose(jd[0].values, j_ref, rtol=1e-12)


def test_ode_model_with_snow_and_dict_of_arrays(sample):
    ds = sample.isel(basin=slice(0, 3), time=slice(0, 400))
    m = bm.get("hymod", snow=True)
    params = {"cmax": xr.DataArray([150.0, 300.0, 450.0], dims="basin", coords={"basin": ds["basin"]}),
              "bexp": 0.5, "alpha": 0.8, "ks": 0.02, "kq": 0.5, "T_tr": 0.0, "f_dd": 2.5}
    with raise_if_dask_computes():
        q = simulate(ds, params, model="hymod", snow=True, method="fixed", n_sub=8)
    q = q.compute()
    f = np.vstack([ds[v][2].values for v in m.forcings]).astype(np.float64)
    f[1] = np.maximum(f[1], 0)
    q_ref, _ = m.run([450.0, 0.5, 0.8, 0.02, 0.5, 0.0, 2.5], f, sensitivities=False, method="fixed", n_sub=8)
    np.testing.assert_allclose(q[2].values, q_ref, rtol=1e-12)
    assert "snow" in q.attrs["long_name"]


def test_bad_forcing_fails_its_basin_only_flagged_with_variable_and_date(sample):
    # before: one basin's NaN forcing raised, and a lazy batch lost every basin at compute time
    ds = sample.isel(basin=slice(0, 2), time=slice(0, 300)).compute()
    clean = simulate(ds, P)
    ds["prcp"][1, 50] = np.nan
    line = rf"bad forcing, flow NaN in 1 of 2 basins: {ds.basin.values[1]} \(forcing 'prcp' is NaN on 1981-02-20\)"
    with pytest.warns(UserWarning, match=line) as record:
        q = simulate(ds, P)
    mine = [w for w in record if "bad forcing" in str(w.message)]
    assert len(mine) == 1 and mine[0].filename == __file__  # once, from this line
    xr.testing.assert_identical(q[0].drop_vars("forcing_problem"), clean[0].drop_vars("forcing_problem"))
    assert np.isnan(q[1]).all() and q["forcing_problem"].values.tolist() == ["", "forcing 'prcp' is NaN on 1981-02-20"]
    with raise_if_dask_computes():
        lazy = sensitivity(ds.chunk({"basin": 1}), P)
    lazy = lazy.compute()
    assert np.isfinite(lazy[0]).all() and np.isnan(lazy[1]).all()
    assert lazy["forcing_problem"].values[1] == "forcing 'prcp' is NaN on 1981-02-20"
    ds["prcp"][1, 40] = -999.0
    with pytest.warns(UserWarning, match=r"forcing 'prcp' is negative \(-999\) on 1981-02-10"):
        simulate(ds, P)


def test_nan_parameters_give_nan_flow(sample):
    params = _per_basin_params(sample.isel(basin=slice(0, 2)))
    params[1] = np.nan  # a basin whose calibration failed
    q = simulate(sample.isel(basin=slice(0, 2)), params).compute()
    assert np.isfinite(q[0]).all() and np.isnan(q[1]).all()


def test_bad_input(sample):
    with pytest.raises(ValueError, match="missing \\['x4'\\]"):
        simulate(sample, {"x1": 1.0, "x2": 0.0, "x3": 50.0})
    with pytest.raises(KeyError, match="tmean"):
        simulate(sample[["prcp", "pet"]], {**P, "T_tr": 0.0, "f_dd": 2.0}, snow=True)
    with pytest.raises(ValueError, match="warmup"):
        simulate(sample, P, warmup=sample.sizes["time"])
    with pytest.raises(TypeError):
        simulate(sample["prcp"], P)


def test_accessor_delegates(sample):
    ds = sample.isel(basin=slice(0, 2), time=slice(0, 200)).compute()
    np.testing.assert_array_equal(ds.hydro.simulate(P, model="gr4j").values, simulate(ds, P).values)
    np.testing.assert_array_equal(ds.hydro.sensitivity(P).values, sensitivity(ds, P).values)


@pytest.mark.filterwarnings("default::basinsx.models.NegativePETWarning")
def test_negative_pet_is_zero_and_warned_per_basin(sample):
    ds = sample.isel(basin=slice(0, 2), time=slice(0, 300)).compute()
    ds["pet"] = ds["pet"].clip(min=0.0)
    ds["pet"][1, [10, 20, 30]] = 0.0
    clipped = simulate(ds, P)
    ds["pet"][1, [10, 20, 30]] = -0.3
    with pytest.warns(bm.NegativePETWarning, match=rf"clipped to zero \(days\) in 1 of 2 basins: "
                      rf"{ds.basin.values[1]} \(3\)") as record:
        q = simulate(ds, P)
    assert len(record) == 1 and record[0].filename == __file__  # once, from this line, never from dask
    np.testing.assert_array_equal(q.values, clipped.values)
    assert q["negative_pet_days"].values.tolist() == [0, 3]
    lazy = simulate(ds.chunk({"basin": 1}), P)  # lazy: nothing warns; the flag is a coordinate to summarise
    assert lazy["negative_pet_days"].chunks is not None
    assert lazy["negative_pet_days"].compute().values.tolist() == [0, 3]


def test_a_time_axis_that_is_not_daily_is_an_error(sample):
    ds = sample.isel(basin=slice(0, 2), time=slice(0, 300)).compute()
    with pytest.raises(ValueError, match="simulate: time axis is not daily"):
        simulate(ds.isel(time=slice(None, None, 2)), P)


def test_pet_is_chosen_and_recorded(sample):
    ds = sample.isel(basin=slice(0, 2), time=slice(0, 300)).compute()
    q = simulate(ds, P, pet="oudin")
    xr.testing.assert_equal(q, simulate(ds.assign(pet=ds.hydro.pet("oudin")), P).assign_attrs(q.attrs))
    assert q.attrs["pet"] == "oudin (computed by basinsx.pet)"
    assert not np.array_equal(q.values, simulate(ds, P).values)


def test_parameters_align_to_basins_by_label(sample):
    ds = sample.isel(basin=slice(0, 3), time=slice(0, 300)).compute()
    five = _per_basin_params(sample.isel(basin=slice(0, 5)))
    ref = simulate(ds, five.isel(basin=slice(0, 3)))
    # another order, a superset of the basins: each basin runs its own parameters
    xr.testing.assert_identical(simulate(ds, five.isel(basin=[4, 2, 0, 1, 3])), ref)
    lazy = simulate(ds.chunk({"basin": 2}), five[::-1])
    xr.testing.assert_identical(lazy.compute(), ref.chunk({"basin": 2}).compute())
    jac = sensitivity(ds, five.isel(basin=slice(0, 3)))
    np.testing.assert_array_equal(sensitivity(ds, five[::-1]).values, jac.values)
    # one basin as a scalar coordinate picks its own row of a (basin, param) table
    np.testing.assert_array_equal(simulate(ds.isel(basin=1), five).values, ref[1].values)
    as_dict = {p: five.sel(param=p, drop=True) for p in P}
    xr.testing.assert_identical(simulate(ds, {**as_dict, "x1": as_dict["x1"][::-1]}), ref)


def test_parameters_of_other_basins_are_an_error_naming_them(sample):
    ds = sample.isel(basin=slice(0, 3), time=slice(0, 300)).compute()
    five = _per_basin_params(sample.isel(basin=slice(0, 5)))
    b = [str(v) for v in ds["basin"].values]
    with pytest.raises(ValueError, match=rf"params has no values for basin\(s\) \['{b[1]}'\]"):
        simulate(ds.isel(basin=1), five.isel(basin=4))  # another basin's parameters (scalar coordinate)
    with pytest.raises(ValueError, match=rf"no values for basin\(s\) \['{b[1]}'\]"):
        simulate(ds.isel(basin=[1]), five.isel(basin=[4]))
    with pytest.raises(ValueError, match=rf"parameter 'x2' has no values for basin\(s\) \['{b[2]}'\]"):
        simulate(ds, {**P, "x2": five.sel(param="x2", drop=True).isel(basin=slice(0, 2))})  # before: NaN flow
    with pytest.raises(ValueError, match=rf"no values for basin\(s\) \['{b[0]}'"):
        sensitivity(ds, five.isel(basin=slice(1, 5)))


def test_parameters_of_another_model_are_an_error(sample):
    ds = sample.isel(basin=slice(0, 2), time=slice(0, 200)).compute()
    gr6j = xr.DataArray([350.0, 0.5, 90.0, 1.7, 0.1, 5.0], dims="param",
                        coords={"param": ["x1", "x2", "x3", "x4", "x5", "x6"]})
    with pytest.raises(ValueError, match=r"unexpected \['x5', 'x6'\]"):
        simulate(ds, gr6j, model="gr4j")  # before: ran gr4j on the first four
    snowy = xr.DataArray([*P.values(), 0.0, 2.5], dims="param", coords={"param": [*P, "T_tr", "f_dd"]})
    with pytest.raises(ValueError, match=r"unexpected \['T_tr', 'f_dd'\]"):
        simulate(ds, snowy)  # before: ran gr4j without its snow module
    twice = xr.DataArray([*P.values(), 400.0], dims="param", coords={"param": [*P, "x1"]})
    with pytest.raises(ValueError, match=r"names \['x1'\] more than once"):
        simulate(ds, twice)  # before: xarray's InvalidIndexError, naming nothing


def test_warmup_must_be_a_whole_number_of_days(sample):
    ds = sample.isel(basin=slice(0, 2), time=slice(0, 200)).compute()
    with pytest.raises(ValueError, match="whole number of days; got 2.7"):
        simulate(ds, P, warmup=2.7)  # before: two days dropped, attrs saying 2.7
    assert simulate(ds, P, warmup=np.int64(3)).attrs["warmup_days"] == 3


def test_forcing_whose_basins_lie_along_another_dim_is_refused(sample):
    # before: with dask, every basin's parameters ran on every gauge's forcing (a 3 x 3 'result'); in memory a
    # cryptic "dimension 'basin' already exists as a scalar variable"
    ds = sample.isel(basin=slice(0, 3), time=slice(0, 400))
    params = _per_basin_params(ds)
    for forcing in (ds.swap_dims(basin="gauge_id"), ds.swap_dims(basin="gauge_id").compute()):
        with pytest.raises(ValueError, match="along dim 'gauge_id'.*swap_dims"):
            simulate(forcing, params, warmup=100)


def test_forcing_with_a_basin_twice_is_refused(sample):
    # before: the second copy's forcing ran with the first copy's parameters, silently
    ds = sample.isel(basin=[0, 1, 2], time=slice(0, 400)).compute()
    twice = ds.assign_coords(basin=[str(ds.basin.values[0]), str(ds.basin.values[1]), str(ds.basin.values[0])])
    with pytest.raises(ValueError, match=r"basin\(s\) \['01031500'\] more than once"):
        simulate(twice, _per_basin_params(ds.isel(basin=[0, 1])), warmup=100)


def test_time_axes_basinsx_cannot_read_are_refused_with_advice_that_keeps_the_dates(sample):
    ds = sample.isel(basin=[0], time=slice(0, 400)).compute()
    utc = ds.assign_coords(time=ds.indexes["time"].tz_localize("UTC"))
    with pytest.raises(ValueError, match="time zone"):  # before: results with integer 'dates'
        simulate(utc, P, warmup=100)
    text = ds.assign_coords(time=ds.indexes["time"].strftime("%Y-%m-%d"))
    with pytest.raises(ValueError, match=r"pd.to_datetime\(ds.time.values\)") as err:
        simulate(text, P, warmup=100)
    assert "date_range('1990-01-01'" not in str(err.value)  # before: advice that moved every date


def test_a_cftime_calendar_is_refused_naming_it(sample):
    pytest.importorskip("cftime")
    noleap = sample.isel(basin=[0], time=slice(0, 400)).compute().convert_calendar("noleap")
    with pytest.raises(ValueError, match="'noleap' calendar") as err:
        simulate(noleap, P, warmup=100)
    assert "date_range('1990-01-01'" not in str(err.value)  # before: advice that moved every date
