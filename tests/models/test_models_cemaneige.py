"""CemaNeige (with and without hysteresis) as a snow option: GRsuite's flow to rounding, exact Jacobians, API, CLI."""

import numpy as np
import pytest
import xarray as xr

import basinsx
import basinsx.models as bm
from basinsx.calibration import calibrate
from basinsx.cli import build_parser
from basinsx.simulation import sensitivity, simulate

from conftest import raise_if_dask_computes

THETA = {"gr4j": [350.0, 0.5, 90.0, 1.7], "gr5j": [350.0, 0.5, 90.0, 1.7, 0.3],
         "gr6j": [350.0, 0.5, 90.0, 1.7, 0.2, 8.0], "gr4j_ode": [350.0, -0.5, 90.0, 1.7],
         "hymod": [250.0, 0.6, 0.7, 0.02, 0.45]}
CN = {"cemaneige": [0.5, 3.5], "cemaneige_hyst": [0.3, 4.0, 20.0, 0.6]}
# a made-up hypsometry (m) reaching above airGR's 4000 m cap of the precipitation gradient
HYPS = np.concatenate([np.linspace(150.0, 1500.0, 81), np.linspace(1600.0, 4300.0, 20)])
STATION = 300.0


@pytest.fixture(scope="module")
def sample():
    """Six years of the snowy Maine basin 01031500 with Oudin PET, loaded."""
    ds = basinsx.open_dataset("sample", basins=["01031500", "01440000"], chunks=None)
    ds = ds.assign(pet=ds.hydro.pet("oudin"))[["prcp", "pet", "tmean", "streamflow"]]
    return ds.isel(time=slice(0, 365 * 6)).astype("float64").load()


def _arrays(sample, basin="01031500"):
    b = sample.sel(basin=basin)
    return b["time"].values.astype("datetime64[D]"), np.vstack([b["prcp"].values, b["pet"].values, b["tmean"].values])


@pytest.mark.parametrize("snow", ["cemaneige", "cemaneige_hyst"])
@pytest.mark.parametrize("name", ["gr4j", "gr5j", "gr6j"])
def test_reproduces_grsuite(sample, name, snow):
    grsuite = pytest.importorskip("grsuite")
    dates, f = _arrays(sample)
    theta = THETA[name] + CN[snow]
    gname = "CemaNeige" + name.upper()
    for hyps, n_layers, station in ((HYPS, 5, STATION), (HYPS, 3, 2000.0), (None, 1, None)):
        cat = grsuite.Catchment(dates, f[0], f[1], temperature=f[2], hypsometry=np.full(101, 250.0) if hyps is None
                                else hyps, elevation=station, n_layers=n_layers)
        m = bm.get(name, snow=snow, hypsometry=hyps, n_layers=n_layers, station_elevation=station)
        for warmup in (0, 365):
            im = cat.inputs(gname)
            ro = grsuite.RunOptions(im, gname, ind_period_run=np.arange(warmup, f.shape[1]),
                                    ind_period_warmup=np.arange(warmup), is_hyst=snow == "cemaneige_hyst")
            ref = grsuite.run_model(im, ro, theta, model=gname)["Qsim"]
            q, _ = m.run(theta, f, warmup=warmup, sensitivities=False, dates=dates)
            np.testing.assert_allclose(q, ref, rtol=1e-10, atol=0)
            assert ref.max() > 1.0


@pytest.mark.parametrize("snow", ["cemaneige", "cemaneige_hyst"])
def test_a_forcing_without_solid_precipitation_runs_as_rain(sample, snow):
    """No snowfall in the forcing: a zero melt threshold (mean annual solid precipitation 0). With the
    hysteresis the snowpack ratio divided zero by it (ZeroDivisionError, as in GRsuite): a warm basin, or
    the regional learner's summer windows, could not run. The snowpack stays empty: rain passes as it is."""
    dates, f = _arrays(sample)
    f[2] = np.maximum(f[2], 35.0)  # warm every day: solid fraction 0 on every layer, up to 4300 m
    theta = THETA["gr4j"] + CN[snow]
    for hyps, n_layers, station in ((None, 1, None), (HYPS, 5, STATION)):
        m = bm.get("gr4j", snow=snow, hypsometry=hyps, n_layers=n_layers, station_elevation=station)
        q, jac = m.run(theta, f, warmup=365, dates=dates)
        q_rain, jac_rain = bm.get("gr4j").run(THETA["gr4j"], f[:2], warmup=365)
        # one layer: the rain itself; five: its layer values averaged back, to round-off
        tol = {} if hyps is None else {"rtol": 1e-12, "atol": 1e-12 * np.abs(jac_rain).max()}
        np.testing.assert_allclose(q, q_rain, **{"rtol": 0, "atol": 0, **tol})
        np.testing.assert_allclose(jac[:, :4], jac_rain, **{"rtol": 0, "atol": 0, **tol})
        assert not jac[:, 4:].any()


