"""The calibration's direct path behind CemaNeige: layer inputs built once per basin, the same runs as Model.run's."""

import numpy as np
import pytest

import basinsx
import basinsx.models as bm
from basinsx.calibration.optimize import PRIORS, Problem, calibrate_basin

HYPS = np.concatenate([np.linspace(150.0, 1500.0, 81), np.linspace(1600.0, 4300.0, 20)])


class Checked:
    """A model that only has ``run``: the Problem must call ``Model.run`` on every run."""

    def __init__(self, model):
        self.model, self.params, self.bounds, self.transforms = model, model.params, model.bounds, model.transforms
        self.calls = 0

    def run(self, *args, **kwargs):
        self.calls += 1
        return self.model.run(*args, **kwargs)


@pytest.fixture(scope="module")
def basin():
    """Two snowy years after a year of warm-up: forcing ``prcp, pet, tmean``, observed flow with a gap, dates."""
    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).isel(basin=0)
    ds = ds.sel(time=slice("1985", "1987")).assign(pet=lambda d: d.hydro.pet("oudin"))
    obs = ds["streamflow"].values[365:].astype(float)
    obs[100:130] = np.nan
    f = np.vstack([ds[v].values for v in ("prcp", "pet", "tmean")]).astype(float)
    return f, obs, ds["time"].values.astype("datetime64[D]")


def _model(snow, layers, dates):
    model = bm.get("gr4j", snow=snow)
    return model.with_layers(HYPS, 300.0, dates=dates) if layers else model


@pytest.mark.parametrize("layers", [False, True])
@pytest.mark.parametrize("snow", ["cemaneige", "cemaneige_hyst"])
def test_direct_path_equals_model_run_bit_for_bit(basin, snow, layers):
    forcing, obs, dates = basin
    model = _model(snow, layers, dates)
    direct = Problem(model, forcing, obs, "kge", warmup=365)
    checked = Problem(Checked(model), forcing, obs, "kge", warmup=365)
    assert direct._kernel is not None and checked._kernel is None
    for u in np.random.default_rng(0).random((4, len(model.params))):
        assert direct.value(u) == checked.value(u)
        v1, g1 = direct.value_grad(u)
        v2, g2 = checked.value_grad(u)
        assert v1 == v2
        np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(direct.best[2], checked.best[2])
    assert direct.n_evals == checked.n_evals == 8 and checked.model.calls == 8


@pytest.mark.parametrize("snow", ["cemaneige", "cemaneige_hyst"])
def test_screening_runs_side_by_side_equal_one_at_a_time(basin, snow):
    forcing, obs, dates = basin
    model = _model(snow, True, dates)
    d = len(model.params)
    u = np.vstack([np.random.default_rng(2).random((12, d)), np.zeros((1, d)), np.ones((1, d))])
    many = Problem(model, forcing, obs, "kge", warmup=365)
    one = Problem(Checked(model), forcing, obs, "kge", warmup=365)
    assert many._many is not None and one._many is None
    np.testing.assert_array_equal(many.values(u), one.values(u))
    assert many.n_evals == many.n_plain == one.n_evals == 14
    np.testing.assert_array_equal(many.best[1], one.best[1])
    np.testing.assert_array_equal(many.best[2], one.best[2])


def test_calibrate_basin_result_is_the_same_on_either_path(basin):
    forcing, obs, _ = basin
    model = bm.get("gr4j", snow="cemaneige")
    fast = calibrate_basin(model, forcing, obs, warmup=365, prior=PRIORS["gr4j"])
    slow = calibrate_basin(Checked(model), forcing, obs, warmup=365, prior=PRIORS["gr4j"])
    np.testing.assert_array_equal(fast["params"], slow["params"])
    assert fast["kge"] == slow["kge"] and fast["n_evals"] == slow["n_evals"] > 32


def test_other_kernels_behind_cemaneige(basin):
    """GR5J takes the direct path, without a screening side by side."""
    forcing, obs, _ = basin
    gr5 = Problem(bm.get("gr5j", snow="cemaneige"), forcing, obs, "kge", warmup=365)
    ref = Problem(Checked(bm.get("gr5j", snow="cemaneige")), forcing, obs, "kge", warmup=365)
    assert gr5._kernel is not None and gr5._many is None
    u = np.full(len(gr5.lo), 0.4)
    assert gr5.value_grad(u)[0] == ref.value_grad(u)[0]
