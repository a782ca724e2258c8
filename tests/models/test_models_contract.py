"""The model contract: a toy model registered through the recipe of docs/models.md#adding-a-model, and the checks."""

import dataclasses

import numpy as np
import pytest
from numba import njit

import basinsx.models as bm
from basinsx.models import ModelSpec, Parameter
from basinsx.models.integrate import SOLVER_OPTIONS, Kernel, heun


@njit
def rhs_core(x, th, p, e, f, a, b, dfdp, jac):
    """Linear reservoir with saturating ET: dS/dt = p - e S/(S + c) - S/k, dq_cum/dt = S/k."""
    k, c = th[0], th[1]
    s = x[0]
    f[0] = p - e * s / (s + c) - s / k
    f[1] = s / k
    if not jac:
        return
    a[:, :] = 0.0
    b[:, :] = 0.0
    a[0, 0] = -e * c / (s + c) ** 2 - 1.0 / k
    a[1, 0] = 1.0 / k
    b[0, 0] = s / (k * k)
    b[0, 1] = e * s / (s + c) ** 2
    b[1, 0] = -s / (k * k)
    dfdp[0] = 1.0
    dfdp[1] = 0.0


@njit
def initial(theta):
    return np.zeros(2), np.zeros((2, 2))


@njit
def _run(theta, forcing, x0, s0, warmup, sens, snow, fixed, n_sub, rtol, atol, h0, hmin, hmax):
    return heun(rhs_core, snow, theta, forcing, x0, s0, warmup, sens, fixed, n_sub, rtol, atol, h0, hmin, hmax)


SPEC = ModelSpec(
    "toy_reservoir",
    (Parameter("k", "d", (1.0, 100.0), description="residence time"),
     Parameter("c", "mm", (1.0, 200.0), transform="linear", description="ET half-saturation storage")),
    ("storage", "q_cum"),
    Kernel(initial, _run),
    solver_options=SOLVER_OPTIONS,
    snow=("degree_day", "cemaneige", "cemaneige_hyst"),
    reference="a test",
)


@pytest.fixture
def toy():
    bm.register(SPEC)
    yield
    bm._REGISTRY.pop(SPEC.name)


def _forcing(n=800, seed=1):
    rng = np.random.default_rng(seed)
    day = np.arange(n)
    p = rng.gamma(0.5, 8.0, n) * (rng.random(n) < 0.5)
    e = 2.5 + 2.0 * np.sin(2 * np.pi * (day - 100) / 365.25)
    t = 3.0 + 12.0 * np.sin(2 * np.pi * (day - 100) / 365.25) + rng.normal(0, 3.0, n)
    return np.vstack([p, e, t])


@pytest.mark.parametrize("snow", [False, "degree_day", "cemaneige", "cemaneige_hyst"])
def test_toy_model_registered_through_the_recipe(toy, snow):
    assert "toy_reservoir" in bm.available()
    m = bm.get("toy_reservoir", snow=snow)
    assert m.transforms["k"] == "log" and m.transforms["c"] == "linear" and m.units["c"] == "mm"
    f = _forcing()[: len(m.forcings)]
    theta = np.array([20.0, 30.0] + {False: [], "degree_day": [0.5, 3.0], "cemaneige": [0.5, 3.5],
                                     "cemaneige_hyst": [0.3, 4.0, 20.0, 0.6]}[snow])
    opts = {"method": "fixed", "n_sub": 4}
    q, J = m.run(theta, f, warmup=100, **opts)
    assert q.mean() > 0.1
    for j, p in enumerate(m.params):
        h = 1e-6 * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        fd = (m.run(tp, f, 100, False, **opts)[0] - m.run(tm, f, 100, False, **opts)[0]) / (2 * h)
        scale = max(np.abs(J[:, j]).max(), np.abs(fd).max())
        if p in ("cn_ctg", "cn_thacc"):  # CemaNeige's switch-only parameters: flat almost everywhere
            assert scale == 0.0
            continue
        assert np.abs(fd - J[:, j]).max() / scale < 1e-6, p


def test_registration_checks(toy):
    with pytest.raises(ValueError, match="already registered"):
        bm.register(SPEC)
    with pytest.raises(ValueError, match="already registered"):
        bm.register(dataclasses.replace(SPEC, name="gr4j"))
    k, c = SPEC.parameters
    bad = {
        "not unique": (k, dataclasses.replace(c, name="k")),
        "finite with low < high": (k, dataclasses.replace(c, bounds=(5.0, 5.0))),
        "belong to the snow modules": (k, dataclasses.replace(c, name="f_dd")),
        "units string": (k, dataclasses.replace(c, units="")),
        "transform": (k, dataclasses.replace(c, bounds=(-1.0, 1.0), transform="log")),
    }
    for match, params in bad.items():
        with pytest.raises(ValueError, match=match):
            bm.register(dataclasses.replace(SPEC, name="toy_bad", parameters=params))
    with pytest.raises(ValueError, match="finite with low < high"):
        bm.register(dataclasses.replace(SPEC, name="toy_bad", parameters=(dataclasses.replace(k, bounds=(1, np.inf)),)))
    with pytest.raises(TypeError, match="kernel must be callable"):
        bm.register(dataclasses.replace(SPEC, name="toy_bad", kernel=None))
    with pytest.raises(ValueError, match="forcings"):
        bm.register(dataclasses.replace(SPEC, name="toy_bad", forcings=("prcp", "pet", "snowfall")))
    with pytest.raises(ValueError, match="unknown snow options"):
        bm.register(dataclasses.replace(SPEC, name="toy_bad", snow=("glacier",)))
    with pytest.raises(ValueError, match="identifier"):
        bm.register(dataclasses.replace(SPEC, name="toy bad"))
    assert "toy_bad" not in bm.available()
    with pytest.raises(ValueError, match="does not take snow='cemaneige'"):
        bm.register(dataclasses.replace(SPEC, name="toy_nosnow", snow=()))
        try:
            bm.get("toy_nosnow", snow="cemaneige")
        finally:
            bm._REGISTRY.pop("toy_nosnow")


def test_builtin_specs_pass_the_checks():
    for name in bm.available():
        s = bm.spec(name)
        s.check()
        # every model takes every snow option, except one with a snow routine of its own (it reads tmean itself)
        own_snow = "tmean" in s.forcings
        assert s.reference and set(s.snow) == (set() if own_snow else {"degree_day", "cemaneige", "cemaneige_hyst"})
