"""The learner's KGE loss: 1 - KGE where the window is typical of its basin, bounded where the window is dry.

A dry year (observed flow zero, or nearly so, all window long) has no KGE: its variability and bias
ratios divide by the window's zero standard deviation and mean. Such windows (11 of the 100 CAMELS
dev basins have one) used to give terms of 1e4-1e6 that swamped the batch mean and its gradient.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from basinsx.calibration.losses import kge_terms  # noqa: E402
from basinsx.regional.learner import window_loss  # noqa: E402


def _flows(n=365, seed=0):
    rng = np.random.default_rng(seed)
    obs = np.exp(rng.normal(0.0, 1.0, n))
    sim = 0.8 * obs + 0.3 * np.exp(rng.normal(0.0, 1.0, n))
    return sim, obs


def test_kge_loss_is_one_minus_kge_when_the_basin_scales_are_the_windows():
    sim, obs = _flows()
    obs[[5, 40]] = np.nan
    r, alpha, beta = kge_terms(sim, obs)[:3]
    expected = np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)
    q, y = torch.tensor(sim[None]), torch.tensor(obs[None])
    loss = window_loss(q, y, torch.tensor([np.nanvar(obs)]), "kge", mean=torch.tensor([np.nanmean(obs)]))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-9)


@pytest.mark.parametrize("dry", [0.0, 1e-4])
def test_a_dry_window_neither_swamps_the_batch_nor_its_gradient(dry):
    sim, obs = _flows()
    n = len(obs)
    y = torch.tensor(np.stack([obs, np.full(n, dry)]))
    q = torch.tensor(np.stack([sim, 0.05 + 0.01 * np.sin(np.arange(n) / 20)]), requires_grad=True)
    var = torch.tensor([np.var(obs), 1.0])  # the dry basin's training period has flow: mean 0.5, variance 1
    mean = torch.tensor([np.mean(obs), 0.5])
    loss = window_loss(q, y, var, "kge", mean=mean)
    wet = window_loss(q[:1], y[:1], var[:1], "kge", mean=mean[:1])
    assert float(loss.detach()) < 1.0 + float(wet.detach())  # the dry term is about 1 (r undefined: 0), not 1e4
    loss.backward()
    g = q.grad.norm(dim=1)
    assert g[1] < g[0]  # the dry basin's small flow error does not dominate the gradient


def test_kge_loss_needs_the_basin_means():
    q = torch.ones(1, 10)
    with pytest.raises(ValueError, match="mean"):
        window_loss(q, q, torch.ones(1), "kge")
