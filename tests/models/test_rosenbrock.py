"""The Rosenbrock-W integrator (basinsx.models.rosenbrock, method="ros34pw2"): accuracy, sensitivities, defaults."""

import warnings

import numpy as np
import pytest
from numba import njit
from scipy.linalg import expm

import basinsx
import basinsx.models as bm
from basinsx.design import latin_hypercube
from basinsx.models.integrate import cache_on_kernels
from basinsx.models.rosenbrock import rosenbrock

ODE = ["gr4j_ode", "hymod", "hmodel"]
THETA = {
    "gr4j_ode": [350.0, -0.5, 90.0, 1.7],
    "hymod": [250.0, 0.6, 0.7, 0.02, 0.45],
    "hmodel": [5.0, 200.0, 5.0, 2.0, 1.5, 2.0, 40.0],
}
#: Tolerance at which the Jacobian is checked: the model's default, but gr4j_ode's x2 column (the exchange
#: flux through the sharp smoothed threshold of Q_d) needs 3e-6 to come within 1e-3 (5.7e-3 at its 3e-5)
SENS_TOL = {"gr4j_ode": 3e-6}


@pytest.fixture(scope="module")
def real():
    """Sample basin 01031500, 1981-1983 (prcp, ERA5-Land PET): one warm-up year, two scored."""
    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).isel(basin=0).isel(time=slice(0, 3 * 365))
    return np.vstack([ds["prcp"].values, ds["pet"].values]).astype(float)


def _run(m, theta, f, **opts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.NegativePETWarning)  # ERA5-Land's few condensation days
        return m.run(theta, f, warmup=365, **opts)


@pytest.mark.parametrize("name", ODE)
def test_ros34pw2_flow_within_1e3_of_tight_reference_on_a_latin_hypercube(real, name):
    """Default tolerance, real forcing, 8 sets over the bounds: finite and within 1e-3 of adaptive Heun at 1e-8."""
    m = bm.get(name)
    f = real[:, : 365 + 180]
    lo, hi = (np.array([m.bounds[p][i] for p in m.params]) for i in (0, 1))
    for theta in lo + np.asarray(latin_hypercube(8, len(m.params), seed=5)) * (hi - lo):
        q_ref = _run(m, theta, f, sensitivities=False, method="adaptive", rtol=1e-8, atol=1e-8, hmin=1e-6)[0]
        q = _run(m, theta, f, sensitivities=False, method="ros34pw2")[0]
        assert np.all(np.isfinite(q))
        assert np.abs(q - q_ref).max() <= 1e-3 * max(q_ref.max(), 1e-3), theta


@pytest.mark.parametrize("name", ODE)
def test_ros34pw2_sensitivities_match_central_differences_on_real_forcing(real, name):
    """The Jacobian of the continuous solution: within 1e-3 (per column, of its largest entry) of central
    differences of tightly integrated flows."""
    m = bm.get(name)
    theta = np.array(THETA[name])
    tol = SENS_TOL.get(name)
    q, jac = _run(m, theta, real, method="ros34pw2", **({"rtol": tol, "atol": tol} if tol else {}))
    tight = {"sensitivities": False, "method": "ros34pw2", "rtol": 1e-9, "atol": 1e-9, "hmin": 1e-7}
    for j in range(theta.size):
        h = 1e-4 * abs(theta[j])
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        fd = (_run(m, up, real, **tight)[0] - _run(m, down, real, **tight)[0]) / (2 * h)
        scale = np.abs(fd).max()
        assert scale > 0
        assert np.abs(jac[:, j] - fd).max() <= 1e-3 * scale, (m.params[j], np.abs(jac[:, j] - fd).max() / scale)


@pytest.mark.parametrize(("name", "snow"), [("hymod", True), ("hmodel", "cemaneige")])
def test_ros34pw2_behind_a_snow_option(real, name, snow):
    """The snow options feed the scheme as the other integrators: flow within 1e-3 of adaptive Heun at 1e-8."""
    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).isel(basin=0).isel(time=slice(0, 2 * 365))
    elev = float(ds["elev_mean"])
    layers = {"hypsometry": np.linspace(elev - 300, elev + 500, 101), "station_elevation": elev}
    m = bm.get(name, snow=snow, **(layers if snow == "cemaneige" else {}))
    f = np.vstack([ds[v].values for v in m.forcings]).astype(float)
    theta = THETA[name] + ([0.0, 3.0] if snow is True else [0.5, 4.0])
    q_ref = _run(m, theta, f, sensitivities=False, method="adaptive", rtol=1e-8, atol=1e-8, dates=ds["time"].values)[0]
    q, jac = _run(m, theta, f, method="ros34pw2", dates=ds["time"].values)
    assert np.all(np.isfinite(jac)) and np.abs(jac[:, -1]).max() > 0
    assert np.abs(q - q_ref).max() <= 1e-3 * q_ref.max()


