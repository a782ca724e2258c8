"""TNNA.refine: Levenberg-Marquardt on the simulator itself after the surrogate phase."""

import numpy as np
import pytest
import xarray as xr
from inverse_cases import BOUNDS, OBS, decay, decay_sets
from scipy.optimize import minimize

from basinsx.inverse import TNNA, Surrogate, local_refine

torch = pytest.importorskip("torch")
TRUTH = np.array([1.3, 1.7, 0.4])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def coarse():
    """A rough (over-smoothed) surrogate: TNNA through it misses c by about 0.08."""
    train, _ = decay_sets()
    return Surrogate("kernel", alpha=0.1, gamma=0.1).fit(train.params, train.output)


def test_refine_reaches_the_truth_the_surrogate_misses(coarse):
    y = xr.DataArray(decay(TRUTH), dims="obs")
    tn = TNNA(coarse, BOUNDS, hidden=(32,), epochs=200, lr=3e-3)
    first = tn.fit(y).values.copy()
    nfev = tn.nfev
    assert np.abs(first - TRUTH).max() > 0.02
    est = tn.refine(decay, y, iterations=4)
    np.testing.assert_allclose(est.values, TRUTH, atol=1e-4)
    assert est is tn.estimate and tn.nfev == nfev  # no surrogate call
    np.testing.assert_array_equal(tn.refine_history[0], first)
    # one run at the start, then 3 Jacobian runs and at least one trial run per iteration
    assert tn.refine_runs[0] == 1 and np.all(np.diff(tn.refine_runs) >= 4)
    assert tn.n_simulations >= tn.refine_runs[-1] and len(tn.refine_history) == len(tn.refine_runs)
    assert np.all(np.diff(tn.refine_objective) < 0)


def test_refine_minimises_tnnas_objective_with_the_given_prior_weight(coarse):
    # noisy data, a known value and a prior: refine's answer is the minimiser of TNNA's
    # objective on the solver with prior_weight replaced, computed here independently
    rng = np.random.default_rng(3)
    y = xr.DataArray(decay(TRUTH) + rng.normal(0, 0.02, 12), dims="obs")
    A, b = np.array([[1.0, 0.0, 1.0]]), np.array([1.6])
    prior = ([1.0, 1.5, 0.0], [0.5, 0.5, 0.2])
    tn = TNNA(coarse, BOUNDS, hidden=(32,), epochs=200, lr=3e-3, known=(A, b), known_weight=3.0,
              prior=prior, prior_weight=10.0)
    tn.fit(y)
    est = tn.refine(decay, y, iterations=6, prior_weight=0.05).values
    Y = coarse.scale_y(y.values[None])[0]

    def obj(m):
        return (((Y - coarse.scale_y(decay(m)[None])[0]) ** 2).sum() + 3.0 * ((A @ m - b) ** 2).mean()
                + 0.05 * (((m - prior[0]) / np.array(prior[1])) ** 2).sum())

    ref = minimize(obj, TRUTH, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-14, "maxiter": 4000}).x
    np.testing.assert_allclose(est, ref, atol=2e-4)
    assert obj(est) == pytest.approx(tn.refine_objective[-1], rel=1e-9)


def test_refine_stays_inside_the_bounds(coarse):
    # the best fit of c lies beyond its upper bound 1: the steps are clipped to the box
    y = xr.DataArray(decay(np.array([1.3, 1.7, 1.3])), dims="obs")
    tn = TNNA(coarse, BOUNDS, hidden=(32,), epochs=100, lr=3e-3)
    tn.fit(y)
    est = tn.refine(decay, y, iterations=3).values
    lo, hi = np.array(list(BOUNDS.values())).T
    assert np.all(est >= lo) and np.all(est <= hi) and est[2] > 0.99
    assert np.all(tn.refine_history <= hi) and tn.refine_objective[-1] < tn.refine_objective[0]


def test_refine_errors(coarse):
    y = xr.DataArray(decay(TRUTH), dims="obs")
    tn = TNNA(coarse, BOUNDS, hidden=(8,), epochs=5)
    with pytest.raises(RuntimeError, match="fitted"):
        tn.refine(decay, y)
    tn.fit(y)
    with pytest.raises(ValueError, match="iterations"):
        tn.refine(decay, y, iterations=0)
    with pytest.raises(ValueError, match="no prior"):
        tn.refine(decay, y, prior_weight=1e-3)
    ys = xr.DataArray(np.stack([decay(TRUTH)] * 2), dims=("scenario", "obs"))
    tn.fit(ys)
    with pytest.raises(RuntimeError, match="single observation"):
        tn.refine(decay, ys)


def test_simulator_outputs_are_taken_by_name_and_label(coarse):
    """refine/adapt read the simulator's variable the surrogate was fitted on, its labels in the surrogate's order."""
    train, _ = decay_sets()
    labeled = train.output.assign_coords(obs=OBS).rename("conc")
    surrogate = Surrogate("kernel", alpha=1e-5, gamma=0.1).fit(train.params, labeled.isel(obs=slice(None, None, -1)))

    def simulator(theta):  # another variable first, and the surrogate's outputs in the other order
        conc = xr.DataArray(decay(theta), dims="obs", coords={"obs": OBS})
        return xr.Dataset({"head": -conc, "conc": conc})

    y = xr.DataArray(decay(TRUTH), dims="obs", coords={"obs": OBS})
    tn = TNNA(surrogate, BOUNDS, hidden=(32,), epochs=200, lr=3e-3)
    tn.fit(y)
    est = tn.refine(simulator, y, iterations=4)  # before: fitted 'head', read in reverse order
    np.testing.assert_allclose(est.values, TRUTH, atol=1e-3)
    local = local_refine(surrogate, simulator, est, BOUNDS, n_local=4)
    np.testing.assert_allclose(local.output.sel(obs=OBS).values[0], decay(est.values))
    with pytest.raises(ValueError, match=r"the simulator returns \['head', 'temp'\]; the surrogate was fitted on "
                                         r"'conc'"):
        tn.refine(lambda th: xr.Dataset({"head": simulator(th).head, "temp": simulator(th).head}), y)
