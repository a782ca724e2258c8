"""SAC-SMA: exact Jacobian on real forcing, water balance, an independent plain-Python FLAND1, the registry and
calibration."""

import math

import numpy as np
import pytest

import basinsx
import basinsx.models as bm
from basinsx.models.sacsma import NUH, sacsma_run

PARAMS = ("uztwm", "uzfwm", "uzk", "zperc", "rexp", "lztwm", "lzfsm", "lzfpm", "lzsk", "lzpk", "pfree", "pctim",
          "adimp", "uh_shape", "uh_scale")
# uztwm, uzfwm off the 0.01 mm grid of the forcing: NINC = int(1 + 0.2 (UZFWC + TWX)) switches where UZFWC + TWX crosses
# a multiple of 5 mm, and a day's rain minus UZTWM (dry stores) or plus UZFWM (full) would sit on such a switch
THETA = {
    "mid": [50.0, 41.3, 0.3, 40.0, 2.0, 130.0, 25.0, 60.0, 0.05, 0.01, 0.3, 0.01, 0.05, 2.5, 1.0],
    "low": [1.2345, 1.137, 0.101, 1.05, 1.02, 1.3, 1.1, 1.2, 0.0102, 0.000102, 0.002, 0.0003, 0.0004, 1.01, 0.102],
    "high": [149.0, 148.0, 0.499, 249.0, 4.98, 498.0, 995.0, 990.0, 0.248, 0.0248, 0.598, 0.099, 0.398, 4.97, 2.98],
    "mixed": [20.0, 118.7, 0.45, 200.0, 1.3, 300.0, 5.0, 400.0, 0.2, 0.002, 0.05, 0.05, 0.3, 1.7, 0.4],
}


@pytest.fixture(scope="module")
def sample():
    """Two sample basins (a snowy one in Maine, one in Washington), Oudin PET, loaded."""
    ds = basinsx.open_dataset("sample", basins=["01031500", "12010000"], chunks=None)
    return ds.assign(pet=ds.hydro.pet("oudin"))[["prcp", "pet", "tmean", "streamflow"]].astype("float64").load()


def _forcing(sample, basin, years=6, rows=("prcp", "pet")):
    b = sample.sel(basin=basin).isel(time=slice(0, 365 * years))
    return np.vstack([b[v].values for v in rows])


def _central_differences(model, theta, f, warmup, rel=1e-6):
    # floor of the step: a 1e-6 relative step of pfree = 0.002 drowns in round-off
    cols = []
    for j in range(len(theta)):
        h = rel * max(abs(theta[j]), 0.05)
        up, down = np.array(theta, float), np.array(theta, float)
        up[j] += h
        down[j] -= h
        cols.append((model.run(up, f, warmup=warmup, sensitivities=False)[0]
                     - model.run(down, f, warmup=warmup, sensitivities=False)[0]) / (2 * h))
    return np.stack(cols, axis=1)


def test_registry():
    assert "sacsma" in bm.available()
    m = bm.get("sacsma")
    assert m.params == PARAMS and m.forcings == ("prcp", "pet") and m.snow is None
    assert m.units["uztwm"] == "mm" and m.units["uzk"] == "d-1" and m.units["uh_scale"] == "d"
    assert m.transforms["lzpk"] == "log" and m.transforms["pfree"] == "linear"
    assert set(bm.spec("sacsma").snow) == {"degree_day", "cemaneige", "cemaneige_hyst"}


@pytest.mark.parametrize("name", list(THETA))
@pytest.mark.parametrize("basin", ["01031500", "12010000"])
def test_jacobian_equals_central_differences(sample, name, basin):
    m, theta = bm.get("sacsma"), THETA[name]
    f = _forcing(sample, basin)
    q, jac = m.run(theta, f, warmup=365)
    assert jac.shape == (q.size, len(PARAMS)) and np.all(np.isfinite(jac))
    fd = _central_differences(m, theta, f, 365)
    scale = np.abs(fd).max(axis=0) + 1e-12
    err = (np.abs(jac - fd) / scale).max(axis=0)
    assert np.all(err < 1e-4), dict(zip(PARAMS, err))
    np.testing.assert_array_equal(m.run(theta, f, warmup=365, sensitivities=False)[0], q)


