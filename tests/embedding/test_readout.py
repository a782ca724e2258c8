"""basinsx.embedding.readout: the ridge readout and its leave-one-out choice of penalty."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# imported after the importorskip: basinsx.embedding needs torch
from basinsx.embedding.readout import fit_ridge  # noqa: E402


def _ridge(xa, y, alpha):
    """Explicit ridge with an unpenalised intercept column first."""
    return np.linalg.solve(xa.T @ xa + np.diag([0.0] + [alpha] * (xa.shape[1] - 1)), xa.T @ y)


def test_ridge_readout_matches_explicit_leave_one_out():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5)) * [1.0, 10.0, 0.1, 3.0, 1.0] + 2.0
    y = np.stack([x @ [1.0, 0.1, 5.0, 0.0, 0.0] + rng.normal(0, 0.5, 30), rng.normal(size=30)], axis=1)
    y[[3, 7], 0] = np.nan  # unknown attribute values are skipped per column
    alphas = np.logspace(-2, 3, 6)
    fit = fit_ridge(x, y, alphas)
    xs = (x - x.mean(0)) / x.std(0)
    for j in range(2):
        ok = np.isfinite(y[:, j])
        xa, yj = np.column_stack([np.ones(ok.sum()), xs[ok]]), y[ok, j]
        rest = [np.arange(len(yj)) != i for i in range(len(yj))]
        loo = [np.mean([(yj[i] - xa[i] @ _ridge(xa[r], yj[r], a)) ** 2 for i, r in enumerate(rest)]) for a in alphas]
        best = alphas[int(np.argmin(loo))]
        assert fit["alpha"][j] == best
        np.testing.assert_allclose(x[ok] @ fit["coef"][:, j] + fit["intercept"][j], xa @ _ridge(xa, yj, best),
                                   rtol=1e-5, atol=1e-5)
    assert fit["alpha"][1] == alphas[-1]  # pure noise: the strongest penalty wins
