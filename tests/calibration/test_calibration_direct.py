"""The calibration's direct path (issue 24): the model kernel on inputs checked once per basin, equal to Model.run's."""

import warnings

import numpy as np
import pytest

import basinsx
import basinsx.models as bm
from basinsx.calibration.optimize import PRIORS, Problem, calibrate_basin
from basinsx.models import NegativePETWarning


class Checked:
    """A model that only has ``run``: the Problem must call ``Model.run`` (all its checks) on every run."""

    def __init__(self, model):
        self.model, self.params, self.bounds, self.transforms = model, model.params, model.bounds, model.transforms
        self.calls = 0

    def run(self, *args, **kwargs):
        self.calls += 1
        return self.model.run(*args, **kwargs)


@pytest.fixture(scope="module")
def basin():
    """Two years after a year of warm-up: forcing ``(prcp, pet[, tmean])`` and observed flow with a gap."""
    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).isel(basin=0)
    ds = ds.sel(time=slice("1985", "1987")).assign(pet=lambda d: d.hydro.pet("oudin"))
    obs = ds["streamflow"].values[365:].astype(float)
    obs[100:130] = np.nan
    return np.vstack([ds[v].values for v in ("prcp", "pet", "tmean")]).astype(float), obs


@pytest.mark.parametrize("snow", [None, "degree_day"])
@pytest.mark.parametrize("loss", ["kge", "nse"])
def test_direct_path_equals_model_run_bit_for_bit(basin, snow, loss):
    forcing, obs = basin
    model = bm.get("gr4j", snow=snow)
    f = forcing if snow else forcing[:2]
    direct = Problem(model, f, obs, loss, warmup=365)
    checked = Problem(Checked(model), f, obs, loss, warmup=365)
    assert direct._kernel is not None and checked._kernel is None
    for u in np.random.default_rng(0).random((4, len(model.params))):
        assert direct.value(u) == checked.value(u)
        v1, g1 = direct.value_grad(u)
        v2, g2 = checked.value_grad(u)
        assert v1 == v2
        np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(direct.best[2], checked.best[2])
    assert direct.n_evals == checked.n_evals == 8 and checked.model.calls == 8


def test_calibrate_basin_result_is_the_same_on_either_path(basin):
    forcing, obs = basin
    model = bm.get("gr4j")
    fast = calibrate_basin(model, forcing[:2], obs, warmup=365, prior=PRIORS["gr4j"])
    slow = calibrate_basin(Checked(model), forcing[:2], obs, warmup=365, prior=PRIORS["gr4j"])
    np.testing.assert_array_equal(fast["params"], slow["params"])
    assert fast["kge"] == slow["kge"] and fast["n_evals"] == slow["n_evals"] > 32


def test_models_the_direct_path_does_not_take_keep_model_run(basin):
    forcing, obs = basin
    assert Problem(bm.get("hymod", snow="cemaneige"), forcing, obs, "kge", warmup=365)._kernel is None
    assert Problem(bm.get("hymod"), forcing[:2], obs, "kge", warmup=365)._kernel is None  # ODE: solver options
    assert Problem(bm.get("gr4j"), forcing[:2], obs, "kge", 365, solver_options={"x": 1})._kernel is None
    assert Problem(bm.get("gr5j"), forcing[:2], obs, "lognse", warmup=365)._kernel is not None


def test_negative_pet_is_clipped_and_warned_once_per_basin(basin):
    forcing, obs = basin
    f = forcing[:2].copy()
    f[1, 10:15] = -0.2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = Problem(bm.get("gr4j"), f, obs, "kge", warmup=365)
        values = [p.value(u) for u in np.random.default_rng(1).random((3, 4))]
    assert [str(w.message) for w in caught if w.category is NegativePETWarning] == [
        "5 negative PET values treated as zero"]
    clipped = Problem(bm.get("gr4j"), np.maximum(f, 0.0), obs, "kge", warmup=365)
    assert values == [clipped.value(u) for u in np.random.default_rng(1).random((3, 4))]


def test_bad_forcing_still_raises_as_model_run_does(basin):
    forcing, obs = basin
    f = forcing[:2].copy()
    f[0, 7] = np.nan
    with pytest.raises(ValueError, match="forcing 'prcp' is NaN at time index 7"):
        Problem(bm.get("gr4j"), f, obs, "kge", warmup=365)


def test_screening_runs_side_by_side_equal_one_at_a_time(basin):
    forcing, obs = basin
    u = np.vstack([np.random.default_rng(2).random((12, 4)), np.zeros((1, 4)), np.ones((1, 4))])
    many = Problem(bm.get("gr4j"), forcing[:2], obs, "kge", warmup=365)
    one = Problem(Checked(bm.get("gr4j")), forcing[:2], obs, "kge", warmup=365)
    assert many._many is not None and one._many is None
    assert Problem(bm.get("gr4j", snow="degree_day"), forcing, obs, "kge", warmup=365)._many is None
    np.testing.assert_array_equal(many.values(u), one.values(u))
    assert many.n_evals == many.n_plain == one.n_evals == 14
    np.testing.assert_array_equal(many.best[1], one.best[1])
    np.testing.assert_array_equal(many.best[2], one.best[2])


def test_a_wrapper_delegating_to_a_model_keeps_its_own_run(basin):
    """An object that forwards everything but ``run`` to a Model (as the CLI's tests do) is run through ``run``."""
    forcing, obs = basin

    class Wrapper(Checked):
        def __getattr__(self, name):
            return getattr(self.model, name)

    wrapped = Wrapper(bm.get("gr4j"))
    p = Problem(wrapped, forcing[:2], obs, "kge", warmup=365)
    assert p._kernel is None and p._many is None
    p.values(np.full((3, 4), 0.5))
    assert wrapped.calls == 3
