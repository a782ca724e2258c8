"""Initial states and state continuation: ``Model.run(initial_states=..., return_states=True)`` and ``simulate``."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import basinsx.models as bm
from basinsx.simulation import sensitivity, simulate

THETA = {
    "gr4j": [350.0, -0.5, 90.0, 1.7],
    "gr5j": [350.0, -0.5, 90.0, 1.7, 0.4],
    "gr6j": [350.0, -0.5, 90.0, 1.7, 0.2, 20.0],
    "gr4j_ode": [350.0, -0.5, 90.0, 1.7],
    "hymod": [250.0, 0.6, 0.7, 0.02, 0.45],
    "hmodel": [5.0, 200.0, 5.0, 2.0, 1.5, 2.0, 40.0],
}
SNOW = [0.5, 3.0]
ODE = ("gr4j_ode", "hymod", "hmodel")


def _forcing(n, seed=0):
    """Rain with dry spells, seasonal PET and temperature crossing zero (snow accumulates and melts)."""
    rng = np.random.default_rng(seed)
    day = np.arange(n)
    p = rng.gamma(0.5, 8.0, n) * (rng.random(n) < 0.5)
    e = np.clip(2.5 + 2.0 * np.sin(2 * np.pi * (day - 100) / 365.25) + rng.normal(0, 0.3, n), 0, None)
    t = 5.0 + 12.0 * np.sin(2 * np.pi * (day - 100) / 365.25) + rng.normal(0, 3.0, n)
    return np.vstack([p, e, t])


def _model(name, snow=False):
    m = bm.get(name, snow=snow)
    return m, np.array(THETA[name] + (SNOW if snow else []), float), _forcing(500)[: len(m.forcings)]


CASES = [("gr4j", False), ("gr5j", False), ("gr6j", False), ("gr4j", True), ("gr6j", True)]
CASES += [(name, snow) for name in ODE for snow in (False, True)]


@pytest.mark.parametrize(("name", "snow"), CASES)
def test_a_run_continues_another_exactly(name, snow):
    m, theta, f = _model(name, snow)
    # the adaptive step size is the integrator's own state, which a restart resets: fixed steps continue exactly
    opts = {"method": "fixed", "n_sub": 32} if name in ODE else {}
    q, _, end = m.run(theta, f, sensitivities=False, return_states=True, **opts)
    k = 400  # in winter: with snow, the pack carries over
    q1, _, mid = m.run(theta, f[:, :k], sensitivities=False, return_states=True, **opts)
    q2, _, end2 = m.run(theta, f[:, k:], sensitivities=False, initial_states=mid, return_states=True, **opts)
    np.testing.assert_allclose(np.concatenate([q1, q2]), q, rtol=0, atol=1e-12 * q.max())
    assert set(end) == set(m.states) - {"q_cum"}
    for s in end:
        np.testing.assert_allclose(end2[s], end[s], rtol=0, atol=1e-12 * max(1.0, np.max(np.abs(end[s]))))
    if snow:
        assert mid["swe"] > 1.0


@pytest.mark.parametrize("name", ODE)
def test_adaptive_continuation_is_within_the_tolerance(name):
    m, theta, f = _model(name)
    q, _, _ = m.run(theta, f, sensitivities=False, return_states=True, method="adaptive")
    q1, _, mid = m.run(theta, f[:, :211], sensitivities=False, return_states=True, method="adaptive")
    q2, _ = m.run(theta, f[:, 211:], sensitivities=False, initial_states=mid, method="adaptive")
    assert np.max(np.abs(np.concatenate([q1, q2]) - q)) < 1e-5 * q.max()  # rtol = atol = 1e-5


@pytest.mark.parametrize(("name", "snow"), [("gr4j", False), ("gr6j", True), ("hymod", True), ("gr4j_ode", False)])
def test_jacobian_with_given_initial_states_matches_central_differences(name, snow):
    m, theta, f = _model(name, snow)
    opts = {"method": "fixed", "n_sub": 32} if name in ODE else {}
    _, _, states = m.run(theta, f[:, :200], sensitivities=False, return_states=True, **opts)
    # keep one state at its default (a fraction of a capacity, with its derivative) where there is one
    init = {k: v for k, v in states.items() if k != "production"}
    q, jac = m.run(theta, f[:, 200:], warmup=30, initial_states=init, **opts)
    fd = np.zeros_like(jac)
    for j in range(theta.size):
        h = 1e-6 * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        qp, _ = m.run(tp, f[:, 200:], warmup=30, sensitivities=False, initial_states=init, **opts)
        qm, _ = m.run(tm, f[:, 200:], warmup=30, sensitivities=False, initial_states=init, **opts)
        fd[:, j] = (qp - qm) / (2 * h)
    scale = np.abs(fd).max(axis=0) + 1e-12
    assert np.max(np.abs(jac - fd) / scale) < 1e-4


def test_given_levels_are_constants_and_omitted_ones_keep_their_derivative():
    m, theta, f = _model("gr4j")
    x1, x3 = theta[0], theta[2]
    # the defaults as given constants: same flow, but the derivative through the initial fill is gone
    q0, j0 = m.run(theta, f)
    q1, j1 = m.run(theta, f, initial_states={"production": 0.3 * x1, "routing": 0.5 * x3})
    np.testing.assert_array_equal(q1, q0)
    assert np.abs(j1[:5, 0] - j0[:5, 0]).max() > 1e-3 * np.abs(j0[:5, 0]).max()
    q2, j2 = m.run(theta, f, initial_states={"routing": 0.5 * x3})
    np.testing.assert_array_equal(q2, q0)
    # x1's derivative runs through the default production fill (the default start runs the specialised
    # kernel, gr4j_sens, given states the shared one: the same derivatives up to rounding)
    np.testing.assert_allclose(j2[:, 0], j0[:, 0], rtol=0.0, atol=1e-12 * np.abs(j0[:, 0]).max())


def test_water_in_the_unit_hydrograph_arrives_on_the_first_day():
    m, theta, f = _model("gr4j")
    # uh2[0] was consumed on the day before the start; uh2[1] reaches the direct branch on day 1
    # (routing store empty: no exchange, so the 5 mm arrive as they are)
    uh2 = np.zeros(40)
    uh2[1] = 5.0
    q0, _ = m.run(theta, f, sensitivities=False, initial_states={"routing": 0.0})
    q1, _ = m.run(theta, f, sensitivities=False, initial_states={"routing": 0.0, "uh2": uh2})
    assert q1[0] - q0[0] == pytest.approx(5.0, abs=1e-12)
    np.testing.assert_array_equal(q1[1:], q0[1:])


@pytest.mark.parametrize(("states", "match"), [
    ({"soil": 1.0}, "unknown initial states \\['soil'\\]"),
    ({"uh1": np.zeros(19)}, "'uh1' must have shape \\(20,\\)"),
    ({"production": [1.0, 2.0]}, "'production' must have shape \\(\\)"),
    ({"routing": -1.0}, "'routing' must be >= 0"),
    ({"production": np.nan}, "'production' must be finite"),
])
def test_bad_initial_states_are_clear_errors(states, match):
    m, theta, f = _model("gr4j")
    with pytest.raises(ValueError, match=match):
        m.run(theta, f, initial_states=states)


def test_state_rules_of_other_models():
    m, theta, f = _model("gr6j")
    q, _ = m.run(theta, f, sensitivities=False, initial_states={"exponential": -20.0})  # a signed store
    assert np.all(np.isfinite(q))
    m, theta, f = _model("hymod")
    with pytest.raises(ValueError, match="unknown initial states \\['q_cum'\\]"):
        m.run(theta, f, initial_states={"q_cum": 1.0})


CN = {"cemaneige": [0.5, 3.0], "cemaneige_hyst": [0.3, 4.0, 20.0, 0.6]}
HYPS = np.linspace(200.0, 2200.0, 101)
DATES = np.arange("2000-01-01", 500, dtype="datetime64[D]")
CN_CASES = [(name, snow) for name in ("gr4j", "gr6j", "hymod", "sacsma", "xinanjiang") for snow in CN]


def _cn_model(name, snow, n_layers=5):
    m = bm.get(name, snow=snow, hypsometry=HYPS, n_layers=n_layers, station_elevation=900.0)
    runoff = m.params[: -len(CN[snow])]
    theta = THETA.get(name) or [np.sqrt(lo * hi) if lo > 0 and hi / lo > 100 else 0.5 * (lo + hi)
                                for lo, hi in (m.bounds[p] for p in runoff)]
    return m, np.array(list(theta) + CN[snow], float), _forcing(500)[: len(m.forcings)]


@pytest.mark.parametrize(("name", "snow"), CN_CASES)
def test_a_run_behind_cemaneige_continues_another_exactly(name, snow):
    m, theta, f = _cn_model(name, snow)
    opts = {"method": "fixed", "n_sub": 32} if name in ODE else {}
    q, _, end = m.run(theta, f, sensitivities=False, dates=DATES, return_states=True, **opts)
    assert set(end) == set(m.states) - {"q_cum"}
    assert end["cn_pack"].shape == (5,)
    # the melt threshold follows from the solid precipitation of the forcing given: the first part takes the whole's
    threshold = {"cn_threshold": end["cn_threshold"]}
    for k in (30, 200, 400):  # early winter (thermal state below zero), summer, late winter (pack and ratio)
        q1, _, mid = m.run(theta, f[:, :k], sensitivities=False, dates=DATES[:k], initial_states=threshold,
                           return_states=True, **opts)
        q2, _, end2 = m.run(theta, f[:, k:], sensitivities=False, dates=DATES[k:], initial_states=mid,
                            return_states=True, **opts)
        np.testing.assert_allclose(np.concatenate([q1, q2]), q, rtol=0, atol=1e-12 * q.max())
        for s in end:
            np.testing.assert_allclose(end2[s], end[s], rtol=0, atol=1e-12 * max(1.0, np.max(np.abs(end[s]))))
    assert mid["cn_pack"].max() > 1.0 and mid["cn_thermal"].min() < 0.0
    if snow == "cemaneige_hyst":
        assert 0.0 < mid["cn_ratio"].min() and mid["cn_ratio"].max() <= 1.0


@pytest.mark.parametrize("snow", list(CN))
def test_jacobian_behind_cemaneige_with_given_states_matches_central_differences(snow):
    m, theta, f = _cn_model("gr4j", snow)
    _, _, states = m.run(theta, f[:, :330], sensitivities=False, dates=DATES[:330], return_states=True)
    assert states["cn_pack"].max() > 1.0
    init = {k: v for k, v in states.items() if k not in ("production", "cn_threshold")}  # two keep their default
    q, jac = m.run(theta, f[:, 330:], dates=DATES[330:], initial_states=init)
    fd = np.zeros_like(jac)
    for j in range(theta.size):
        h = 1e-6 * max(1.0, abs(theta[j]))
        qs = [m.run(t, f[:, 330:], sensitivities=False, dates=DATES[330:], initial_states=init)[0]
              for t in (theta + h * np.eye(theta.size)[j], theta - h * np.eye(theta.size)[j])]
        fd[:, j] = (qs[0] - qs[1]) / (2 * h)
    scale = np.abs(fd).max(axis=0) + 1e-12
    assert np.max(np.abs(jac - fd) / scale) < 1e-4
    assert np.abs(jac[:, m.params.index("cn_kf")]).max() > 1e-3  # the given pack melts: kf matters


@pytest.mark.parametrize(("states", "match"), [
    ({"cn_pack": np.ones(4)}, "'cn_pack' must have shape \\(5,\\)"),
    ({"cn_pack": -np.ones(5)}, "'cn_pack' must be >= 0"),
    ({"cn_thermal": np.ones(5)}, "'cn_thermal' must be <= 0"),
    ({"cn_ratio": np.full(5, 1.5)}, "'cn_ratio' must lie in \\[0, 1\\]"),
])
def test_bad_cemaneige_states_are_clear_errors(states, match):
    m, theta, f = _cn_model("gr4j", "cemaneige_hyst")
    with pytest.raises(ValueError, match=match):
        m.run(theta, f, dates=DATES, initial_states=states)


def test_cemaneige_states_of_a_forcing_without_snowfall_continue():
    # no solid precipitation in the first part: threshold 0, returned, then snow in the second part
    m, theta, f = _cn_model("gr4j", "cemaneige_hyst", n_layers=1)
    warm = f.copy()
    warm[2, :100] = 20.0
    q1, _, mid = m.run(theta, warm[:, :100], sensitivities=False, dates=DATES[:100], return_states=True)
    assert np.all(mid["cn_threshold"] == 0.0)
    q2, _, end = m.run(theta, warm[:, 100:420], sensitivities=False, dates=DATES[100:420], initial_states=mid,
                       return_states=True)
    assert np.all(np.isfinite(q2)) and end["cn_pack"].max() > 1.0
    assert np.all(end["cn_ratio"] == 1.0)  # a pack without threshold melts at full speed, as with masp = 0


def _dataset(n=400):
    f = _forcing(n)
    f2 = _forcing(n, seed=1)
    time = pd.date_range("2000-01-01", periods=n, freq="D")
    basins = ["a", "b"]
    data = {v: (("basin", "time"), np.stack([f[i], f2[i]])) for i, v in enumerate(("prcp", "pet", "tmean"))}
    return xr.Dataset(data, coords={"basin": basins, "time": time})


def test_simulate_returns_and_takes_states_per_basin():
    ds = _dataset()
    params = xr.DataArray([THETA["gr4j"], [500.0, 0.3, 60.0, 2.5]], dims=("basin", "param"),
                          coords={"basin": ["a", "b"], "param": ["x1", "x2", "x3", "x4"]})
    full = simulate(ds, params, "gr4j", return_states=True)
    assert isinstance(full, xr.Dataset)
    assert full["production"].dims == ("basin",) and full["uh1"].dims == ("basin", "uh1_store")
    part1 = simulate(ds.isel(time=slice(0, 150)), params, "gr4j", return_states=True)
    init = {s: part1[s] for s in ("production", "routing", "uh1", "uh2")}
    part2 = simulate(ds.isel(time=slice(150, None)), params, "gr4j", initial_states=init)
    q = xr.concat([part1["q_sim"], part2], dim="time")
    np.testing.assert_allclose(q.values, full["q_sim"].values, rtol=0, atol=1e-12)
    # one scalar for every basin, and the accessor
    a = simulate(ds, params, "gr4j", initial_states={"routing": 10.0})
    b = ds.hydro.simulate(params, "gr4j", initial_states={"routing": xr.DataArray([10.0, 10.0], dims="basin",
                                                                                coords={"basin": ["a", "b"]})})
    np.testing.assert_array_equal(a.values, b.values)
    for basin in ("a", "b"):
        f = ds.sel(basin=basin)[["prcp", "pet"]].to_array().values
        qb, _, end = bm.get("gr4j").run(params.sel(basin=basin).values, f, sensitivities=False,
                                        initial_states={"routing": 10.0}, return_states=True)
        np.testing.assert_array_equal(a.sel(basin=basin).values, qb)
        _, _, end = bm.get("gr4j").run(params.sel(basin=basin).values, f, sensitivities=False, return_states=True)
        for state, value in end.items():
            np.testing.assert_array_equal(full[state].sel(basin=basin).values, value)
    # dask input stays lazy and gives the same numbers
    lazy = simulate(ds.chunk({"basin": 1}), params, "gr4j", return_states=True)
    assert lazy["uh2"].chunks is not None
    xr.testing.assert_identical(lazy.compute(), full)


def test_simulate_takes_states_by_basin_label():
    ds = _dataset()
    params = {"x1": 350.0, "x2": 0.0, "x3": 90.0, "x4": 1.7}
    ref = simulate(ds, params, "gr4j", initial_states={"routing": xr.DataArray([10.0, 40.0], dims="basin",
                                                                               coords={"basin": ["a", "b"]})})
    other_order = xr.DataArray([40.0, 10.0, 5.0], dims="basin", coords={"basin": ["b", "a", "c"]})
    xr.testing.assert_identical(simulate(ds, params, "gr4j", initial_states={"routing": other_order}), ref)
    with pytest.raises(ValueError, match=r"initial state 'routing' has no values for basin\(s\) \['b'\]"):
        simulate(ds, params, "gr4j", initial_states={"routing": other_order.sel(basin=["a"])})
    # one unlabeled forcing, states of two basins: no basin to pick (before: the first basin's, silently)
    one = ds.isel(basin=0, drop=True)
    with pytest.raises(ValueError, match="initial state 'routing' has 2 basins, the forcing 1"):
        simulate(one, params, "gr4j", initial_states={"routing": other_order.sel(basin=["a", "b"])})


@pytest.mark.filterwarnings("ignore:no hypsometry")
def test_simulate_continues_cemaneige_per_basin_on_its_layers():
    ds = _dataset(500)
    # basin b has no hypsometry: one layer, its other layers NaN in the result
    hyps = np.stack([HYPS, np.full(101, np.nan)])
    ds = ds.assign(hypsometry=(("basin", "quantile"), hyps), station_elevation=("basin", [900.0, 300.0]))
    params = {"x1": 350.0, "x2": -0.5, "x3": 90.0, "x4": 1.7, **dict(zip(bm.cemaneige.PARAMS["cemaneige_hyst"],
                                                                          CN["cemaneige_hyst"]))}
    full = simulate(ds, params, "gr4j", snow="cemaneige_hyst", return_states=True)
    assert full["cn_pack"].dims == ("basin", "layer") and full.sizes["layer"] == 5
    assert full["cn_thermal"].attrs["units"] == "degC" and full["cn_ratio"].attrs["units"] == "1"
    assert np.isnan(full["cn_pack"].sel(basin="b").values[1:]).all()
    init = {"cn_threshold": full["cn_threshold"]}
    part1 = simulate(ds.isel(time=slice(0, 400)), params, "gr4j", snow="cemaneige_hyst", initial_states=init,
                     return_states=True)
    assert part1["cn_pack"].max() > 1.0
    init = {s: part1[s] for s in part1.data_vars if s != "q_sim"}
    part2 = simulate(ds.isel(time=slice(400, None)), params, "gr4j", snow="cemaneige_hyst", initial_states=init,
                     return_states=True)
    q = xr.concat([part1["q_sim"], part2["q_sim"]], dim="time")
    np.testing.assert_allclose(q.values, full["q_sim"].values, rtol=0, atol=1e-12)
    xr.testing.assert_allclose(part2.drop_dims("time"), full.drop_dims("time"), rtol=0, atol=1e-12)
    # each basin as Model.run computes it, and dask in, dask out
    m = bm.get("gr4j", snow="cemaneige_hyst", hypsometry=HYPS, station_elevation=900.0)
    f = ds.sel(basin="a")[["prcp", "pet", "tmean"]].to_array().values
    qa, _, end = m.run(list(params.values()), f, sensitivities=False, dates=ds["time"].values, return_states=True)
    np.testing.assert_array_equal(full["q_sim"].sel(basin="a").values, qa)
    np.testing.assert_array_equal(full["cn_pack"].sel(basin="a").values, end["cn_pack"])
    lazy = simulate(ds.chunk({"basin": 1}), params, "gr4j", snow="cemaneige_hyst", return_states=True)
    assert lazy["cn_pack"].chunks is not None
    xr.testing.assert_identical(lazy.compute(), full)


def test_sensitivity_takes_initial_states():
    ds = _dataset()
    params = {"x1": 350.0, "x2": -0.5, "x3": 90.0, "x4": 1.7}
    jac = sensitivity(ds, params, "gr4j", initial_states={"production": 100.0})
    m = bm.get("gr4j")
    _, jb = m.run(list(params.values()), ds.sel(basin="a")[["prcp", "pet"]].to_array().values,
                  initial_states={"production": 100.0})
    np.testing.assert_array_equal(jac.sel(basin="a").values, jb)


def _memoryless(theta, forcing, warmup, sens, snow):
    q = forcing[0, warmup:] / theta[0]
    return q, np.zeros((q.size if sens else 0, theta.size))


def test_a_kernel_without_continuation_and_bad_state_declarations_are_clear_errors():
    spec = bm.ModelSpec("toy_no_states", (bm.Parameter("k", "d", (1.0, 10.0)),), ("storage",), _memoryless)
    bm.register(spec)
    try:
        m = bm.get("toy_no_states")
        assert not m.continuation
        for kwargs in ({"initial_states": {"storage": 1.0}}, {"return_states": True}):
            with pytest.raises(ValueError, match="takes no initial states"):
                m.run([2.0], np.ones((2, 10)), **kwargs)
    finally:
        bm._REGISTRY.pop("toy_no_states")
    for bad in ({"state_sizes": {"other": 3}}, {"state_sizes": {"storage": 0}}, {"signed_states": ("other",)}):
        with pytest.raises(ValueError, match="state_sizes / signed_states"):
            bm.register(bm.ModelSpec("toy_bad_states", (bm.Parameter("k", "d", (1.0, 10.0)),), ("storage",),
                                     _memoryless, continuation=True, **bad))


@pytest.mark.parametrize(("name", "states", "match"), [
    ("gr4j", {"routing": 1e6}, r"initial state 'routing' \(1e\+06 mm\) exceeds its capacity x3 = 90 mm"),
    ("gr4j", {"production": 351.0}, r"'production' \(351 mm\) exceeds its capacity x1 = 350 mm"),
    ("gr5j", {"routing": 90.5}, r"'routing' \(90.5 mm\) exceeds its capacity x3 = 90 mm"),
    ("gr6j", {"production": 400.0}, r"'production' \(400 mm\) exceeds its capacity x1 = 350 mm"),
    ("sacsma", {"uztwc": 200.0}, r"'uztwc' \(200 mm\) exceeds its capacity uztwm = 50 mm"),
    ("sacsma", {"adimc": 500.0}, r"'adimc' \(500 mm\) exceeds its capacity uztwm \+ lztwm = 250 mm"),
    ("xinanjiang", {"lower": 100.0}, r"'lower' \(100 mm\) exceeds its capacity lm = 75 mm"),
    ("xinanjiang", {"free_water": 60.0}, r"'free_water' \(60 mm\) exceeds its capacity sm = 50 mm"),
    ("xinanjiang", {"runoff_area": 1.5}, r"'runoff_area' \(1.5\) exceeds its capacity 1"),
])
def test_initial_states_above_their_stores_capacity_are_refused(name, states, match):
    # before: GR4J's routing store at 1e6 mm with x3 = 90 gave a first-day flow of 1.4e14 mm/d
    m = bm.get(name)
    theta = dict(THETA_BY_NAME.get(name, {}))
    theta = np.array([theta.get(p, _mid(m, p)) for p in m.params])
    f = _forcing(300)[: len(m.forcings)]
    with pytest.raises(ValueError, match=f"{name}: .*{match}"):
        m.run(theta, f, initial_states=states)
    with pytest.raises(ValueError, match=match):  # simulate goes through Model.run
        simulate(_dataset(300), dict(zip(m.params, theta)), name, initial_states=states)
    full = {k: v * (1 + 1e-15) for k, v in _capacity_states(m, theta).items()}  # at capacity, to round-off: taken
    assert np.isfinite(m.run(theta, f, sensitivities=False, initial_states=full)[0]).all()


THETA_BY_NAME = {"gr4j": dict(x1=350.0, x2=0.5, x3=90.0, x4=1.7), "gr5j": dict(x1=350.0, x2=0.5, x3=90.0, x4=1.7),
                 "gr6j": dict(x1=350.0, x2=0.5, x3=90.0, x4=1.7, x6=20.0),
                 "sacsma": dict(uztwm=50.0, lztwm=200.0), "xinanjiang": dict(lm=75.0, sm=50.0)}


def _mid(m, p):
    lo, hi = m.bounds[p]
    return float(np.sqrt(lo * hi)) if lo > 0 and hi / lo > 100 else 0.5 * (lo + hi)


def _capacity_states(m, theta):
    values = dict(zip(m.params, theta))
    return {s: float(sum(values[p] for p in ((c,) if isinstance(c, str) else c)) if not isinstance(c, float | int)
                     else c) for s, c in m.capacities.items()}


@pytest.mark.parametrize("name", ["gr4j", "gr5j", "gr6j", "sacsma", "xinanjiang"])
def test_a_models_own_final_states_are_within_its_capacities(name):
    # the bounds refuse nothing a run itself returns: wet and dry spells end within them
    m = bm.get(name)
    theta = np.array([dict(THETA_BY_NAME[name]).get(p, _mid(m, p)) for p in m.params])
    f = _forcing(400)[: len(m.forcings)]
    wet = f.copy()
    wet[0] = 200.0
    for forcing in (f, wet):
        _, _, end = m.run(theta, forcing, sensitivities=False, return_states=True)
        q, _ = m.run(theta, forcing, sensitivities=False, initial_states=end)
        assert np.isfinite(q).all()


def test_stores_without_a_capacity_take_any_level():
    # linear reservoirs and transit stores have no capacity: HBV's zones, GR's unit hydrographs and exponential store
    m = bm.get("hbv")
    theta = np.array([_mid(m, p) for p in m.params])
    assert m.capacities == {}
    q, _ = m.run(theta, _forcing(100), sensitivities=False, initial_states={"lower": 1e4, "upper": 1e4})
    assert np.isfinite(q).all()
    m = bm.get("gr6j")
    assert set(m.capacities) == {"production", "routing"}
    q, _ = m.run(THETA["gr6j"], _forcing(100)[:2], sensitivities=False,
                 initial_states={"exponential": 1e4, "uh1": np.full(20, 1e3)})
    assert np.isfinite(q).all()


def test_a_spec_declares_its_capacities_and_they_are_checked():
    import dataclasses

    spec = bm.spec("gr4j")
    assert bm.get("gr4j").capacities == {"production": "x1", "routing": "x3"}  # the built-in table
    own = dataclasses.replace(spec, name="gr4j_capped", capacities={"routing": "x3"})
    own.check()
    assert own.model().capacities == {"routing": "x3"}
    for bad in ({"routing": "x9"}, {"soil": "x1"}, {"uh1": "x1"}, {"routing": -1.0}, {"routing": ()}):
        with pytest.raises(ValueError, match="capacities .* must map scalar states"):
            dataclasses.replace(spec, name="gr4j_bad", capacities=bad).check()