def test_default_method_per_model():
    """ros34pw2 is the default where it met the bounds and beat adaptive Heun (hymod, hmodel), not for gr4j_ode."""
    assert bm.get("hymod").solver_options["method"] == "ros34pw2"
    assert bm.get("hmodel").solver_options["method"] == "ros34pw2"
    assert bm.get("gr4j_ode").solver_options["method"] == "adaptive"
    m, f = bm.get("hmodel"), np.vstack([np.tile([0.0, 12.0, 3.0], 20), np.full(60, 2.0)])
    theta = THETA["hmodel"]
    q = m.run(theta, f, sensitivities=False)[0]
    assert np.array_equal(q, m.run(theta, f, sensitivities=False, method="ros34pw2", rtol=3e-5, atol=3e-5)[0])
    assert not np.array_equal(q, m.run(theta, f, sensitivities=False, method="ros34pw2", rtol=5e-4, atol=5e-4)[0])


@njit(cache=True)
def _coupled_core(x, th, p, e, f, a, b, dfdp, jac):
    """Two linear stores that exchange water both ways (a full Jacobian) and the cumulative outflow of the second."""
    k1, k2, c = th[0], th[1], th[2]
    f[0] = p - k1 * x[0] + c * x[1]
    f[1] = k1 * x[0] - (k2 + c) * x[1]
    f[2] = k2 * x[1]
    if not jac:
        return
    a[:, :] = 0.0
    b[:, :] = 0.0
    a[0, 0], a[0, 1], a[1, 0], a[1, 1], a[2, 1] = -k1, c, k1, -(k2 + c), k2
    b[0, 0], b[0, 2], b[1, 0], b[1, 1], b[1, 2], b[2, 1] = -x[0], x[1], x[0], -x[1], -x[1], x[1]
    dfdp[0], dfdp[1], dfdp[2] = 1.0, 0.0, 0.0


@njit(cache=True)
def _run_coupled(theta, forcing, rtol):
    x0, s0 = np.zeros(3), np.zeros((3, 3))
    return rosenbrock(_coupled_core, 0, 0, theta, forcing, x0, s0, 0, True, rtol, rtol, 1e-3, 1e-6, 1.0)


cache_on_kernels(_run_coupled)  # the compilation (seconds) cached, and redone when the integrator changes


def _coupled_exact(theta, p):
    """Daily outflow of :func:`_coupled_core` by the matrix exponential (constant forcing within a day)."""
    k1, k2, c = theta
    g = np.array([[-k1, c, 0, 0], [k1, -(k2 + c), 0, 0], [0, k2, 0, 0], [0, 0, 0, 0]], float)
    x, q = np.zeros(4), np.empty(p.size)
    for day, pd in enumerate(p):
        g[0, 3] = pd
        x[2], x[3] = 0.0, 1.0
        x = expm(g) @ x
        q[day] = x[2]
    return q


def test_ros34pw2_on_a_full_jacobian_against_the_matrix_exponential():
    """A non-triangular ``I - h gamma A`` takes the LU path: flow and Jacobian match the exact solution."""
    theta = np.array([0.6, 0.3, 0.4])
    p = np.where(np.arange(60) % 7 < 2, 10.0, 0.0)
    f = np.vstack([p, np.zeros(60)])
    q, jac = _run_coupled(theta, f, 1e-8)
    q_ref = _coupled_exact(theta, p)
    assert np.abs(q - q_ref).max() < 1e-6 * q_ref.max()
    for j in range(3):
        up, down = theta.copy(), theta.copy()
        up[j] += 1e-5
        down[j] -= 1e-5
        fd = (_coupled_exact(up, p) - _coupled_exact(down, p)) / 2e-5
        assert np.abs(jac[:, j] - fd).max() < 1e-5 * np.abs(fd).max()
    # the error control works: a loose tolerance is less accurate, and still within its bound's order
    q_loose = _run_coupled(theta, f, 1e-3)[0]
    assert 1e-6 * q_ref.max() < np.abs(q_loose - q_ref).max() < 1e-2 * q_ref.max()
