"""GR4J: reproduction of GRsuite (airGR port) on real forcing and exact Jacobian of the discrete map."""

import numpy as np
import pytest
import xarray as xr

import basinsx.models as bm


def _read(data_dir, basin):
    path = data_dir / "caravan" / "timeseries" / "netcdf" / "camels" / f"{basin}.nc"
    with xr.open_dataset(path) as ds:
        p = ds["total_precipitation_sum"].values.astype(float)
        e = ds["potential_evaporation_sum"].values.astype(float)
        t = ds["temperature_2m_mean"].values.astype(float)
        dates = ds["date"].values.astype("datetime64[D]")
    return dates, p, e, t


@pytest.fixture(scope="module")
def forcing(data_dir):
    return _read(data_dir, "camels_01031500")  # snowy Maine basin


@pytest.mark.filterwarnings("ignore::basinsx.models.NegativePETWarning")
@pytest.mark.parametrize("basin", ["camels_01031500", "camels_14400000"])
@pytest.mark.parametrize("theta", [[350.0, 0.5, 90.0, 1.7], [700.0, 0.3, 150.0, 4.2], [60.0, 1.5, 400.0, 0.8]])
def test_gr4j_reproduces_grsuite(data_dir, basin, theta):
    grsuite = pytest.importorskip("grsuite")
    dates, p, e, _ = _read(data_dir, basin)
    # ERA5-Land PET has a few small negative values; basinsx sets them to zero
    im = grsuite.InputsModel(dates, precip=p, pot_evap=np.maximum(e, 0.0))
    ro = grsuite.RunOptions(im, "GR4J", ind_period_run=np.arange(len(p)), ind_period_warmup=np.array([], dtype=int))
    ref = grsuite.run_model_gr4j(im, ro, theta)["Qsim"]
    q, _ = bm.get("gr4j").run(theta, np.vstack([p, e]), sensitivities=False)
    np.testing.assert_allclose(q, ref, rtol=1e-6, atol=1e-10)
    assert ref.max() > 0.5  # the comparison is on a real, flowing hydrograph


def _fd_check(model, theta, f, warmup, rel=1e-6):
    q, jac = model.run(theta, f, warmup=warmup)
    assert jac.shape == (f.shape[1] - warmup, len(theta))
    q0, none = model.run(theta, f, warmup=warmup, sensitivities=False)
    assert none is None
    np.testing.assert_array_equal(q, q0)
    for j in range(len(theta)):
        h = 1e-6 * max(abs(theta[j]), 1.0)
        tp, tm = np.array(theta, float), np.array(theta, float)
        tp[j] += h
        tm[j] -= h
        qp = model.run(tp, f, warmup=warmup, sensitivities=False)[0]
        qm = model.run(tm, f, warmup=warmup, sensitivities=False)[0]
        fd = (qp - qm) / (2 * h)
        err = np.max(np.abs(fd - jac[:, j])) / np.max(np.abs(jac[:, j]))
        assert np.max(np.abs(jac[:, j])) > 0
        assert err < rel, (model.params[j], err)


@pytest.mark.parametrize("theta", [[350.0, 0.5, 90.0, 1.7], [800.0, -2.0, 200.0, 3.3], [40.0, 2.0, 15.0, 0.7]])
def test_gr4j_jacobian_matches_central_differences(forcing, theta):
    _, p, e, _ = forcing
    f = np.vstack([p[:1500], np.maximum(e[:1500], 0)])
    _fd_check(bm.get("gr4j"), theta, f, warmup=200)


def test_gr4j_snow_jacobian_matches_central_differences(forcing):
    _, p, e, t = forcing
    f = np.vstack([p[:1500], np.maximum(e[:1500], 0), t[:1500]])
    m = bm.get("gr4j", snow=True)
    assert m.params[-2:] == ("T_tr", "f_dd") and m.forcings == ("prcp", "pet", "tmean")
    _fd_check(m, [350.0, 0.5, 90.0, 1.7, 0.5, 3.0], f, warmup=100)


def test_gr4j_water_balance_closes():
    """Without exchange, rain in = flow out + evaporation + storage change (no leaks in the kernel)."""
    rng = np.random.default_rng(0)
    n = 3000
    p = rng.gamma(0.4, 8.0, n)
    f = np.vstack([p, np.zeros(n)])
    theta = np.array([300.0, 0.0, 80.0, 2.3])
    q, _ = bm.get("gr4j").run(theta, f, sensitivities=False)
    # with zero PET nothing evaporates; the initial stores (0.3 x1 + 0.5 x3) and what is left at the
    # end bound the difference
    assert abs(p.sum() - q.sum()) < theta[0] + theta[2] + 1e-6


def test_warmup_drops_leading_days():
    rng = np.random.default_rng(1)
    f = np.vstack([rng.gamma(0.5, 6.0, 800), rng.uniform(0, 4, 800)])
    m = bm.get("gr4j")
    q, jac = m.run([300.0, 0.2, 80.0, 2.1], f)
    qw, jw = m.run([300.0, 0.2, 80.0, 2.1], f, warmup=365)
    np.testing.assert_array_equal(qw, q[365:])
    np.testing.assert_array_equal(jw, jac[365:])


def test_inverted_or_missing_bounds_are_errors():
    import dataclasses

    m = bm.get("gr4j")
    with pytest.raises(ValueError, match=r"bounds must be finite with low < high; got \{'x1': \(2500.0, 10.0\)\}"):
        dataclasses.replace(m, bounds={**m.bounds, "x1": (2500.0, 10.0)})
    with pytest.raises(ValueError, match=r"parameters \['x4'\] have no bounds"):
        dataclasses.replace(m, bounds={k: v for k, v in m.bounds.items() if k != "x4"})
