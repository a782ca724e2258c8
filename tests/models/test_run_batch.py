"""``Model.run_batch``: many basins in one call, bit-equal to ``Model.run`` one basin at a time."""

import numpy as np
import pytest

import basinsx.models as bm


def _inputs(m, n_basins=3, n_days=400, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_days)
    forcing = np.stack([np.stack([rng.gamma(0.6, 6.0, n_days),
                                  2.0 + 1.5 * np.sin(2 * np.pi * t / 365) + 0.1 * rng.standard_normal(n_days),
                                  8.0 + 12.0 * np.sin(2 * np.pi * t / 365) + 3 * rng.standard_normal(n_days)])
                        for _ in range(n_basins)])[:, :len(m.forcings)]
    lo = np.array([m.bounds[p][0] for p in m.params])
    hi = np.array([m.bounds[p][1] for p in m.params])
    theta = lo + rng.uniform(0.1, 0.9, (n_basins, len(m.params))) * (hi - lo)
    return theta, forcing


@pytest.mark.parametrize("name,snow", [("gr4j", True), ("gr4j", None), ("gr5j", True), ("gr6j", None),
                                       ("hymod", True)])
@pytest.mark.parametrize("sens", [True, False])
def test_run_batch_equals_run_per_basin(name, snow, sens):
    m = bm.get(name, snow=snow)
    theta, forcing = _inputs(m)
    q, jac = m.run_batch(theta, forcing, warmup=100, sensitivities=sens)
    assert q.shape == (3, 300)
    for b in range(3):
        qb, jb = m.run(theta[b], forcing[b], warmup=100, sensitivities=sens)
        np.testing.assert_array_equal(q[b], qb)
        if sens:
            np.testing.assert_array_equal(jac[b], jb)
    assert (jac is None) == (not sens)


def test_run_batch_checks_parameters_and_forcing():
    m = bm.get("gr4j", snow=True)
    theta, forcing = _inputs(m)
    bad = theta.copy()
    bad[1, 0] = -1.0
    with pytest.raises(ValueError, match="basin 1.*x1"):
        m.run_batch(bad, forcing)
    nan = forcing.copy()
    nan[2, 0, 5] = np.nan
    with pytest.raises(ValueError, match="basin 2.*prcp.*NaN at time index 5"):
        m.run_batch(theta, nan)
    with pytest.raises(ValueError, match="shape"):
        m.run_batch(theta[:2], forcing)
