"""Signatures: CAMELS values reproduced from the same flows, analytic cases, labels and laziness."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import basinsx
from basinsx.signatures import SIGNATURES, baseflow, signatures, signatures_1d

from conftest import raise_if_dask_computes

CAMELS_PERIOD = slice("1989-10-01", "2009-09-30")
# Perennial sample basins whose Caravan flows agree with the CAMELS v1.2 flows (Caravan
# rounds flows to 0.01 mm/d, which moves zero-flow days and the lowest quantiles elsewhere).
PERENNIAL = ["01031500", "01440000", "01606500", "12010000"]
TOLERANCE = {"q_mean": 0.015, "baseflow_index": 0.002, "slope_fdc": 0.01, "q5": 0.03, "q95": 0.015,
             "high_q_freq": 0.005, "high_q_dur": 0.005, "low_q_freq": 0.02, "low_q_dur": 0.005}


@pytest.fixture(scope="module")
def sample():
    return basinsx.open_dataset("sample")


def test_reproduces_camels_attributes(sample, data_dir):
    path = data_dir / "camels_us" / "camels_attributes_v2.0" / "camels_hydro.txt"
    camels = pd.read_csv(path, sep=";", dtype={"gauge_id": str}).set_index("gauge_id").loc[PERENNIAL]
    got = sample.sel(basin=PERENNIAL).hydro.signatures(period=CAMELS_PERIOD).compute()
    for name, rtol in TOLERANCE.items():
        np.testing.assert_allclose(got[name].values, camels[name].values, rtol=rtol, err_msg=name)
    assert (got["zero_q_freq"] == 0).all() and (camels["zero_q_freq"] == 0).all()


def test_events_and_quantiles_analytic():
    q = np.ones(100)
    q[[10, 11]] = 20.0  # one 2-day high-flow event (> 9 x median = 9)
    q[[50, 51, 52, 53]] = 30.0  # one 4-day event
    q[[80, 81, 82]] = 0.0  # a 3-day zero-flow (low-flow) event
    q[90] = np.nan  # missing: left out
    s = dict(zip(SIGNATURES, signatures_1d(q, p=np.full(100, 2.0))))
    obs = q[np.isfinite(q)]
    assert s["q_mean"] == pytest.approx(obs.mean())
    assert s["runoff_ratio"] == pytest.approx(obs.mean() / 2.0)
    assert s["high_q_freq"] == pytest.approx(6 * 365.25 / 99) and s["high_q_dur"] == pytest.approx(3.0)
    assert s["low_q_freq"] == pytest.approx(3 * 365.25 / 99) and s["low_q_dur"] == pytest.approx(3.0)
    assert s["zero_q_freq"] == pytest.approx(3 / 99)
    assert s["q5"] == pytest.approx(np.quantile(obs, 0.05)) and s["q95"] == pytest.approx(np.quantile(obs, 0.95))
    assert s["slope_fdc"] == pytest.approx(0.0)  # flat between the 33rd and 66th percentiles


def test_baseflow_bounds_and_segments():
    rng = np.random.default_rng(3)
    q = np.convolve(rng.exponential(1.0, 400) * (rng.random(400) < 0.2), np.exp(-np.arange(30) / 8.0))[:400] + 0.2
    q[200:210] = np.nan
    q[395:] = np.nan
    b = baseflow(q)
    ok = np.isfinite(b)
    assert np.isnan(b[200:210]).all() and ok[:200].all() and ok[210:395].all()
    assert (b[ok] >= 0).all() and (b[ok] <= q[ok] + 1e-12).all()
    assert b[ok].sum() < q[ok].sum()  # the filter removes quickflow
    with pytest.raises(ValueError, match="odd"):
        baseflow(q, passes=2)


def test_dataarray_dataset_and_lazy(sample):
    ds = sample.isel(basin=[0, 1]).sel(time=slice("1995", "1999"))
    with raise_if_dask_computes():
        lazy = signatures(ds)
    assert set(lazy.data_vars) == set(SIGNATURES) and lazy["q_mean"].dims == ("basin",)
    assert lazy["q_mean"].attrs["units"] == "mm d-1" and lazy["q_mean"].chunks is not None
    eager = signatures(ds.compute())
    xr.testing.assert_allclose(lazy.compute(), eager)
    flow_only = signatures(ds["streamflow"])
    assert flow_only["runoff_ratio"].isnull().all()
    xr.testing.assert_allclose(flow_only.drop_vars("runoff_ratio").compute(), eager.drop_vars("runoff_ratio"))
    np.testing.assert_allclose(eager["runoff_ratio"], eager["q_mean"] / ds["prcp"].mean("time"), rtol=1e-5)


def test_errors_name_the_problem(sample):
    with pytest.raises(KeyError, match="'flow_x' not in the dataset"):
        signatures(sample, flow="flow_x")
    with pytest.raises(ValueError, match="no dimension 'date'"):
        signatures(sample["streamflow"], dim="date")
    with pytest.raises(TypeError, match="unexpected arguments"):
        signatures(sample, thresholds=3)
    with pytest.raises(ValueError, match="'streamflow' is in 'degC', which cannot be converted to mm d-1"):
        signatures(sample["streamflow"].assign_attrs(units="degC"))


def test_discharge_is_converted_with_the_area(sample):
    ds = sample.isel(basin=slice(0, 2)).compute()
    cms = (ds.streamflow * ds.area / 86.4).assign_attrs(units="m3 s-1")
    xr.testing.assert_allclose(signatures(ds.assign(streamflow=cms)), signatures(ds), rtol=1e-5)


def test_time_axis_and_period_are_checked(sample):
    ds = sample.isel(basin=[0, 1]).sel(time=slice("1995", "1996")).compute()
    with pytest.raises(ValueError, match="not daily"):
        signatures(ds.isel(time=np.r_[10:20, 0:10]))  # unsorted: before, accepted
    with pytest.raises(ValueError, match="not daily"):
        signatures(ds.resample(time="MS").mean())  # monthly: before, frequencies per year off by 30x
    whole = signatures(ds, period=slice("1995-03-01", "1995-10-31"))
    xr.testing.assert_identical(signatures(ds, period=["1995-03-01", "1995-10-31"]), whole)  # before: two days
    with pytest.raises(ValueError, match="period runs backwards"):
        signatures(ds, period=slice("1995-10-31", "1995-03-01"))  # before: all NaN
    with pytest.raises(ValueError, match="selects no days"):
        signatures(ds, period=slice("2005", "2006"))


def test_fill_values_are_an_error_naming_basin_and_date(sample):
    ds = sample.isel(basin=[0, 1]).sel(time=slice("1995", "1996")).compute()
    ds["streamflow"][1, 40] = -999.0
    match = rf"streamflow is negative \(-999\) for basin {ds.basin.values[1]} on 1995-02-10"
    with pytest.raises(ValueError, match=match):
        signatures(ds)  # before: a mean flow and quantiles of -999s
    lazy = signatures(ds.chunk({"basin": 1}))  # dask: the error comes with the computation
    with pytest.raises(ValueError, match=match):
        lazy.compute()
    ds["streamflow"][1, 40] = np.inf
    with pytest.raises(ValueError, match="streamflow is infinite"):
        signatures(ds)
    ds["streamflow"][1, 40] = 1.0
    ds["prcp"][0, 3] = -999.0
    with pytest.raises(ValueError, match=rf"precipitation is negative \(-999\) for basin {ds.basin.values[0]}"):
        signatures(ds)


def test_precipitation_broadcasts_over_an_ensemble_and_must_align(sample):
    ds = sample.isel(basin=[0, 1]).sel(time=slice("1995", "1996")).compute()
    ens = xr.concat([ds["streamflow"], 2 * ds["streamflow"]], dim="member")
    got = signatures(ens, prcp=ds["prcp"])  # before: IndexError
    for m in range(2):
        xr.testing.assert_identical(got.isel(member=m, drop=True), signatures(ens.isel(member=m, drop=True),
                                                                               prcp=ds["prcp"]))
    np.testing.assert_allclose(got["runoff_ratio"][1], 2 * got["runoff_ratio"][0])
    with pytest.raises(ValueError, match="precipitation and flow have different 'time' labels"):
        signatures(ds["streamflow"], prcp=ds["prcp"].shift(time=1).isel(time=slice(1, None)))  # before: bare
