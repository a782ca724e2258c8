"""Every registered model, with every snow option it takes, against central differences on real forcing.

Bundled sample basin 01031500 (snowy: packs build and melt), 1981-1983 (one warm-up year), the parameters
at the middle of their bounds (geometric middle for capacities spanning two decades); CemaNeige on five
layers of a synthetic hypsometry around the basin's mean elevation. The ODE models run fixed Heun steps
(32 a day), whose sensitivities are the exact derivatives of the discrete map, as the discrete models'
are. Tolerance: per parameter, ``max|J - fd|`` within 1e-3 of the largest ``|fd|`` (the issue's bound;
measured 1e-10 to 1e-7, 1.5e-4 for gr6j's x6 under hysteretic CemaNeige, where the flow is small). Steps
1e-6 of the bound interval (relative to the value they straddle kinks of small parameters such as
sacsma's ``lzpk``).
"""

import numpy as np
import pytest

import basinsx
import basinsx.models as bm
from basinsx.models.base import default_transform

CASES = [(name, snow) for name in bm.available() for snow in (None, *bm.spec(name).snow)]
#: where the middle of the bounds leaves a branch unused: hbv's upper zone stays below uzl, drained by perc
OVERRIDES = {"hbv": {"perc": 0.5, "uzl": 10.0, "fc": 100.0}}
#: CemaNeige's cn_ctg and cn_thacc act through switches (melt only once the thermal state reaches 0):
#: their derivative is zero almost everywhere, and both J and the differences are zero here
SWITCHES = {"cn_ctg", "cn_thacc"}


@pytest.fixture(scope="module")
def sample():
    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).isel(basin=0)
    ds = ds.isel(time=slice(0, 3 * 365))
    forcing = {v: ds[v].values.astype(float) for v in ("prcp", "pet", "tmean")}
    return forcing, ds["time"].values, float(ds["elev_mean"])


@pytest.mark.parametrize(("name", "snow"), CASES, ids=[f"{n}-{s or 'nosnow'}" for n, s in CASES])
def test_jacobian_matches_central_differences_on_real_forcing(sample, name, snow):
    forcing, dates, elev = sample
    layers = {}
    if snow in ("cemaneige", "cemaneige_hyst"):
        layers = {"hypsometry": np.linspace(elev - 300.0, elev + 500.0, 101), "station_elevation": elev}
    m = bm.get(name, snow=snow or False, **layers)
    f = np.vstack([forcing[v] for v in m.forcings])
    low, high = (np.array([m.bounds[p][i] for p in m.params], float) for i in (0, 1))
    log = np.array([default_transform(lo, hi) == "log" for lo, hi in zip(low, high)])
    theta = 0.5 * (low + high)
    theta[log] = np.sqrt(low[log] * high[log])
    for p, v in OVERRIDES.get(name, {}).items():
        theta[m.params.index(p)] = v
    opts = {"method": "fixed", "n_sub": 32} if bm.spec(name).solver_options else {}
    with pytest.warns(bm.NegativePETWarning):  # ERA5-Land's few condensation days
        q, jac = m.run(theta, f, warmup=365, dates=dates, **opts)
    assert np.all(np.isfinite(jac)) and q.max() > 0.1
    fd = np.empty_like(jac)
    for j in range(theta.size):
        h = 1e-6 * (high[j] - low[j])
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        with pytest.warns(bm.NegativePETWarning):
            fd[:, j] = (m.run(up, f, 365, False, dates=dates, **opts)[0]
                        - m.run(down, f, 365, False, dates=dates, **opts)[0]) / (2 * h)
    scale = np.abs(fd).max(axis=0)
    idle = [p for p, s in zip(m.params, scale) if s == 0 and p not in SWITCHES]
    assert not idle, f"parameters without effect test nothing: {idle}"
    err = np.abs(jac - fd).max(axis=0) / np.maximum(scale, 1e-12)
    assert err.max() < 1e-3, dict(zip(m.params, err))


#: parameter sets on a lower bound where two branches of a model tie exactly: sacsma's free share of percolation
#: at 0, hbv without refreezing or liquid water in the pack
TIES = {"sacsma": {"pfree": 0.0}, "hbv": {"cfr": 0.0, "cwh": 0.0}}


@pytest.mark.parametrize("name", TIES)
def test_jacobian_at_a_tie_on_the_bounds_is_the_derivative_into_the_bounds(sample, name):
    """At a kink the Jacobian is the one-sided derivative of an increase of each parameter, which on a lower bound
    is the one an optimizer can follow; forward differences of 1e-9 of the bound interval measure it.
    Before: sacsma's pfree column was 0 (3.9 by differences), hbv's cwh column 3.7 times the differences."""
    forcing, dates, _ = sample
    m = bm.get(name)
    f = np.vstack([forcing[v] for v in m.forcings])
    low, high = (np.array([m.bounds[p][i] for p in m.params], float) for i in (0, 1))
    theta = 0.5 * (low + high)
    for p, v in TIES[name].items():
        theta[m.params.index(p)] = v
    with pytest.warns(bm.NegativePETWarning):
        q, jac = m.run(theta, f, warmup=365, dates=dates)
        for j in range(theta.size):
            h = 1e-9 * (high[j] - low[j])
            up = theta.copy()
            up[j] += h
            fd = (m.run(up, f, 365, False, dates=dates)[0] - q) / h
            err = np.abs(jac[:, j] - fd).max() / max(np.abs(fd).max(), 1e-6)
            assert err < 1e-3, (m.params[j], err)
