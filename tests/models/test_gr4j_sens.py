"""``_grcore.gr4j_sens``: GR4J with sensitivities, specialised; the shared kernel's flow bit for bit, its Jacobian."""

import numpy as np

import basinsx
import basinsx.models as bm
from basinsx.models._grcore import N_STATES, gr4j_sens, gr_kernel


def _forcing(basin="09510200"):
    ds = basinsx.open_dataset("sample", basins=[basin], chunks=None).isel(basin=0).sel(time=slice("1990", "1993"))
    return np.vstack([ds["prcp"].values, ds.hydro.pet("oudin").values, ds["tmean"].values]).astype(float)


def _check(theta, forcing, snow):
    x0 = np.full(N_STATES, np.nan)
    q, jac = gr4j_sens(theta, forcing, 365, snow)
    q_ref, jac_ref, _ = gr_kernel(theta, forcing, 365, True, snow, 4, x0)
    np.testing.assert_array_equal(q, q_ref)
    # the same derivatives, rounded in another order (closed forms, sums over PR's history)
    scale = np.maximum(np.abs(jac_ref).max(axis=0), 1e-300)
    assert np.all(np.abs(jac - jac_ref) <= 1e-12 * scale)
    return jac_ref


def test_gr4j_sens_equals_the_shared_kernel():
    forcing = _forcing()[:2]
    rng = np.random.default_rng(5)
    lo, hi = np.array([10.0, -10.0, 1.0, 0.5]), np.array([3000.0, 5.0, 1000.0, 10.0])
    # random sets, the bounds' corners, x4 on integers and beyond 19 days (UH1's last ordinate in use),
    # and clamps active: WS > 13 (x1 = 4 mm, below the bounds), the routing store emptied by the exchange (x2 = -10)
    extra = [[350.0, 0.5, 90.0, x4] for x4 in (1.0, 2.5, 7.0, 19.5, 24.0)]
    theta = np.vstack([lo + rng.random((20, 4)) * (hi - lo), lo, hi, extra, [4.0, -10.0, 5.0, 2.0]])
    for th in theta:
        assert np.abs(_check(th, forcing, 0)).max() > 0.0


def test_gr4j_sens_with_the_degree_day_snow():
    forcing = _forcing("01031500")  # Maine: a snow pack every winter
    rng = np.random.default_rng(6)
    lo, hi = np.array([10.0, -10.0, 1.0, 0.5, -3.0, 0.1]), np.array([3000.0, 5.0, 1000.0, 10.0, 3.0, 10.0])
    for th in np.vstack([lo + rng.random((12, 6)) * (hi - lo), lo, hi, [4.0, -10.0, 5.0, 2.0, 1.0, 3.0]]):
        jac = _check(th, forcing, 1)
        assert np.abs(jac[:, 4:]).max() > 0.0


def test_model_run_and_run_batch_use_it():
    forcing = _forcing()
    theta = np.array([[350.0, 0.5, 90.0, 1.7, 0.0, 3.0], [800.0, -1.0, 200.0, 4.5, 1.0, 2.0]])
    m = bm.get("gr4j", snow=True)
    qb, jb = m.run_batch(theta, np.stack([forcing, forcing]), warmup=365)
    for b in range(2):
        q, jac = gr4j_sens(theta[b], forcing, 365, 1)
        q1, j1 = m.run(theta[b], forcing, warmup=365)
        np.testing.assert_array_equal(q1, q)
        np.testing.assert_array_equal(j1, jac)
        np.testing.assert_array_equal(qb[b], q)
        np.testing.assert_array_equal(jb[b], jac)
