"""NUTS with a fixed metric (the Laplace covariance) is exact and cheaper; the posterior's ``metric`` option."""

import numpy as np
import pytest
from test_posterior import FastReservoir, reservoir_dataset

from basinsx.calibration import posterior
from basinsx.calibration.hmc import nuts

COV = np.array([[1.0, 0.95, 0.0], [0.95, 1.0, 0.3], [0.0, 0.3, 2.0]])
PREC = np.linalg.inv(COV)
MEAN = np.array([1.0, -2.0, 0.5])


def gaussian(z):
    r = z - MEAN
    return -0.5 * r @ PREC @ r, -PREC @ r, None


@pytest.mark.parametrize("cov", [COV, np.eye(3)], ids=["exact metric", "poor metric"])
def test_a_fixed_metric_samples_the_target_exactly(cov):
    rng = np.random.default_rng(3)
    res = nuts(gaussian, np.zeros(3), 100, 3000, rng, cov=cov, adapt_metric=False)
    z = res["z"]
    se = np.sqrt(np.diag(COV) / 1000)  # generous: draws are correlated
    assert np.all(np.abs(z.mean(axis=0) - MEAN) < 4 * se)
    sd = np.sqrt(np.diag(COV))
    assert np.all(np.abs(np.cov(z, rowvar=False) - COV) < 0.15 * np.outer(sd, sd))  # 15 % of the scale


def test_the_exact_metric_takes_shorter_trajectories_than_a_poor_one():
    runs = {}
    for name, cov in (("exact", COV), ("identity", np.eye(3))):
        res = nuts(gaussian, MEAN.copy(), 100, 500, np.random.default_rng(0), cov=cov, adapt_metric=False)
        runs[name] = res["n_grad"]
    assert runs["exact"] < 0.8 * runs["identity"]


def test_posterior_rejects_an_unknown_metric_and_records_the_metric():
    ds = reservoir_dataset(1)
    with pytest.raises(ValueError, match="unknown metric 'diag'"):
        posterior(ds, model=FastReservoir(), method="hmc", metric="diag")
    for metric in ("laplace", "adapt"):
        post = posterior(ds, model=FastReservoir(), method="hmc", metric=metric, n_chains=2, n_draws=50, n_adapt=60)
        assert post.attrs["metric"] == metric and post.attrs["n_adapt"] == 60
        assert np.isfinite(post["draws"]).all()


def test_a_start_far_in_the_tail_samples_without_overflow():
    """From 200 standard deviations out, the trajectory's new sub-trees weigh e^1000 and more times the old ones:
    ``exp`` of that weight ratio overflowed (a RuntimeWarning on the way, and a failed basin where
    warnings are errors), though the choice it makes is the same with the ratio capped at 1."""
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # what numpy warns about by default
        res = nuts(gaussian, MEAN + 200.0, 20, 50, np.random.default_rng(0), cov=COV, adapt_metric=False)
    assert np.all(np.abs(res["z"].mean(axis=0) - MEAN) < 3.0)
