"""``_grcore.gr4j_sens`` behind CemaNeige (snow code 2): the shared kernel's flow bit for bit, its Jacobian."""

import numpy as np
import pytest

import basinsx
import basinsx.models as bm
from basinsx.models._grcore import N_STATES, gr4j_many, gr4j_many_input, gr4j_sens, gr_kernel
from basinsx.models.cemaneige import PARAMS, cemaneige_many, layer_setup, water_input

# a made-up hypsometry (m) for five layers
HYPS = np.concatenate([np.linspace(150.0, 1500.0, 81), np.linspace(1600.0, 4300.0, 20)])
LO = {"cemaneige": [10.0, -10.0, 1.0, 0.5, 0.0, 0.0], "cemaneige_hyst": [10.0, -10.0, 1.0, 0.5, 0.0, 0.0, 0.05, 0.001]}
HI = {"cemaneige": [3000.0, 5.0, 1000.0, 10.0, 1.0, 20.0],
      "cemaneige_hyst": [3000.0, 5.0, 1000.0, 10.0, 1.0, 20.0, 99.95, 1.0]}


@pytest.fixture(scope="module")
def maine():
    """Four years of the snowy Maine basin 01031500: forcing ``prcp, pet, tmean`` and its dates."""
    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).isel(basin=0).sel(time=slice("1990", "1993"))
    f = np.vstack([ds["prcp"].values, ds.hydro.pet("oudin").values, ds["tmean"].values]).astype(float)
    return f, ds["time"].values.astype("datetime64[D]")


def _sets(snow, seed):
    rng = np.random.default_rng(seed)
    lo, hi = np.array(LO[snow]), np.array(HI[snow])
    # random sets, the bounds' corners, and clamps active: WS > 13 (x1 = 4 mm), the routing store emptied (x2 = -10)
    extra = np.r_[[4.0, -10.0, 5.0, 2.0], 0.5 * (lo[4:] + hi[4:])]
    return np.vstack([lo + rng.random((10, len(lo))) * (hi - lo), lo, hi, extra])


@pytest.mark.parametrize("layers", [None, HYPS])
@pytest.mark.parametrize("snow", ["cemaneige", "cemaneige_hyst"])
def test_gr4j_sens_behind_cemaneige_equals_the_shared_kernel(maine, snow, layers):
    forcing, dates = maine
    model = bm.get("gr4j", snow=snow, hypsometry=layers, station_elevation=None if layers is None else 300.0)
    x0 = np.full(N_STATES, np.nan)
    for th in _sets(snow, 7):
        rows = water_input(forcing, th, 4, snow == "cemaneige_hyst", model.layers, dates, True)[0]
        q, jac = gr4j_sens(th, rows, 365, 2)
        q_ref, jac_ref, _ = gr_kernel(th, rows, 365, True, 2, 4, x0)
        np.testing.assert_array_equal(q, q_ref)
        scale = np.maximum(np.abs(jac_ref).max(axis=0), 1e-300)
        assert np.all(np.abs(jac - jac_ref) <= 1e-12 * scale)
        q1, j1 = model.run(th, forcing, warmup=365, dates=dates)  # Model.run takes it
        np.testing.assert_array_equal(q1, q)
        np.testing.assert_array_equal(j1, jac)
    assert np.abs(jac_ref[:, 5]).max() > 0.0  # cn_kf acts


@pytest.mark.parametrize("snow", ["cemaneige", "cemaneige_hyst"])
def test_many_sets_on_their_own_water_input_equal_the_kernel(maine, snow):
    forcing, dates = maine
    model = bm.get("gr4j", snow=snow, hypsometry=HYPS, station_elevation=300.0)
    theta = _sets(snow, 8)
    setup = layer_setup(forcing, model.layers, dates)
    w = cemaneige_many(*setup, theta, 4, snow == "cemaneige_hyst")
    q = gr4j_many_input(theta, w, forcing[1], 365)
    x0 = np.full(N_STATES, np.nan)
    for b, th in enumerate(theta):
        rows = water_input(forcing, th, 4, snow == "cemaneige_hyst", model.layers, dates, False)[0]
        np.testing.assert_array_equal(w[b], rows[0])
        np.testing.assert_array_equal(q[b], gr_kernel(th, rows, 365, False, 2, 4, x0)[0])
    # the same water input for every set: the screening without snow
    same = np.repeat(forcing[:1], len(theta), axis=0)
    np.testing.assert_array_equal(gr4j_many_input(theta, same, forcing[1], 365), gr4j_many(theta, forcing[:2], 365))
    assert len(PARAMS[snow]) == theta.shape[1] - 4
