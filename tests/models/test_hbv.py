"""HBV: exact Jacobian on real forcing, water balance, a hand-computed case, an independent re-implementation,
the registry and calibration."""

import math

import numpy as np
import pytest

import basinsx
import basinsx.models as bm
from basinsx.models.hbv import ROUTING_DAYS, hbv_run, maxbas_weights

PARAMS = ("tt", "cfmax", "sfcf", "cfr", "cwh", "fc", "lp", "beta", "perc", "uzl", "k0", "k1", "k2", "maxbas")
# tt off the 0.01 degC grid of the forcing, so no day sits on the rain/snow switch within a difference step
THETA = {
    "mid": [0.3137, 3.0, 0.9, 0.05, 0.1, 250.0, 0.7, 2.0, 1.5, 20.0, 0.2, 0.05, 0.01, 2.5],
    "low": [-2.4731, 0.51, 0.41, 0.001, 0.002, 51.0, 0.21, 1.01, 0.02, 0.3, 0.051, 0.0101, 0.00102, 1.02],
    "high": [2.4613, 9.9, 1.19, 0.099, 0.199, 990.0, 0.99, 5.9, 9.9, 99.0, 0.89, 0.49, 0.198, 6.93],
    "mixed": [-1.1173, 6.2, 1.05, 0.08, 0.05, 120.0, 0.95, 4.3, 0.4, 2.0, 0.7, 0.3, 0.003, 3.7],
}
DEFAULT = np.full(5 + ROUTING_DAYS, np.nan)  # every store at its default start (empty)


@pytest.fixture(scope="module")
def sample():
    """Two sample basins (a snowy one in Maine, one in Washington), Oudin PET, loaded."""
    ds = basinsx.open_dataset("sample", basins=["01031500", "12010000"], chunks=None)
    return ds.assign(pet=ds.hydro.pet("oudin"))[["prcp", "pet", "tmean", "streamflow"]].astype("float64").load()


def _forcing(sample, basin, years=6):
    b = sample.sel(basin=basin).isel(time=slice(0, 365 * years))
    return np.vstack([b[v].values for v in ("prcp", "pet", "tmean")])


def test_registry():
    assert "hbv" in bm.available()
    m = bm.get("hbv")
    assert m.params == PARAMS and m.forcings == ("prcp", "pet", "tmean") and m.snow is None
    assert m.states == ("snowpack", "meltwater", "soil", "upper", "lower", "routing")
    assert m.units["fc"] == "mm" and m.units["k2"] == "d-1" and m.units["cfmax"] == "mm degC-1 d-1"
    assert m.bounds["maxbas"] == (1.0, 7.0) and {"fc", "lp", "beta", "maxbas"} <= set(m.positive)
    assert all(lo <= v <= hi for t in THETA.values() for v, (lo, hi) in zip(t, m.bounds.values()))
    with pytest.raises(ValueError, match="does not take snow='degree_day'"):
        bm.get("hbv", snow=True)
    with pytest.raises(ValueError, match=r"parameters \['fc'\] must be > 0"):
        m.run([0.0, 3.0, 1.0, 0.05, 0.1, 0.0, 0.7, 2.0, 1.0, 20.0, 0.2, 0.05, 0.01, 2.0], np.ones((3, 10)))


@pytest.mark.parametrize("basin", ["01031500", "12010000"])
@pytest.mark.parametrize("name", list(THETA))
def test_jacobian_matches_central_differences(sample, basin, name):
    m, f, theta = bm.get("hbv"), _forcing(sample, basin), np.array(THETA[name])
    q, jac = m.run(theta, f, warmup=365)
    assert q.mean() > 0.05 and jac.shape == (q.size, 14)
    np.testing.assert_array_equal(q, m.run(theta, f, warmup=365, sensitivities=False)[0])
    flat = []
    for j, p in enumerate(m.params):
        h = 1e-6 * max(abs(theta[j]), 1.0)
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        fd = (m.run(tp, f, 365, False)[0] - m.run(tm, f, 365, False)[0]) / (2 * h)
        scale = np.abs(jac[:, j]).max()
        if scale == 0:  # refreezing never at its potential rate, or the upper zone never above uzl
            assert p in ("cfr", "uzl", "k0") and np.abs(fd).max() == 0, p
            flat.append(p)
            continue
        # relative to the largest derivative; a nearly flat one (uzl above the upper zone but for a few days) is
        # compared to 1e-4 mm/d per unit, far above the round-off of the differences (~1e-9)
        err = np.abs(fd - jac[:, j]).max() / max(scale, 1e-4)
        assert err < 1e-4, (p, err)
    assert len(flat) <= 2, flat


