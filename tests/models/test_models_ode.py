"""ODE models (gr4j_ode, hymod, hmodel, with and without snow): hand-coded Jacobians, sensitivities, solver."""

import importlib

import numpy as np
import pytest

import basinsx.models as bm

THETA = {
    "gr4j_ode": [350.0, -0.5, 90.0, 1.7],
    "hymod": [250.0, 0.6, 0.7, 0.02, 0.45],
    "hmodel": [5.0, 200.0, 5.0, 2.0, 1.5, 2.0, 40.0],
}
SNOW = [0.5, 3.0]
ODE = ["gr4j_ode", "hymod", "hmodel"]


def _forcing(n, seed=0):
    """Rain with dry spells, seasonal PET and temperature crossing zero (so snow accumulates and melts)."""
    rng = np.random.default_rng(seed)
    day = np.arange(n)
    p = rng.gamma(0.5, 8.0, n) * (rng.random(n) < 0.5)
    e = np.clip(2.5 + 2.0 * np.sin(2 * np.pi * (day - 100) / 365.25) + rng.normal(0, 0.3, n), 0, None)
    t = 5.0 + 12.0 * np.sin(2 * np.pi * (day - 100) / 365.25) + rng.normal(0, 3.0, n)
    return np.vstack([p, e, t])


def _model_theta(name, snow):
    m = bm.get(name, snow=snow)
    theta = np.array(THETA[name] + (SNOW if snow else []), float)
    for k, v in zip(m.params, theta):
        lo, hi = m.bounds[k]
        assert lo <= v <= hi
    return m, theta


@pytest.mark.parametrize("snow", [False, True])
@pytest.mark.parametrize("name", ODE)
def test_hand_coded_rhs_jacobians_match_central_differences(name, snow):
    mod = importlib.import_module(f"basinsx.models.{name}")
    rhs = mod._rhs_snow if snow else mod._rhs
    m, theta = _model_theta(name, snow)
    nx, d = len(m.states), len(theta)
    rng = np.random.default_rng(42)

    def call(x, th, forc, jac=False):
        f, a, b = np.zeros(nx), np.zeros((nx, nx)), np.zeros((nx, d))
        rhs(x, th, forc, f, a, b, np.zeros(nx), jac)
        return f, a, b

    for _ in range(5):
        x = rng.uniform(0.05, 0.9, nx) * np.array([1.0 if s == "q_cum" else 40.0 for s in m.states])
        forc = np.array([rng.uniform(0, 25), rng.uniform(0, 6), rng.uniform(-6, 6)])[: len(m.forcings)]
        f, a, b = call(x, theta, forc, jac=True)
        a_fd, b_fd = np.zeros_like(a), np.zeros_like(b)
        for i in range(nx):
            h = 1e-6 * max(1.0, abs(x[i]))
            xp, xm = x.copy(), x.copy()
            xp[i] += h
            xm[i] -= h
            a_fd[:, i] = (call(xp, theta, forc)[0] - call(xm, theta, forc)[0]) / (2 * h)
        for j in range(d):
            h = 1e-6 * max(1.0, abs(theta[j]))
            tp, tm = theta.copy(), theta.copy()
            tp[j] += h
            tm[j] -= h
            b_fd[:, j] = (call(x, tp, forc)[0] - call(x, tm, forc)[0]) / (2 * h)
        np.testing.assert_allclose(a, a_fd, rtol=1e-6, atol=1e-7 * np.abs(a_fd).max())
        np.testing.assert_allclose(b, b_fd, rtol=1e-6, atol=1e-7 * np.abs(b_fd).max())


@pytest.mark.parametrize("snow", [False, True])
@pytest.mark.parametrize("name", ODE)
def test_fixed_step_sensitivities_are_exact_derivatives(name, snow):
    """Fixed Heun steps: the integrated sensitivities are the derivative of the discrete map."""
    m, theta = _model_theta(name, snow)
    f = _forcing(500)[: len(m.forcings)]
    # the interception store of hmodel is stiff in heavy rain (rate ~ 5 P / imax): explicit steps
    # must be short enough to be stable
    opts = {"method": "fixed", "n_sub": 128 if name == "hmodel" else 8}
    q, jac = m.run(theta, f, warmup=60, **opts)
    assert q.mean() > 0.05
    for j in range(len(theta)):
        h = 1e-6 * max(abs(theta[j]), 1.0)
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        qp = m.run(tp, f, warmup=60, sensitivities=False, **opts)[0]
        qm = m.run(tm, f, warmup=60, sensitivities=False, **opts)[0]
        fd = (qp - qm) / (2 * h)
        scale = np.abs(jac[:, j]).max()
        assert scale > 0, m.params[j]
        assert np.abs(fd - jac[:, j]).max() / scale < 1e-6, (m.params[j], np.abs(fd - jac[:, j]).max() / scale)


