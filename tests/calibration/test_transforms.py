"""Calibration searches each parameter on the scale its model declares (``Model.transforms``)."""

import numpy as np
import pytest

import basinsx.models as bm
from basinsx.calibration.optimize import Problem, log_scaled
from basinsx.calibration.uncertainty import Target
from basinsx.models import ModelSpec, Parameter


def _kernel(theta, forcing, warmup, sens, snow):
    """A linear reservoir without memory, enough to build a problem: q = prcp / k."""
    q = forcing[0, warmup:] / theta[0]
    jac = np.zeros((q.size if sens else 0, theta.size))
    if sens:
        jac[:, 0] = -q / theta[0]
    return q, jac


SPEC = ModelSpec(
    "toy_transforms",
    (Parameter("k", "d", (1.0, 1000.0), transform="linear", description="wide range searched linearly"),
     Parameter("c", "mm", (1.0, 5.0), transform="log", description="narrow range searched on a log scale"),
     Parameter("s", "mm", (1.0, 1000.0), description="wide range, default rule: log"),
     Parameter("a", "1", (-1.0, 1.0), description="signed, default rule: linear")),
    ("storage",),
    _kernel,
    reference="a test",
)


@pytest.fixture
def toy():
    bm.register(SPEC)
    yield bm.get(SPEC.name)
    bm._REGISTRY.pop(SPEC.name)


def _problem(model, log_scale=True):
    forcing = np.ones((2, 30))
    return Problem(model, forcing, np.linspace(1.0, 2.0, 30), "kge", log_scale=log_scale)


def test_model_transforms_decide_the_search_scale(toy):
    assert toy.transforms == {"k": "linear", "c": "log", "s": "log", "a": "linear"}
    expected = [False, True, True, False]
    assert log_scaled(toy).tolist() == expected
    problem = _problem(toy)
    assert problem.log.tolist() == expected
    # the linear wide parameter: the middle of the unit interval is the middle of the range, not the geometric mean
    theta = problem.theta(np.full(4, 0.5))
    assert theta[0] == pytest.approx(500.5)
    assert theta[1] == pytest.approx(np.sqrt(5.0))
    assert theta[2] == pytest.approx(np.sqrt(1000.0))
    np.testing.assert_allclose(problem.unit(theta), 0.5)


def test_log_scale_false_forces_linear(toy):
    assert not log_scaled(toy, log_scale=False).any()
    assert not _problem(toy, log_scale=False).log.any()


def test_posterior_uses_the_model_transforms(toy):
    target = Target(toy, np.ones((2, 30)), np.ones(30))
    assert target.log.tolist() == [False, True, True, False]
    assert not Target(toy, np.ones((2, 30)), np.ones(30), log_scale=False).log.any()


def test_model_objects_without_transforms_keep_the_default_rule():
    class Bare:
        params = ("x", "y")
        bounds = {"x": (1.0, 500.0), "y": (0.0, 10.0)}

    assert log_scaled(Bare()).tolist() == [True, False]


def test_regional_learner_maps_with_the_model_transforms(toy):
    torch = pytest.importorskip("torch")
    from basinsx.regional.learner import to_physical

    theta = to_physical(torch.full((4,), 0.5, dtype=torch.float64), toy).numpy()
    np.testing.assert_allclose(theta, [500.5, np.sqrt(5.0), np.sqrt(1000.0), 0.0])


def test_at_bound_is_measured_on_the_model_scale(toy):
    import xarray as xr

    from basinsx.calibration import driver

    # k = 1.5 is 5e-4 of the linear range from its lower bound (flagged), but 0.06 of the log range (not flagged)
    params = xr.DataArray([[1.5, 3.0, 30.0, 0.0]], dims=("basin", "param"), coords={"param": list(toy.params)})
    flags = driver._at_bound(params, toy, True).values[0]
    assert flags.tolist() == [True, False, False, False]
    assert driver._at_bound(params, toy, False).values[0].tolist() == [True, False, False, False]


def test_linear_parameters_beyond_exps_range_map_without_overflow(toy):
    # k is linear up to 1000: exp(1000) of the unused log branch overflowed (a RuntimeWarning on every
    # calibration of hbv, whose fc reaches 1000; in the learner's torch map a NaN gradient)
    from basinsx.regional.baselines import regression_params

    with np.errstate(all="raise"):
        np.testing.assert_allclose(_problem(toy).theta(np.ones(4)), [1000.0, 5.0, 1000.0, 1.0])
        target = Target(toy, np.ones((2, 30)), np.ones(30))
        np.testing.assert_allclose(target.theta(np.full(4, 40.0)), [1000.0, 5.0, 1000.0, 1.0])
        import xarray as xr

        attrs = xr.Dataset({"area": ("basin", [1.0, 2.0, 3.0, 4.0])}, coords={"basin": list("abcd")})
        params = xr.DataArray([[k, 2.0, 10.0, 0.0] for k in (700.0, 800.0, 900.0, 1000.0)], dims=("basin", "param"),
                              coords={"basin": list("abcd"), "param": list(toy.params)})
        out = regression_params(attrs, params, attrs.assign_coords(basin=list("abcd")), ["area"], model=toy)
        assert np.isfinite(out.values).all()