def test_maxbas_weights_and_their_derivative():
    for mb in (1.0, 1.5, 2.0, 2.7, 4.0, 6.93):
        w, dw = maxbas_weights(mb)
        assert w.size == math.ceil(mb) and np.isclose(w.sum(), 1.0) and np.all(w >= 0)
        h = 1e-6
        wp, wm = maxbas_weights(mb + h)[0], maxbas_weights(mb - h)[0]
        n = min(wp.size, wm.size, w.size)
        if wp.size == wm.size:  # not across an integer (a new weight appears there, starting at 0)
            np.testing.assert_allclose((wp - wm)[:n] / (2 * h), dw[:n], atol=1e-8)
    # base 2: the triangle is split in two halves; base 3: 1/9 + 7/9 + 1/9 (areas of the triangle per day)
    np.testing.assert_allclose(maxbas_weights(2.0)[0], [0.5, 0.5])
    np.testing.assert_allclose(maxbas_weights(3.0)[0], [2 / 9, 5 / 9, 2 / 9])


@pytest.mark.parametrize("name", list(THETA))
def test_water_balance(sample, name):
    """Rain plus corrected snowfall = ET + flow + storage change (all stores start empty), to round-off."""
    f, theta = _forcing(sample, "01031500"), np.array(THETA[name])
    q, _, water_in, et, storage, _ = hbv_run(theta, f, 0, False, DEFAULT)
    snow = f[2] < theta[0]
    assert np.isclose(water_in, f[0][~snow].sum() + theta[2] * f[0][snow].sum(), rtol=1e-12)
    assert np.all(storage >= 0) and et > 0 and q.sum() > 0
    assert abs(water_in - et - q.sum() - storage.sum()) < 1e-9 * water_in


def test_hand_computed_days():
    """Four days computed by hand: snowfall, melt with liquid water held, soil filling, outflow and routing."""
    theta = np.array([0.0, 2.0, 0.8, 0.05, 0.1, 100.0, 0.5, 2.0, 1.0, 5.0, 0.5, 0.2, 0.1, 2.0])
    f = np.array([[10.0, 5.0, 0.0, 0.0], [1.0, 2.0, 2.0, 2.0], [-2.0, 3.0, 5.0, 5.0]])
    q, _, _, _, storage, _ = hbv_run(theta, f, 0, False, DEFAULT)
    # day 1: 8 mm of snow (sfcf 0.8), no liquid water to refreeze, nothing reaches the soil: no flow
    # day 2: rain 5; melt 2 * 3 = 6 of the 8; the pack keeps 0.1 * 2 = 0.2 of the 6 as liquid water, 5.8 go on;
    #   the empty soil takes all 10.8 mm; ET 2 * 10.8 / 50 = 0.432
    sm2 = 10.8 - 0.432
    # day 3: melt min(10, 2) = 2 and the 0.2 held: 2.2 to the soil, no rain; recharge 2.2 (sm/100)^2
    rec3 = 2.2 * (sm2 / 100.0) ** 2
    sm3 = sm2 + 2.2 - rec3
    sm3 -= 2.0 * sm3 / 50.0
    # upper zone: percolation min(1, rec3) = rec3 (all of it), so no Q0, no Q1; the lower zone releases 0.1
    lz3 = rec3
    q2_3 = 0.1 * lz3
    lz3 -= q2_3
    # day 4: no input; ET; the lower zone releases again
    q2_4 = 0.1 * lz3
    sm4 = sm3 - 2.0 * sm3 / 50.0
    # routing with maxbas = 2: half of each day's runoff that day, half the next
    np.testing.assert_allclose(q, [0.0, 0.0, 0.5 * q2_3, 0.5 * q2_3 + 0.5 * q2_4], rtol=1e-13)
    np.testing.assert_allclose(storage, [0.0, 0.0, sm4, 0.0, lz3 - q2_4, 0.5 * q2_4], rtol=1e-13, atol=1e-15)