@pytest.mark.parametrize("name", ODE)
def test_adaptive_solution_and_sensitivities_converge(name):
    """Adaptive Heun-Euler at the default tolerances agrees with a fine fixed-step reference."""
    m, theta = _model_theta(name, True)
    f = _forcing(400, seed=3)
    q, jac = m.run(theta, f)
    q_ref, jac_ref = m.run(theta, f, method="fixed", n_sub=256)
    assert np.abs(q - q_ref).max() < 1e-3 * q_ref.max()
    assert np.all(np.abs(jac - jac_ref).max(axis=0) < 1e-2 * np.abs(jac_ref).max(axis=0))
    q_loose, _ = m.run(theta, f, sensitivities=False, rtol=1e-3, atol=1e-3)
    assert np.abs(q_loose - q_ref).max() < 5e-2 * q_ref.max()


@pytest.mark.parametrize("name", ODE)
def test_mass_balance_without_evaporation(name):
    """With zero PET and no exchange all rain leaves as flow or stays stored: nothing is created."""
    m, theta = _model_theta(name, False)
    if name == "gr4j_ode":
        theta[1] = 0.0
    f = _forcing(1500)[:2]
    f[1] = 0.0
    f[0, 1000:] = 0.0  # long dry tail drains the stores
    q, _ = m.run(theta, f, sensitivities=False)
    initial = 0.3 * theta[0] + 0.5 * theta[2] if name == "gr4j_ode" else 0.0
    assert q.sum() <= f[0].sum() + initial + 1e-6
    assert q.sum() > 0.5 * f[0].sum()


def test_registry():
    assert set(bm.available()) >= {"gr4j", "gr4j_ode", "hymod", "hmodel"}
    for name in bm.available():
        own_snow = not bm.spec(name).snow  # a model with its own snow routine (hbv) takes no snow option
        for snow in (False,) if own_snow else (False, True):
            m = bm.get(name, snow=snow)
            assert set(m.bounds) == set(m.params) == set(m.units)
            assert all(lo < hi for lo, hi in m.bounds.values())
            assert m.forcings == (("prcp", "pet", "tmean") if snow or own_snow else ("prcp", "pet"))
            assert (m.states[0] == "swe") == snow
    with pytest.raises(ValueError, match="unknown model"):
        bm.get("no_such_model")


@pytest.mark.parametrize("name", ["gr4j", "hymod"])
def test_bad_forcing_and_options(name):
    m = bm.get(name)
    theta = np.array([300.0, 0.0, 80.0, 2.0]) if name == "gr4j" else _model_theta(name, False)[1]
    f = _forcing(100)[:2]
    bad = f.copy()
    bad[1, 37] = np.nan
    with pytest.raises(ValueError, match="'pet' is NaN at time index 37"):
        m.run(theta, bad)
    bad[0, 20] = -999.0  # a fill value in precipitation, earlier than the NaN
    with pytest.raises(ValueError, match=r"'prcp' is negative \(-999\) at time index 20"):
        m.run(theta, bad)
    bad[0, 20], bad[0, 10] = 0.0, -np.inf
    with pytest.raises(ValueError, match="'prcp' is infinite at time index 10"):
        m.run(theta, bad)
    bad[0, 10] = -1e-7  # round-off below zero is no error
    with pytest.raises(ValueError, match="'pet' is NaN at time index 37"):
        m.run(theta, bad)
    neg = f.copy()
    neg[1, [3, 5]] = -0.2
    with pytest.warns(bm.NegativePETWarning, match="2 negative PET"):
        q_neg, _ = m.run(theta, neg)
    clipped = neg.copy()
    clipped[1] = np.maximum(clipped[1], 0)
    np.testing.assert_array_equal(q_neg, m.run(theta, clipped)[0])
    with pytest.raises(ValueError, match="parameters"):
        m.run(theta[:-1], f)
    with pytest.raises(ValueError, match=rf"\['{m.params[0]}'\] must be > 0"):
        m.run(np.r_[-1.0, theta[1:]], f)
    with pytest.raises(ValueError, match="warmup"):
        m.run(theta, f, warmup=100)
    with pytest.raises(TypeError, match="unknown solver options"):
        m.run(theta, f, tolerance=1e-3)
    if name != "gr4j":
        with pytest.raises(ValueError, match="hmin <= h0"):
            m.run(theta, f, hmin=0.5, h0=0.1)
        with pytest.raises(ValueError, match="method"):
            m.run(theta, f, method="rk4")


def test_unstable_fixed_step_is_reported():
    m = bm.get("hmodel")
    theta = np.array([0.5, 10.0, 100.0, 100.0, -10.0, 0.1, 1.0])  # stiff corner of the box
    f = _forcing(200)[:2] * 5
    with pytest.raises(FloatingPointError, match="diverged"):
        m.run(theta, f, method="fixed", n_sub=1)
    q, _ = m.run(theta, f)  # the adaptive solver copes
    assert np.all(np.isfinite(q))