@pytest.mark.parametrize("snow, extra", [("degree_day", [0.31, 3.2]), ("cemaneige", [0.4, 3.5]),
                                         ("cemaneige_hyst", [0.4, 3.5, 20.0, 0.6])])
def test_jacobian_with_snow(sample, snow, extra):
    m = bm.get("sacsma", snow=snow)
    theta = THETA["mid"] + extra
    f = _forcing(sample, "01031500", years=4, rows=("prcp", "pet", "tmean"))
    q, jac = m.run(theta, f, warmup=365)
    fd = _central_differences(m, theta, f, 365)
    scale = np.abs(fd).max(axis=0) + 1e-12
    err = (np.abs(jac - fd) / scale).max(axis=0)
    # cn_ctg and cn_thacc act only through switches: their derivative is zero almost everywhere
    assert np.all(err < 1e-4), dict(zip(m.params, err))
    assert np.abs(jac[:, len(PARAMS):]).max() > 0


@pytest.mark.parametrize("name", list(THETA))
def test_water_balance_closes(sample, name):
    f = _forcing(sample, "12010000", years=10)
    theta = np.array(THETA[name])
    budget = np.zeros((f.shape[1], 4))
    q, _, _ = sacsma_run(theta, f, 0, False, 0, np.full(7 + NUH, np.nan), budget)
    p, et, tci, storage = budget.T
    pctim, adimp = theta[11], theta[12]
    s0 = 0.5 * (1 - pctim - adimp) * theta[[0, 1, 5, 6, 7]].sum() + adimp * 0.5 * (theta[0] + theta[5])
    residual = p.sum() - et.sum() - tci.sum() - (storage[-1] - s0)
    # FLAND1 sets stores below 1e-5 mm to zero (and ADIMC up to UZTWC): at most ~1e-5 mm a day each
    assert abs(residual) < 1e-5 * f.shape[1], residual
    assert np.all(et <= f[1] + 1e-9) and np.all(tci >= 0) and np.all(storage >= 0)
    # routing conserves mass: what has not left is still in the unit hydrograph
    tail = tci[-128:].sum()
    assert 0 <= tci.sum() - q.sum() <= tail + 1e-9
    assert abs(q.sum() - tci.sum()) / tci.sum() < 0.01