def _reference(theta, p, e, t):
    """Plain-Python HBV written from the equations of the module docstring (no derivatives)."""
    tt, cfmax, sfcf, cfr, cwh, fc, lp, beta, perc, uzl, k0, k1, k2, mb = theta
    sp = wc = sm = uz = lz = 0.0
    gen = []
    for pk, ek, tk in zip(p, e, t):
        rain, snow = (0.0, sfcf * pk) if tk < tt else (pk, 0.0)
        sp += snow
        melt = min(max(cfmax * (tk - tt), 0.0), sp)
        sp, wc = sp - melt, wc + melt
        refr = min(max(cfr * cfmax * (tt - tk), 0.0), wc)
        sp, wc = sp + refr, wc - refr
        tosoil = max(wc - cwh * sp, 0.0)
        wc -= tosoil
        inflow = rain + tosoil
        rec = inflow * min((sm / fc) ** beta, 1.0)
        sm += inflow - rec
        exc = max(sm - fc, 0.0)
        sm -= exc
        sm -= min(sm, ek * min(sm / (lp * fc), 1.0))
        uz += rec + exc
        pc = min(perc, uz)
        uz, lz = uz - pc, lz + pc
        q0 = k0 * max(uz - uzl, 0.0)
        uz -= q0
        q1 = k1 * uz
        uz -= q1
        q2 = k2 * lz
        lz -= q2
        gen.append(q0 + q1 + q2)

    def cdf(u):  # area of the triangle of base mb left of u
        u = min(max(u, 0.0), mb)
        return 2 * u * u / mb**2 if u <= mb / 2 else 1 - 2 * (mb - u) ** 2 / mb**2

    w = [cdf(i + 1) - cdf(i) for i in range(math.ceil(mb))]
    return np.array([sum(w[i] * gen[k - i] for i in range(len(w)) if k - i >= 0) for k in range(len(gen))])


@pytest.mark.parametrize("name", list(THETA))
def test_equals_an_independent_reimplementation(sample, name):
    f, theta = _forcing(sample, "01031500", years=4), THETA[name]
    q, _ = bm.get("hbv").run(theta, f, sensitivities=False)
    np.testing.assert_allclose(q, _reference(theta, *f), rtol=1e-12, atol=1e-14)


def test_calibrate_two_sample_basins(sample):
    ds = sample.sel(time=slice("1985", "1991"))
    out = ds.hydro.calibrate(model="hbv", period=slice("1986", "1991"), warmup=365, n_starts=2, maxiter=100)
    assert list(out["param"].values) == list(PARAMS) and out.attrs["model"] == "hbv"
    kge = out["kge"].values
    assert np.all(np.isfinite(kge)) and np.all(kge > 0.3), kge


def test_simulate_and_sensitivity_on_a_dataset(sample):
    ds = sample.isel(time=slice(0, 1500)).chunk({"basin": 1})
    theta = dict(zip(PARAMS, THETA["mixed"]))
    q = ds.hydro.simulate(theta, model="hbv", warmup=365)
    jac = ds.hydro.sensitivity(theta, model="hbv", warmup=365)
    f = np.vstack([ds[v].isel(basin=1).values for v in ("prcp", "pet", "tmean")])
    q1, j1 = bm.get("hbv").run(THETA["mixed"], f, warmup=365)
    np.testing.assert_array_equal(q.isel(basin=1).values, q1)
    np.testing.assert_array_equal(jac.isel(basin=1).transpose("time", "param").values, j1)


@pytest.mark.parametrize("name", ["mid", "high"])
def test_a_run_continues_another_exactly(sample, name):
    m, f, theta = bm.get("hbv"), _forcing(sample, "01031500", years=4), THETA[name]
    q, jac = m.run(theta, f)
    q1, j1, states = m.run(theta, f[:, :700], return_states=True)
    assert set(states) == set(m.states) and states["routing"].shape == (ROUTING_DAYS,) and states["soil"] > 0
    q2, _, _ = m.run(theta, f[:, 700:], initial_states=states, return_states=True)
    np.testing.assert_array_equal(np.concatenate([q1, q2]), q)
    np.testing.assert_array_equal(j1, jac[:700])
    with pytest.raises(ValueError, match="enough for maxbas <= 8"):
        m.run(theta[:-1] + [9.0], f, initial_states=states)


def test_jacobian_with_given_initial_states_matches_central_differences(sample):
    """Given levels are constants: the derivative is that of the map from them on."""
    m, f, theta = bm.get("hbv"), _forcing(sample, "01031500", years=3), np.array(THETA["mixed"])
    start = {"snowpack": 40.0, "meltwater": 2.0, "soil": 80.0, "upper": 15.0, "lower": 60.0,
             "routing": np.linspace(3.0, 0.5, ROUTING_DAYS)}
    q, jac = m.run(theta, f, initial_states=start)
    assert not np.array_equal(q, m.run(theta, f)[0])
    for j, p in enumerate(m.params):
        h = 1e-6 * max(abs(theta[j]), 1.0)
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        run = [m.run(t, f, 0, False, initial_states=start)[0] for t in (tp, tm)]
        fd = (run[0] - run[1]) / (2 * h)
        err = np.abs(fd - jac[:, j]).max() / max(np.abs(jac[:, j]).max(), 1e-4)
        assert err < 1e-4, (p, err)
