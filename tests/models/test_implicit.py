"""The diagonally implicit methods (basinsx.models.implicit): accuracy, exact sensitivities, options."""

import numpy as np
import pytest

import basinsx.models as bm
from basinsx.design import latin_hypercube

ODE = ["gr4j_ode", "hymod", "hmodel"]
SCHEMES = ["sdirk", "trbdf2", "esdirk3"]
THETA = {
    "gr4j_ode": [350.0, -0.5, 90.0, 1.7],
    "hymod": [250.0, 0.6, 0.7, 0.02, 0.45],
    "hmodel": [5.0, 200.0, 5.0, 2.0, 1.5, 2.0, 40.0],
}


def _forcing(n, seed=0):
    rng = np.random.default_rng(seed)
    day = np.arange(n)
    p = rng.gamma(0.5, 10.0, n) * (rng.random(n) < 0.5)
    e = np.clip(2.5 + 2.0 * np.sin(2 * np.pi * (day - 100) / 365.25), 0, None)
    return np.vstack([p, e])


@pytest.mark.parametrize("name", ODE)
def test_dirk_flow_within_1e3_of_tight_reference_on_a_latin_hypercube(name):
    """Every scheme: no divergence and max|q - q_ref| <= 1e-3 max q_ref across the bounds (default tolerances)."""
    m = bm.get(name)
    f = _forcing(400, seed=1)
    lo = np.array([m.bounds[p][0] for p in m.params])
    hi = np.array([m.bounds[p][1] for p in m.params])
    u = np.asarray(latin_hypercube(12, len(m.params), seed=3))
    for theta in lo + u * (hi - lo):
        q_ref = m.run(theta, f, warmup=60, sensitivities=False, method="esdirk3", rtol=1e-8, atol=1e-8)[0]
        for scheme in SCHEMES:
            q = m.run(theta, f, warmup=60, sensitivities=False, method=scheme)[0]
            assert np.all(np.isfinite(q))
            assert np.abs(q - q_ref).max() <= 1e-3 * max(q_ref.max(), 1e-3), (scheme, theta)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", ODE)
def test_dirk_sensitivities_are_derivatives_of_the_discrete_map(name, scheme):
    """Fixed steps (hmin = h0 = hmax): the staggered-direct sensitivities match central differences."""
    m = bm.get(name)
    theta = np.array(THETA[name])
    f = _forcing(300)
    opts = {"method": scheme, "rtol": 1e-7, "atol": 1e-7, "h0": 0.25, "hmin": 0.25, "hmax": 0.25}
    q, jac = m.run(theta, f, warmup=30, **opts)
    for j in range(len(theta)):
        h = 1e-6 * max(abs(theta[j]), 1.0)
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        fd = (m.run(tp, f, warmup=30, sensitivities=False, **opts)[0]
              - m.run(tm, f, warmup=30, sensitivities=False, **opts)[0]) / (2 * h)
        scale = np.abs(jac[:, j]).max()
        assert scale > 0
        assert np.abs(fd - jac[:, j]).max() / scale < 1e-4, (m.params[j], np.abs(fd - jac[:, j]).max() / scale)


def test_sdirk_is_stable_where_fixed_heun_diverges():
    """hmodel's interception store: 4 fixed Heun steps a day blow up; SDIRK at steps up to the same 6 h does not.

    (Its step is shortened only where Newton fails on a kink of the store; at a fixed 6 h Newton fails there.)
    """
    m = bm.get("hmodel")
    theta = np.array([0.5, 200.0, 5.0, 2.0, 1.5, 2.0, 40.0])
    f = _forcing(200)
    with pytest.raises(FloatingPointError):
        m.run(theta, f, method="fixed", n_sub=4)
    q = m.run(theta, f, sensitivities=False, method="sdirk", h0=0.25, hmin=0.01, hmax=0.25)[0]
    q_ref = m.run(theta, f, sensitivities=False, method="adaptive")[0]
    assert np.abs(q - q_ref).max() < 1e-3 * q_ref.max()


def test_method_option():
    m = bm.get("hymod")
    theta, f = np.array(THETA["hymod"]), _forcing(100)
    with pytest.raises(ValueError, match="method must be one of"):
        m.run(theta, f, method="rk45")
    with pytest.raises(ValueError, match="positive tolerances"):
        m.run(theta, f, method="sdirk", rtol=0.0)
    q_default = m.run(theta, f, sensitivities=False, method="sdirk")[0]
    q_explicit = m.run(theta, f, sensitivities=False, method="sdirk", rtol=1e-3, atol=1e-3)[0]
    assert np.array_equal(q_default, q_explicit)
    q_adaptive = m.run(theta, f, sensitivities=False, method="adaptive")[0]
    assert np.array_equal(q_adaptive, m.run(theta, f, sensitivities=False, method="adaptive", rtol=1e-5, atol=1e-5)[0])
    # hymod's default method is ros34pw2 (tests/models/test_rosenbrock.py), at its default tolerance
    q_default = m.run(theta, f, sensitivities=False)[0]
    assert np.array_equal(q_default, m.run(theta, f, sensitivities=False, method="ros34pw2", rtol=5e-4, atol=5e-4)[0])


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", ODE)
def test_dirk_flow_does_not_depend_on_the_sensitivities(name, scheme):
    """The sensitivities ride along: the same steps and Newton iterates with and without them, bit for bit."""
    m = bm.get(name)
    theta, f = np.array(THETA[name]), _forcing(200, seed=2)
    q, jac = m.run(theta, f, warmup=30, method=scheme)
    assert np.all(np.isfinite(jac)) and np.abs(jac).max() > 0
    assert np.array_equal(q, m.run(theta, f, warmup=30, sensitivities=False, method=scheme)[0])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_dirk_sensitivities_match_the_continuous_solution(scheme):
    """Adaptive steps at the default tolerance: the Jacobian within 1e-2 of a tight Heun reference (per column)."""
    m = bm.get("hymod")
    theta, f = np.array(THETA["hymod"]), _forcing(300, seed=4)
    jac = m.run(theta, f, warmup=30, method=scheme)[1]
    ref = m.run(theta, f, warmup=30, method="adaptive", rtol=1e-8, atol=1e-8)[1]
    assert (np.abs(jac - ref).max(axis=0) / np.abs(ref).max(axis=0)).max() < 1e-2


def test_model_default_tolerance_per_method():
    """gr4j_ode's spec sets its own implicit tolerances; the other models keep the method's default."""
    theta, f = np.array(THETA["gr4j_ode"]), _forcing(150)
    m = bm.get("gr4j_ode")
    assert m.solver_options["rtol"]["sdirk"] == 3e-4
    q = m.run(theta, f, warmup=30, sensitivities=False, method="sdirk")[0]
    assert np.array_equal(q, m.run(theta, f, warmup=30, sensitivities=False, method="sdirk", rtol=3e-4, atol=3e-4)[0])
    assert not np.array_equal(q, m.run(theta, f, warmup=30, sensitivities=False, method="sdirk", rtol=1e-3,
                                       atol=1e-3)[0])
    # Heun keeps its own default
    q = m.run(theta, f, warmup=30, sensitivities=False)[0]
    assert np.array_equal(q, m.run(theta, f, warmup=30, sensitivities=False, rtol=1e-5, atol=1e-5)[0])
    assert bm.get("hymod").solver_options["rtol"] is None
