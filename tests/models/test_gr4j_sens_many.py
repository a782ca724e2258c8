"""``_grcore.gr4j_sens_many``: GR4J with sensitivities for many basins side by side, bit-equal to one at a time."""

import numpy as np
import pytest

import basinsx
import basinsx.models as bm
from basinsx.models._grcore import SENS_BLOCK, gr4j_sens, gr4j_sens_many


def _forcing(n_basins, rows=3):
    """Real forcing (prcp, pet, tmean)[:rows] of the sample's basins, cycled to ``n_basins``, four years.

    Contiguous, as the parameters, and every call below leaves ``block`` at its default: one compiled
    signature of the kernel for the module, the one ``gr_batch`` calls (a cold compile takes about a minute).
    """
    ds = basinsx.open_dataset("sample", chunks=None).sel(time=slice("1990", "1993"))
    f = np.stack([ds["prcp"].values, ds.hydro.pet("oudin").values, ds["tmean"].values], axis=1).astype(float)
    f = f[np.arange(n_basins) % f.shape[0]].copy()
    f[1::7, 0, 400:700] = 0.0  # dry spells: the production store drained, the routing store emptied (x2 < 0)
    return np.ascontiguousarray(f[:, :rows])


def _theta(n_basins, snow, seed):
    """Random sets within the bounds plus the corners that switch branches, one per basin."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array([10.0, -10.0, 1.0, 0.5]), np.array([3000.0, 5.0, 1000.0, 10.0])
    # x4 on integers, at its bounds and beyond 19 days (every basin its own unit-hydrograph length);
    # WS > 13 (x1 = 4 mm), the routing store emptied by the exchange (x2 = -10)
    extra = [[350.0, 0.5, 90.0, x4] for x4 in (0.5, 1.0, 2.5, 7.0, 10.0, 19.5, 24.0)]
    theta = np.vstack([lo, hi, extra, [4.0, -10.0, 5.0, 2.0], [50.0, -10.0, 2.0, 0.5]])
    theta = np.vstack([theta, lo + rng.random((n_basins - len(theta), 4)) * (hi - lo)])
    if snow == 1:
        theta = np.hstack([theta, rng.uniform([-2.0, 1.0], [2.0, 6.0], (n_basins, 2))])
    return theta


@pytest.mark.parametrize("snow", [0, 1])
@pytest.mark.parametrize("n_basins", [3, 13, SENS_BLOCK + 8])
def test_gr4j_sens_many_equals_gr4j_sens_per_basin(snow, n_basins):
    # blocks of basins with similar x4, the last one short
    forcing = _forcing(n_basins, 3 if snow else 2)
    theta = np.ascontiguousarray(_theta(max(n_basins, 13), snow, seed=n_basins + snow)[::-1][:n_basins])
    q, jac = gr4j_sens_many(theta, forcing, 365, snow)
    assert q.shape == (n_basins, forcing.shape[2] - 365) and jac.shape == q.shape + (theta.shape[1],)
    for b in range(n_basins):
        qb, jb = gr4j_sens(theta[b], forcing[b], 365, snow)
        # the same operations in the same order: flow and Jacobian bit for bit
        np.testing.assert_array_equal(q[b], qb)
        np.testing.assert_array_equal(jac[b], jb)
    # the Jacobian's columns are exercised (d q / d x4 is zero where x4 <= 1: one ordinate per unit hydrograph)
    assert (np.abs(jac).max(axis=1) > 0.0).mean() > 0.9


def test_gr4j_sens_many_cemaneige_rows():
    # snow 2: water input and its derivatives (two parameters) from a snow module run beforehand
    forcing = _forcing(14, 2)
    rng = np.random.default_rng(8)
    dw = rng.normal(0.0, 0.3, (14, 2, forcing.shape[2]))
    forcing = np.concatenate([forcing, dw], axis=1)
    theta = np.hstack([_theta(14, 0, seed=9), rng.uniform(0.0, 1.0, (14, 2))])
    q, jac = gr4j_sens_many(theta, forcing, 100, 2)
    for b in range(14):
        qb, jb = gr4j_sens(theta[b], forcing[b], 100, 2)
        np.testing.assert_array_equal(q[b], qb)
        np.testing.assert_array_equal(jac[b], jb)


def test_gr4j_sens_many_drains_the_stores():
    # the clamps the comparisons above rely on are reached: no flow at all (R emptied, QD <= 0) on some days,
    # in several basins (x2 = -10), next to basins that never run dry
    forcing = _forcing(13, 2)
    theta = _theta(13, 0, seed=1)
    q, _ = gr4j_sens_many(theta, forcing, 0, 0)
    dry = (q == 0.0).any(axis=1)
    assert 2 <= dry.sum() < len(dry)


@pytest.mark.parametrize("snow", [None, True])
def test_run_batch_equals_run_on_real_forcing(snow):
    m = bm.get("gr4j", snow=snow)
    n_basins = 21
    forcing = _forcing(n_basins, len(m.forcings))
    theta = _theta(n_basins, 1 if snow else 0, seed=4)
    q, jac = m.run_batch(theta, forcing, warmup=365)
    for b in range(n_basins):
        qb, jb = m.run(theta[b], forcing[b], warmup=365)
        np.testing.assert_array_equal(q[b], qb)
        np.testing.assert_array_equal(jac[b], jb)