@pytest.mark.parametrize("snow", ["cemaneige", "cemaneige_hyst"])
@pytest.mark.parametrize("name", ["gr4j", "gr6j", "gr4j_ode", "hymod"])
def test_jacobian_matches_central_differences(sample, name, snow):
    """Real forcing, five layers; ODE models with fixed steps (exact derivatives of the discrete map)."""
    dates, f = _arrays(sample)
    f = f[:, : 365 * 3]
    dates = dates[: 365 * 3]
    m = bm.get(name, snow=snow, hypsometry=HYPS, station_elevation=STATION)
    theta = np.array(THETA[name] + CN[snow])
    opts = {"method": "fixed", "n_sub": 8} if name in ("gr4j_ode", "hymod") else {}
    q, J = m.run(theta, f, warmup=365, dates=dates, **opts)
    for j, p in enumerate(m.params):
        h = 1e-6 * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        up, down = (m.run(t, f, 365, False, dates=dates, **opts)[0] for t in (tp, tm))
        fd = (up - down) / (2 * h)
        scale = max(np.abs(fd).max(), np.abs(J[:, j]).max())
        if p in ("cn_ctg", "cn_thacc"):
            # they act through switches only (thermal state reaching 0; Gratio reaching 1): flat almost everywhere
            assert scale == 0.0, p
            continue
        assert scale > 0, p
        assert np.abs(fd - J[:, j]).max() / scale < 1e-6, (p, np.abs(fd - J[:, j]).max() / scale)


def test_layers_and_errors(sample):
    dates, f = _arrays(sample)
    m = bm.get("gr4j", snow="cemaneige", hypsometry=HYPS, station_elevation=STATION)
    assert m.params[-2:] == ("cn_ctg", "cn_kf") and m.units["cn_kf"] == "mm degC-1 d-1" and m.forcings[-1] == "tmean"
    assert m.layers.n_layers == 5 and m.layers.z[0] < m.layers.z[-1]
    with pytest.raises(ValueError, match="needs the dates"):
        m.run(THETA["gr4j"] + CN["cemaneige"], f)
    with pytest.raises(ValueError, match="101 elevation quantiles"):
        bm.get("gr4j", snow="cemaneige", hypsometry=HYPS[:50])
    with pytest.raises(ValueError, match="unknown snow option"):
        bm.get("gr4j", snow="glacier")
    with pytest.raises(ValueError, match="pass snow='cemaneige'"):
        bm.get("gr4j", hypsometry=HYPS)
    # one layer without hypsometry: the basin's forcing as it is, no dates needed
    q, _ = bm.get("hymod", snow="cemaneige").run(THETA["hymod"] + CN["cemaneige"], f, 365, False)
    assert np.isfinite(q).all() and q.max() > 1.0