def _fland1(theta, prcp, pet):
    """Plain-Python SAC-SMA written from Burnash's FLAND1 (RIVA = SIDE = 0, RSERV = 0.3), then DUAMEL's gamma UH."""
    (uztwm, uzfwm, uzk, zperc, rexp, lztwm, lzfsm, lzfpm, lzsk, lzpk, pfree, pctim, adimp, shape, scale) = theta
    parea = 1.0 - pctim - adimp
    saved = 0.3 * (lzfpm + lzfsm)
    uztwc, uzfwc, lztwc, lzfsc, lzfpc = 0.5 * uztwm, 0.5 * uzfwm, 0.5 * lztwm, 0.5 * lzfsm, 0.5 * lzfpm
    adimc = uztwc + lztwc
    tcis = []
    for pxv, edmnd in zip(prcp, pet):
        e1 = edmnd * (uztwc / uztwm)
        red = edmnd - e1
        uztwc = uztwc - e1
        e2 = 0.0
        skip_220 = False
        if uztwc < 0.0:
            e1 = e1 + uztwc
            uztwc = 0.0
            red = edmnd - e1
            if uzfwc < red:
                e2 = uzfwc
                uzfwc = 0.0
                red = red - e2
                skip_220 = True
            else:
                e2 = red
                uzfwc = uzfwc - e2
                red = 0.0
        if not skip_220 and (uztwc / uztwm) < (uzfwc / uzfwm):
            uzrat = (uztwc + uzfwc) / (uztwm + uzfwm)
            uztwc = uztwm * uzrat
            uzfwc = uzfwm * uzrat
        if uztwc < 0.00001:
            uztwc = 0.0
        if uzfwc < 0.00001:
            uzfwc = 0.0
        e3 = red * (lztwc / (uztwm + lztwm))
        lztwc = lztwc - e3
        if lztwc < 0.0:
            e3 = e3 + lztwc
            lztwc = 0.0
        ratlzt = lztwc / lztwm
        ratlz = (lztwc + lzfpc + lzfsc - saved) / (lztwm + lzfpm + lzfsm - saved)
        if ratlzt < ratlz:
            delta = (ratlz - ratlzt) * lztwm
            lztwc = lztwc + delta
            lzfsc = lzfsc - delta
            if lzfsc < 0.0:
                lzfpc = lzfpc + lzfsc
                lzfsc = 0.0
        if lztwc < 0.00001:
            lztwc = 0.0
        e5 = e1 + (red + e2) * ((adimc - e1 - uztwc) / (uztwm + lztwm))
        adimc = adimc - e5
        if adimc < 0.0:
            adimc = 0.0
        twx = pxv + uztwc - uztwm
        if twx < 0.0:
            uztwc = uztwc + pxv
            twx = 0.0
        else:
            uztwc = uztwm
        adimc = adimc + pxv - twx
        roimp = pxv * pctim
        sbf = ssur = sif = sdro = 0.0
        ninc = int(1.0 + 0.2 * (uzfwc + twx))
        dinc = 1.0 / ninc
        pinc = twx / ninc
        duz = 1.0 - (1.0 - uzk) ** dinc
        dlzp = 1.0 - (1.0 - lzpk) ** dinc
        dlzs = 1.0 - (1.0 - lzsk) ** dinc
        for _ in range(ninc):
            adsur = 0.0
            ratio = max((adimc - uztwc) / lztwm, 0.0)
            addro = pinc * ratio**2
            bf = lzfpc * dlzp
            lzfpc = lzfpc - bf
            if lzfpc <= 0.0001:
                bf = bf + lzfpc
                lzfpc = 0.0
            sbf = sbf + bf
            bf = lzfsc * dlzs
            lzfsc = lzfsc - bf
            if lzfsc <= 0.0001:
                bf = bf + lzfsc
                lzfsc = 0.0
            sbf = sbf + bf
            if pinc + uzfwc <= 0.01:
                uzfwc = uzfwc + pinc
            else:
                percm = lzfpm * dlzp + lzfsm * dlzs
                perc = percm * (uzfwc / uzfwm)
                defr = 1.0 - ((lztwc + lzfpc + lzfsc) / (lztwm + lzfpm + lzfsm))
                perc = perc * (1.0 + zperc * (defr**rexp if defr > 0 else 0.0))
                if perc >= uzfwc:
                    perc = uzfwc
                uzfwc = uzfwc - perc
                check = lztwc + lzfpc + lzfsc + perc - lztwm - lzfpm - lzfsm
                if check > 0.0:
                    perc = perc - check
                    uzfwc = uzfwc + check
                delta = uzfwc * duz
                sif = sif + delta
                uzfwc = uzfwc - delta
                perct = perc * (1.0 - pfree)
                if perct + lztwc > lztwm:
                    percf = perct + lztwc - lztwm
                    lztwc = lztwm
                else:
                    lztwc = lztwc + perct
                    percf = 0.0
                percf = percf + perc * pfree
                if percf != 0.0:
                    hpl = lzfpm / (lzfpm + lzfsm)
                    ratlp = lzfpc / lzfpm
                    ratls = lzfsc / lzfsm
                    den = (1.0 - ratlp) + (1.0 - ratls)
                    fracp = min((hpl * 2.0 * (1.0 - ratlp)) / den, 1.0) if den > 0 else 1.0
                    percp = percf * fracp
                    percs = percf - percp
                    lzfsc = lzfsc + percs
                    if lzfsc > lzfsm:
                        percs = percs - lzfsc + lzfsm
                        lzfsc = lzfsm
                    lzfpc = lzfpc + (percf - percs)
                    if lzfpc > lzfpm:
                        lztwc = lztwc + lzfpc - lzfpm
                        lzfpc = lzfpm
                if pinc != 0.0:
                    if pinc + uzfwc > uzfwm:
                        sur = pinc + uzfwc - uzfwm
                        uzfwc = uzfwm
                        ssur = ssur + sur * parea
                        adsur = sur * (1.0 - addro / pinc)
                        ssur = ssur + adsur * adimp
                    else:
                        uzfwc = uzfwc + pinc
            adimc = adimc + pinc - addro - adsur
            if adimc > uztwm + lztwm:
                addro = addro + adimc - (uztwm + lztwm)
                adimc = uztwm + lztwm
            sdro = sdro + addro * adimp
            if adimc < 0.00001:
                adimc = 0.0
        tcis.append(roimp + sdro + ssur + sif * parea + sbf * parea)
        if adimc < uztwc:
            adimc = uztwc
    # DUAMEL: gamma density at t = 1, 2, ... days, normalised (without its cut at log density -8)
    dens = [math.exp((shape - 1.0) * math.log(t / scale) - t / scale - math.lgamma(shape) - math.log(scale))
            for t in range(1, 129)]
    uh = np.array(dens) / sum(dens)
    return np.array([sum(uh[i] * tcis[k - i] for i in range(min(len(uh), k + 1))) for k in range(len(tcis))])


