"""The synthetic Caravan-size generator of benchmarks/caravan_scale.py: whole years bootstrapped, GR4J truth."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import basinsx

from conftest import benchmark_script


@pytest.fixture(scope="module")
def scale():
    with benchmark_script("caravan_scale") as module:
        yield module


def fake_real():
    """Two 'real' basins, 1981-1988, whose prcp encodes the calendar day and tmean the year."""
    time = pd.date_range("1981-01-01", "1988-12-31", freq="D")
    day = (time.month * 100 + time.day).to_numpy(float)
    prcp = np.stack([day, day + 0.5])
    tmean = np.stack([time.year.to_numpy(float)] * 2)
    pet = np.full((2, time.size), 2.0)
    real = xr.Dataset({v: (("basin", "time"), a.astype(np.float32)) for v, a in
                       {"prcp": prcp / 1000, "tmean": tmean, "pet": pet, "streamflow": pet}.items()},
                      coords={"basin": ["a", "b"], "time": time})
    fit = xr.Dataset({"params": (("basin", "param"), [[300.0, -1.0, 60.0, 2.0], [150.0, 0.5, 40.0, 1.2]])},
                     coords={"param": ["x1", "x2", "x3", "x4"]})
    return real, fit


def test_whole_years_from_years_of_the_same_length(scale):
    real, fit = fake_real()
    gen = scale.Generator(real, fit, seed=3, param_noise=0.2, flow_noise=0.2)
    prcp, tmean, _, _ = gen.block(0, 4)
    target = gen.time
    expected = (target.month * 100 + target.day).to_numpy(float) / 1000
    assert prcp.shape == (4, target.size) == (4, 14610)
    for b in range(4):
        src = gen.draw(b)[0]  # real basin b's prcp is the calendar code + 0.0005 b
        np.testing.assert_allclose(prcp[b], expected + 0.0005 * src, rtol=1e-6)  # Feb 29 only in leap years
        years = pd.Series(tmean[b]).groupby(target.year).agg(["min", "max"])
        assert (years["min"] == years["max"]).all()  # one source year per target year
        assert {int(y) for y in years["min"]} <= set(range(1981, 1989))


def test_flow_is_gr4j_of_the_truth_and_basins_do_not_depend_on_the_store_size(scale):
    real, fit = fake_real()
    gen = scale.Generator(real, fit, seed=0, param_noise=0.2, flow_noise=0.0)
    small, large = gen.dataset(3, 2, real).compute(), gen.dataset(5, 4, real).compute()
    xr.testing.assert_identical(small, large.isel(basin=slice(0, 3)))
    model = basinsx.models.get("gr4j")
    for b in range(3):
        theta = [float(small[f"true_{p}"][b]) for p in scale.PARAMS]
        q = model.run(theta, np.stack([small.prcp[b], small.pet[b]]).astype(float), sensitivities=False)[0]
        np.testing.assert_allclose(small.streamflow[b], q, rtol=1e-6)
        lo, hi = np.array([model.bounds[p] for p in scale.PARAMS]).T
        assert np.all((theta > lo) & (theta < hi))


def test_noise_scale_round_trip(scale):
    theta = np.array([[300.0, -1.5, 60.0, 2.0], [12.0, 4.0, 900.0, 0.6]])
    np.testing.assert_allclose(scale.from_z(scale.to_z(theta)), theta)