def test_dataset_reads_layers_per_basin(sample):
    ds = sample.assign(hypsometry=xr.DataArray(np.stack([HYPS, HYPS + 200.0]), dims=("basin", "quantile")),
                       station_elevation=("basin", [STATION, 500.0]))
    params = dict(zip(bm.get("gr4j", snow="cemaneige").params, THETA["gr4j"] + CN["cemaneige"]))
    lazy = ds.chunk({"basin": 1})
    with raise_if_dask_computes():
        q = simulate(lazy, params, model="gr4j", warmup=365, snow="cemaneige")
        jac = sensitivity(lazy, params, model="gr4j", warmup=365, snow="cemaneige")
    q, jac = q.compute(), jac.compute()
    for i, b in enumerate(ds.basin.values):
        dates, f = _arrays(ds, b)
        m = bm.get("gr4j", snow="cemaneige", hypsometry=HYPS + 200.0 * i, station_elevation=[STATION, 500.0][i])
        ref, J = m.run(list(params.values()), f, warmup=365, dates=dates)
        np.testing.assert_array_equal(q.sel(basin=b).values, ref)
        np.testing.assert_array_equal(jac.sel(basin=b).values, J)
    assert list(jac.param.values[-2:]) == ["cn_ctg", "cn_kf"]
    cal = calibrate(ds, model="gr4j", snow="cemaneige", period=slice("1982", "1985"), n_starts=2, maxiter=15)
    assert cal["params"].sizes["param"] == 6 and np.isfinite(cal["kge"]).all()
    assert (cal["params"].sel(param="cn_kf") >= 0).all()



def _in_units(ds, factor, units, names=("hypsometry", "station_elevation", "elev_mean")):
    """``ds`` with its elevations (metres) divided by ``factor`` and labelled ``units`` (None: no attribute)."""
    attrs = {} if units is None else {"units": units}
    return ds.assign({n: (ds[n] / factor).assign_attrs(attrs) for n in names if n in ds})


@pytest.fixture(scope="module")
def layered(sample):
    """Two years of the two sample basins on elevation layers in m, with ``station_elevation`` and ``elev_mean``."""
    hyps = xr.DataArray(np.stack([HYPS, HYPS + 200.0]), dims=("basin", "quantile"), attrs={"units": "m"})
    return sample.isel(time=slice(0, 730)).assign(hypsometry=hyps,
                                                  station_elevation=("basin", [STATION, 500.0], {"units": "m"}),
                                                  elev_mean=("basin", [700.0, 900.0], {"units": "m"}))


@pytest.mark.parametrize("station", ["station_elevation", "elev_mean", None])
def test_layer_elevations_in_feet_or_km_give_the_flow_of_metres(layered, station):
    """layer_inputs passed hypsometry and station elevation on without reading their units: feet were taken for
    metres (the probe's flow differed by up to 14.8 mm/d, calibrate's KGE fell from 0.78 to 0.46)."""
    from basinsx.models.cemaneige import layer_inputs

    drop = [v for v in ("station_elevation", "elev_mean") if v != station]
    ds = layered.drop_vars(drop)  # station: that variable; None: the median of the hypsometry
    params = dict(zip(bm.get("gr4j", snow="cemaneige").params, THETA["gr4j"] + CN["cemaneige"]))
    ref = simulate(ds, params, model="gr4j", warmup=365, snow="cemaneige")
    for factor, units in [(0.3048, "ft"), (0.3048, "feet"), (1000.0, "km"), (1.0, None)]:
        other = _in_units(ds, factor, units)
        hyps, z = layer_inputs(other, "cemaneige")
        np.testing.assert_allclose(hyps.values, ds.hypsometry.values, rtol=1e-12)
        np.testing.assert_allclose(z.values, ds[station].values if station else ds.hypsometry.isel(quantile=50).values,
                                   rtol=1e-12)
        assert hyps.attrs["units"] == z.attrs["units"] == "m"
        if units not in (None, "m"):  # the conversion is said on the inputs, naming the variable
            assert hyps.attrs["units_note"] == f"hypsometry converted from {units} to m"
            if station:
                assert z.attrs["units_note"] == f"{station} converted from {units} to m"
        q = simulate(other, params, model="gr4j", warmup=365, snow="cemaneige")
        np.testing.assert_allclose(q.values, ref.values, rtol=1e-9, atol=1e-9, err_msg=str(units))
    lazy = _in_units(ds, 0.3048, "ft").chunk({"basin": 1})
    with raise_if_dask_computes():  # converted lazily
        q = simulate(lazy, params, model="gr4j", warmup=365, snow="cemaneige")
    np.testing.assert_allclose(q.compute().values, ref.values, rtol=1e-9, atol=1e-9)