@pytest.mark.parametrize("name", list(THETA))
def test_equals_an_independent_reimplementation(sample, name):
    f, theta = _forcing(sample, "01031500", years=3), THETA[name]
    q, _ = bm.get("sacsma").run(theta, f, sensitivities=False)
    # atol: the kernel cuts the unit hydrograph where its ordinates fall below 1e-12
    np.testing.assert_allclose(q, _fland1(theta, *f), rtol=1e-9, atol=1e-10)


def test_increments_follow_the_input(sample):
    """A 120 mm day runs in 24+ increments of at most 5 mm, as FLAND1 does."""
    theta = np.array(THETA["mid"])
    f = np.vstack([np.r_[np.zeros(30), 120.0, np.zeros(60)], np.full(91, 2.0)])
    q, jac = bm.get("sacsma").run(theta, f)
    assert q[30:].sum() > 0 and np.all(np.isfinite(jac))
    np.testing.assert_allclose(q, _fland1(theta, *f), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("snow, extra", [(False, []), ("degree_day", [0.31, 3.2])])
def test_a_run_continued_from_final_states_equals_the_whole_run(sample, snow, extra):
    m = bm.get("sacsma", snow=snow)
    theta = THETA["mixed"] + extra
    f = _forcing(sample, "01031500", years=4, rows=m.forcings)
    k = 700
    q_all, _, end = m.run(theta, f, sensitivities=False, return_states=True)
    q_a, _, mid = m.run(theta, f[:, :k], sensitivities=False, return_states=True)
    assert sorted(mid) == sorted(m.states) and mid["uh"].shape == (NUH,)
    assert mid["uh"][0] > 0 and (not snow or m.states[0] == "swe")
    q_b, _, end_b = m.run(theta, f[:, k:], sensitivities=False, initial_states=mid, return_states=True)
    np.testing.assert_allclose(np.concatenate([q_a, q_b]), q_all, rtol=0, atol=1e-12)
    for name in m.states:
        np.testing.assert_allclose(end_b[name], end[name], rtol=0, atol=1e-12)


def test_jacobian_from_given_initial_states(sample):
    m, theta = bm.get("sacsma"), THETA["mid"]
    f = _forcing(sample, "12010000", years=3)
    init = {"uztwc": 30.0, "lzfpc": 45.0, "adimc": 90.0, "uh": np.linspace(3.0, 0.0, NUH)}
    q, jac = m.run(theta, f, initial_states=init)
    q0, _ = m.run(theta, f, sensitivities=False)
    assert np.abs(q - q0)[:30].max() > 0.1  # the states matter
    fd = np.stack([(m.run(theta + h, f, sensitivities=False, initial_states=init)[0]
                    - m.run(theta - h, f, sensitivities=False, initial_states=init)[0]) / (2 * h[j])
                   for j, h in enumerate(np.diag([1e-6 * max(abs(t), 0.05) for t in theta]))], axis=1)
    err = (np.abs(jac - fd) / (np.abs(fd).max(axis=0) + 1e-12)).max(axis=0)
    assert np.all(err < 1e-4), dict(zip(PARAMS, err))


def test_calibrate_two_sample_basins(sample):
    ds = sample.sel(time=slice("1985", "1991"))
    out = ds.hydro.calibrate(model="sacsma", period=slice("1986", "1991"), warmup=365, n_starts=2, maxiter=100)
    assert list(out["param"].values) == list(PARAMS) and out.attrs["model"] == "sacsma"
    kge = out["kge"].values
    assert np.all(np.isfinite(kge)) and np.all(kge > 0.3), kge
