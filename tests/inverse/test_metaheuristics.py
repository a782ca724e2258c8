"""basinsx.inverse.metaheuristics: GA, PSO, DE and SA, and how they take bounds."""

import numpy as np
import pytest
from inverse_cases import BOUNDS, OBS, REVERSED, decay_sets, kernel_fit, y_labeled

from basinsx.inverse import as_bounds, minimize, objective

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return decay_sets()


@pytest.fixture(scope="module")
def labeled_surrogate(data):
    """A kernel surrogate whose outputs are labeled obs = t0 ... t11."""
    train, _ = data
    return kernel_fit(train, obs=OBS)


def sphere(X):
    return ((X - 0.3) ** 2).sum(1)


def rosenbrock(X):
    return ((1 - X[:, :-1]) ** 2 + 100 * (X[:, 1:] - X[:, :-1] ** 2) ** 2).sum(1)


def rastrigin(X):
    return 10 * X.shape[1] + (X**2 - 10 * np.cos(2 * np.pi * X)).sum(1)


@pytest.mark.parametrize("method", ["ga", "pso", "de", "sa"])
def test_metaheuristics_find_optimum(method):
    b4 = [(-2.0, 2.0)] * 4
    r = minimize(sphere, b4, method, pop=40, max_iter=150, seed=0)
    np.testing.assert_allclose(r.x, 0.3, atol=0.05)
    assert r.nfev == r.nfev_history[-1] and len(r.history) == 150
    assert np.all(np.diff(r.history) <= 0)  # best-so-far never worsens
    r = minimize(rastrigin, [(-5.12, 5.12)] * 2, method, pop=60, max_iter=200, seed=1)
    assert r.fun < 1.0  # the global basin (local minima are >= 1)
    if method in ("de", "pso"):
        r = minimize(rosenbrock, [(-2.0, 2.0)] * 2, method, pop=40, max_iter=300, seed=0)
        np.testing.assert_allclose(r.x, 1.0, atol=0.05)


@pytest.mark.parametrize("method", ["ga", "pso", "de", "sa"])
def test_nan_objective_values_count_as_worst(method):
    """A failed evaluation (NaN) loses every comparison; an objective that fails everywhere is an error."""
    def partly_nan(X):
        return np.where(X[:, 0] > 0.6, np.nan, sphere(X))

    r = minimize(partly_nan, [(-2.0, 2.0)] * 4, method, pop=40, max_iter=150, seed=0)
    assert r.x[0] <= 0.6 and r.fun < 0.02  # the optimum, 0.3 in every coordinate, where the objective is finite
    assert np.isfinite(r.fun) and np.all(np.diff(r.history) <= 0)
    with pytest.raises(ValueError, match=r"NaN or infinite at every one of the \d+ points evaluated"):  # before:
        # x None and fun inf, returned as a result
        minimize(lambda X: np.full(len(X), np.nan), [(0, 1)], method, pop=5, max_iter=2)


def test_minimize_errors():
    with pytest.raises(ValueError, match="unknown method"):
        minimize(sphere, [(0, 1)], "cmaes")
    with pytest.raises(ValueError, match="returned"):
        minimize(lambda X: np.zeros(3), [(0, 1)], "de", pop=5, max_iter=2)


def test_minimize_aligns_bounds_with_the_objective(labeled_surrogate):
    fun = objective(labeled_surrogate, y_labeled())
    assert list(fun.param) == ["a", "b", "c"]
    ref = minimize(fun, BOUNDS, "de", pop=20, max_iter=40, seed=0)
    assert list(ref.param) == ["a", "b", "c"] and ref.fun < 1e-2
    for bounds in (REVERSED, as_bounds(REVERSED), np.array(list(BOUNDS.values()))):
        r = minimize(fun, bounds, "de", pop=20, max_iter=40, seed=0)
        np.testing.assert_array_equal(r.x, ref.x)
        assert list(r.param) == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"bounds 'param'.*missing \['c'\].*unknown \['d'\]"):
        minimize(fun, {"a": (0.5, 2.0), "b": (0.5, 3.0), "d": (-1.0, 1.0)}, pop=20, max_iter=2)
    with pytest.raises(ValueError, match="bounds give 2 parameters, the objective takes 3"):
        minimize(fun, [(0.5, 2.0), (0.5, 3.0)], pop=20, max_iter=2)
    # a plain function takes its bounds in their own order and labels
    r = minimize(sphere, {"u": (-1.0, 1.0), "v": (0.0, 1.0)}, pop=10, max_iter=5, seed=0)
    assert list(r.param) == ["u", "v"]