def test_layer_elevation_conversions_are_recorded_in_the_results(layered):
    """The elevations were converted but the results' ``units_converted`` did not say so (docs/calibration.md)."""
    ds = _in_units(layered.drop_vars("elev_mean"), 0.3048, "ft")
    params = dict(zip(bm.get("gr4j", snow="cemaneige").params, THETA["gr4j"] + CN["cemaneige"]))
    q = simulate(ds, params, model="gr4j", warmup=365, snow="cemaneige")
    fit = ds.hydro.calibrate(model="gr4j", snow="cemaneige", warmup=365, n_starts=1)
    for attrs in (q.attrs, fit.attrs):
        assert "hypsometry converted from ft to m" in attrs["units_converted"]
        assert "station_elevation converted from ft to m" in attrs["units_converted"]


@pytest.mark.parametrize(("var", "units", "match"), [
    ("hypsometry", "kg", "'hypsometry' is in 'kg', which cannot be converted to m"),
    ("hypsometry", "furlong", "'hypsometry' has units 'furlong'"),
    ("station_elevation", "degC", "'station_elevation' is in 'degC'"),
    ("elev_mean", "m3 s-1", "'elev_mean' is in 'm3 s-1'"),
])
def test_layer_elevations_in_units_not_a_length_are_refused(layered, var, units, match):
    from basinsx.units import UnitsError

    ds = layered.drop_vars("station_elevation") if var == "elev_mean" else layered
    ds = ds.assign({var: ds[var].assign_attrs(units=units)})
    params = dict(zip(bm.get("gr4j", snow="cemaneige").params, THETA["gr4j"] + CN["cemaneige"]))
    with pytest.raises(UnitsError, match=match):
        simulate(ds, params, model="gr4j", warmup=365, snow="cemaneige")
    with pytest.raises(UnitsError, match=match):
        calibrate(ds, model="gr4j", snow="cemaneige", period=slice("1982", "1982"), n_starts=1, maxiter=2)

@pytest.mark.parametrize("snow", ["cemaneige", "cemaneige_hyst"])
def test_posterior_and_predictive_run_cemaneige_on_each_basins_layers(sample, snow):
    """posterior took ``snow`` for a bool (``int("cemaneige")`` failed), and predictive read it back as one:
    CemaNeige's draws would have run through the degree-day module."""
    import zlib

    from basinsx.calibration import posterior, predictive
    from basinsx.calibration.uncertainty import posterior_basin

    ds = sample.assign(hypsometry=xr.DataArray(np.stack([HYPS, HYPS + 200.0]), dims=("basin", "quantile")),
                       station_elevation=("basin", [STATION, 500.0])).sel(time=slice("1981", "1985"))
    m = bm.get("gr4j", snow=snow)
    start = xr.DataArray([THETA["gr4j"] + CN[snow]] * 2, dims=("basin", "param"),
                         coords={"basin": ds.basin.values, "param": list(m.params)})
    post = posterior(ds, model="gr4j", snow=snow, period=("1982", "1985"), warmup=365, pet=None, start=start,
                     n_chains=1, n_draws=2)
    assert post.attrs["snow"] == snow and post["draws"].attrs["snow"] == snow
    assert (post["message"] == "").all()
    for i, b in enumerate(ds.basin.values):  # each basin on its own layers
        dates, f = _arrays(ds, b)
        layered = m.with_layers(HYPS + 200.0 * i, [STATION, 500.0][i], dates=dates)
        ref = posterior_basin(layered, f, ds.streamflow.sel(basin=b).values[365:], warmup=365,
                              start=start.sel(basin=b).values, n_chains=1, n_draws=2,
                              seed=[0, zlib.crc32(str(b).encode())])
        np.testing.assert_array_equal(post["draws"].sel(basin=b).values, ref["draws"])
    pred = predictive(ds, post, quantiles=[0.5], warmup=365)
    sims = [simulate(ds, post["draws"].isel(chain=0, draw=k), warmup=365) for k in range(2)]
    np.testing.assert_allclose(pred["q_param"].sel(quantile=0.5), (sims[0] + sims[1]) / 2, rtol=1e-12, atol=0)


def test_cli_snow_takes_the_module_name():
    parser = build_parser()
    base = ["calibrate", "sample", "--out", "x.zarr"]
    assert parser.parse_args(base + ["--snow", "cemaneige_hyst"]).snow == "cemaneige_hyst"
    assert parser.parse_args(base + ["--snow"]).snow == "degree_day"
    assert parser.parse_args(base).snow is None
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--snow", "glacier"])
