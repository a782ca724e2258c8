"""Posterior (Laplace, NUTS) and predictive bands, checked against closed forms on small synthetic models.

The linear-Gaussian model ``q = a prcp + b pet`` has, under ``log p = -(n/2) log SSE`` and
a flat prior, a multivariate t posterior: mean the least-squares fit, covariance
``SSE_min / (n - d - 2) (X'X)^-1``. With a bound through the posterior, the exact moments
come from integrating the density on a grid.
"""

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_calibration import LinearReservoir, rain

from basinsx.calibration import calibrate, posterior, predictive
from basinsx.calibration.hmc import ess, rhat
from basinsx.calibration.likelihood import BoxCox, get_likelihood
from basinsx.calibration.uncertainty import Target, posterior_basin

from conftest import raise_if_dask_computes


class LinearModel:
    name = "linear"
    params = ("a", "b")
    bounds = {"a": (0.0, 2.0), "b": (-1.0, 1.0)}
    units = {"a": "1", "b": "1"}
    states = ()
    forcings = ("prcp", "pet")

    def run(self, theta, forcing, warmup=0, sensitivities=True, **solver_options):
        X = forcing[:, warmup:].T
        return X @ np.asarray(theta), (X.copy() if sensitivities else None)


class FastReservoir(LinearReservoir):
    """The linear reservoir of test_calibration as linear filters (the same numbers, 20x faster)."""

    def run(self, theta, forcing, warmup=0, sensitivities=True, **solver_options):
        from scipy.signal import lfilter

        b, k = theta
        a = [1.0, -(1.0 - k)]
        s = lfilter([b], a, forcing[0])
        ds_dk = lfilter([1.0], a, -np.concatenate([[0.0], s[:-1]]))
        J = np.stack([k * s / b, s + k * ds_dk], axis=1)
        return (k * s)[warmup:], (J[warmup:] if sensitivities else None)


def test_fast_reservoir_is_the_reservoir():
    forcing = rain(100)
    for got, want in zip(FastReservoir().run([0.7, 0.4], forcing, 10), LinearReservoir().run([0.7, 0.4], forcing, 10)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


class CutModel(LinearModel):
    bounds = {"a": (0.0, 2.0), "b": (0.3, 1.0)}  # the lower bound of b cuts the posterior near its mode


def linear_data(n=200, seed=1):
    rng = np.random.default_rng(seed)
    X = np.stack([rng.exponential(3.0, n), rng.exponential(1.5, n)])
    y = np.array([0.9, 0.3]) @ X + rng.normal(0, 0.5, n)
    return X, y


def exact_linear(X, y):
    A = X @ X.T
    mode = np.linalg.solve(A, X @ y)
    sse = np.sum((y - mode @ X) ** 2)
    return mode, np.sqrt(np.diag(sse / (y.size - 4) * np.linalg.inv(A))), sse


@pytest.mark.parametrize("method", ["laplace", "hmc"])
def test_linear_gaussian_posterior_is_recovered(method):
    X, y = linear_data()
    mean, sd, sse = exact_linear(X, y)
    res = posterior_basin(LinearModel(), X, y, method=method, seed=0)
    assert res["draws"].shape == (4, 500, 2)
    # Laplace: the mode and sqrt(SSE/n) (X'X)^-1/2, 1 % narrower than the t posterior; NUTS: Monte Carlo error
    tol_mean, tol_sd = (0.05, 0.03) if method == "laplace" else (0.1, 0.06)
    np.testing.assert_array_less(np.abs(res["mean"] - mean) / sd, tol_mean)
    np.testing.assert_allclose(res["sd"], sd, rtol=tol_sd)
    np.testing.assert_allclose(res["draws"].reshape(-1, 2).std(axis=0), sd, rtol=0.06)
    # sigma | theta, y: sqrt(S / chi2_n), centred on the residual scale
    assert np.mean(res["sigma"]) == pytest.approx(np.sqrt(sse / y.size), rel=0.02)
    cosine = X[0] @ X[1] / np.linalg.norm(X[0]) / np.linalg.norm(X[1])  # of the two unit sensitivity columns
    assert res["collinearity"] == pytest.approx(1 / np.sqrt(1 - cosine), rel=1e-6)
    if method == "hmc":
        assert np.all(res["rhat"] < 1.01) and np.all(res["ess"] > 400) and res["n_divergent"] == 0
    else:
        assert np.isnan(res["rhat"]).all() and res["n_evals"] < 200  # calibration and a few Newton steps


def test_hmc_honours_a_bound_through_the_posterior():
    X, y = linear_data()
    a = np.linspace(0.84, 0.96, 241)
    b = np.linspace(0.3, 0.45, 301)
    A, B = np.meshgrid(a, b, indexing="ij")
    lp = -y.size / 2 * np.log(((y - A[..., None] * X[0] - B[..., None] * X[1]) ** 2).sum(-1))
    w = np.exp(lp - lp.max())
    w /= w.sum()
    mean = np.array([(w * A).sum(), (w * B).sum()])
    sd = np.sqrt([(w * (A - mean[0]) ** 2).sum(), (w * (B - mean[1]) ** 2).sum()])
    res = posterior_basin(CutModel(), X, y, method="hmc", seed=3)
    np.testing.assert_array_less(np.abs(res["mean"] - mean) / sd, 0.1)
    np.testing.assert_allclose(res["sd"], sd, rtol=0.06)
    for method in ("hmc", "laplace"):
        draws = res["draws"] if method == "hmc" else posterior_basin(CutModel(), X, y, seed=3)["draws"]
        assert draws[..., 1].min() > 0.3 and draws[..., 1].max() < 1.0


@pytest.mark.parametrize("likelihood", ["gaussian", "log", "boxcox", "heteroscedastic", "boxcox(0.5)"])
def test_target_gradient_matches_finite_differences(likelihood):
    model = FastReservoir()
    forcing = rain(300)
    obs = model.run(np.array([0.8, 0.3]), forcing, warmup=30)[0] * np.exp(np.random.default_rng(0).normal(0, .2, 270))
    target = Target(model, forcing, obs, likelihood, warmup=30)
    z = target.z(np.array([0.6, 0.2]))
    _, g, _ = target(z)
    h = 1e-6
    fd = [(target(z + h * e)[0] - target(z - h * e)[0]) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_likelihood_values_follow_their_equations():
    rng = np.random.default_rng(0)
    q = rng.exponential(2.0, 100)
    y = q * np.exp(rng.normal(0, 0.3, 100))
    y[5] = np.nan
    m = np.isfinite(y)
    n, c = m.sum(), 0.01 * np.nanmean(y)
    value = get_likelihood("log").value_delta(q, y)[0]
    assert value == pytest.approx(-n / 2 * np.log(np.sum((np.log(y[m] + c) - np.log(q[m] + c)) ** 2)))
    a = 0.1 * np.nanmean(y)
    value = get_likelihood("heteroscedastic").value_delta(q, y)[0]
    assert value == pytest.approx(-n / 2 * np.log(np.sum(((y[m] - q[m]) / (q[m] + a)) ** 2)) - np.log(q[m] + a).sum())
    lam = BoxCox(0.5)
    assert lam.name == "boxcox(0.5)" and get_likelihood("boxcox(0.5)").lam == 0.5
    # the noise of a vanishing sigma returns the flow itself (the inverse transform is right)
    for name in ("log", "boxcox", "heteroscedastic"):
        np.testing.assert_allclose(get_likelihood(name).noise(q[None], np.array([1e-12]), np.nanmean(y), rng)[0], q,
                                   rtol=1e-9)
    with pytest.raises(ValueError, match="unknown likelihood 'student'"):
        get_likelihood("student")


def test_diagnostics_on_known_chains():
    rng = np.random.default_rng(0)
    phi, n = 0.7, 4000
    x = np.zeros((4, n))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + rng.standard_normal(4)
    # AR(1): ESS = N (1 - phi) / (1 + phi)
    assert ess(x) == pytest.approx(4 * n * (1 - phi) / (1 + phi), rel=0.15)
    assert rhat(x) < 1.01
    # chains shifted apart: between-chain variance 1.67 against 1.96 within, R-hat about sqrt(1 + 1.67 / 1.96)
    assert rhat(x + np.arange(4)[:, None]) == pytest.approx(np.sqrt(1 + 1.67 / 1.96), rel=0.05)
    assert ess(rng.standard_normal((4, 1000))) == pytest.approx(4000, rel=0.15)


def reservoir_dataset(n_basins=3, noise=0.1):
    time = pd.date_range("1990-01-01", "1992-12-31", freq="D")
    forcing = np.concatenate([rain(time.size, seed=i) for i in range(n_basins)])
    model = FastReservoir()
    rng = np.random.default_rng(5)
    flow = np.stack([model.run(np.array([0.6 + 0.2 * i, 0.2 + 0.1 * i]), f[None])[0] for i, f in enumerate(forcing)])
    flow = np.maximum(flow + rng.normal(0, noise, flow.shape) * flow.std(), 0.0)  # a gauge reads no negative flow
    return xr.Dataset({"prcp": (("basin", "time"), forcing), "streamflow": (("basin", "time"), flow)},
                      coords={"basin": [f"b{i}" for i in range(n_basins)], "time": time})


def test_posterior_dataset_is_lazy_deterministic_and_fails_per_basin():
    ds = reservoir_dataset()
    ds["streamflow"][1] = np.nan
    kw = {"model": FastReservoir(), "method": "hmc", "period": slice("1991", "1992"), "n_chains": 2,
          "n_draws": 60, "n_adapt": 60, "seed": 4}
    eager = posterior(ds, **kw)
    assert eager["draws"].dims == ("basin", "chain", "draw", "param")
    assert eager["correlation"].dims == ("basin", "param", "param_") and eager.attrs["method"] == "hmc"
    assert "no observed streamflow" in eager["message"].values[1] and np.isnan(eager["draws"][1]).all()
    lo, hi = FastReservoir.bounds["b"]
    assert ((eager["draws"].sel(param="b") > lo) & (eager["draws"].sel(param="b") < hi)).sel(basin=["b0", "b2"]).all()
    with raise_if_dask_computes():
        lazy = posterior(ds.chunk({"basin": 1}), **kw)
    assert lazy["draws"].chunks is not None
    with dask.config.set(scheduler="synchronous"):
        computed = lazy.compute()
    # the same draws whatever the chunking: each basin's stream is seeded by its label
    xr.testing.assert_identical(computed["draws"], eager["draws"])
    assert not np.array_equal(posterior(ds, **{**kw, "seed": 5})["draws"][0], eager["draws"][0])
    accessor = ds.isel(basin=[0]).hydro.posterior(**kw)
    xr.testing.assert_identical(accessor["draws"], eager["draws"].isel(basin=[0]))


def test_laplace_from_a_calibration_result():
    ds = reservoir_dataset(2)
    model = FastReservoir()
    cal = calibrate(ds, model=model, loss="sse", period=slice("1991", "1992"), n_starts=2)
    fresh = posterior(ds, model=model, period=slice("1991", "1992"))
    started = posterior(ds, model=model, period=slice("1991", "1992"), start=cal)
    np.testing.assert_allclose(started["mean"], fresh["mean"], rtol=1e-5)
    np.testing.assert_allclose(started["sd"], fresh["sd"], rtol=1e-4)
    assert (started["n_evals"] < 10).all() and (fresh["n_evals"] > started["n_evals"]).all()
    assert started.attrs["start"] == "given" and float(started["flow_mean"][0]) == pytest.approx(
        float(ds["streamflow"][0].sel(time=slice("1991", "1992")).mean()))


def test_start_and_posterior_are_matched_to_the_basins_by_label():
    ds = reservoir_dataset(3)
    model, period = FastReservoir(), slice("1991", "1992")
    cal = calibrate(ds, model=model, loss="sse", period=period, n_starts=2)
    started = posterior(ds, model=model, period=period, start=cal)
    # before: a bare AlignmentError for another order or a subset of the same basins
    reordered = posterior(ds, model=model, period=period, start=cal.isel(basin=[2, 0, 1]))
    xr.testing.assert_identical(reordered.drop_vars("seconds"), started.drop_vars("seconds"))  # seconds: wall time
    with pytest.raises(ValueError, match=r"start has no values for basin\(s\) \['b2'\]"):
        posterior(ds, model=model, period=period, start=cal.isel(basin=[0, 1]))
    bands = predictive(ds, started, warmup=365, model=model)
    xr.testing.assert_identical(predictive(ds.isel(basin=[2, 1, 0]), started, warmup=365, model=model),
                                bands.isel(basin=[2, 1, 0]))
    xr.testing.assert_identical(predictive(ds.isel(basin=1), started, warmup=365, model=model),
                                bands.isel(basin=1))
    with pytest.raises(ValueError, match=r"post has no values for basin\(s\) \['b2'\]"):
        predictive(ds, started.isel(basin=[0, 1]), warmup=365, model=model)


def test_predictive_fails_a_basin_with_bad_forcing_only():
    # before: one basin's NaN forcing raised and lost every basin's bands
    ds = reservoir_dataset(2)
    model, period = FastReservoir(), slice("1991", "1992")
    post = posterior(ds, model=model, period=period)
    clean = predictive(ds, post, warmup=365, model=model)
    ds["prcp"][1, 400] = np.nan
    with pytest.warns(UserWarning, match=r"bad forcing, bands NaN in 1 of 2 basins: b1 \(forcing 'prcp' is NaN on "
                                         r"1991-02-05\)"):
        bands = predictive(ds, post, warmup=365, model=model)
    xr.testing.assert_identical(bands.isel(basin=0).drop_vars("forcing_problem"),
                                clean.isel(basin=0).drop_vars("forcing_problem"))
    assert np.isnan(bands["q_pred"][1]).all() and bands["forcing_problem"].values.tolist()[0] == ""
    lazy = predictive(ds.chunk({"basin": 1}), post, warmup=365, model=model)
    assert lazy["forcing_problem"].chunks is not None
    xr.testing.assert_identical(lazy.compute(), bands)


@pytest.mark.parametrize("method", ["laplace", "hmc"])
def test_predictive_band_covers_ninety_percent(method):
    ds = reservoir_dataset(1, noise=0.15)
    kw = {"n_chains": 2, "n_draws": 150, "n_adapt": 100} if method == "hmc" else {}
    post = posterior(ds, model=FastReservoir(), method=method, period=slice("1990-01-01", "1990-12-31"), warmup=0,
                     **kw)
    bands = predictive(ds, post, quantiles=(0.05, 0.95), warmup=365, model=FastReservoir(), thin=2)
    assert bands["q_pred"].dims == ("basin", "quantile", "time") and str(bands["time"][0].values)[:10] == "1991-01-01"
    y = ds["streamflow"].sel(time=slice("1991", None))
    inside = ((y >= bands["q_pred"].isel(quantile=0)) & (y <= bands["q_pred"].isel(quantile=1))).mean()
    assert 0.86 <= float(inside) <= 0.94
    inside_param = ((y >= bands["q_param"].isel(quantile=0)) & (y <= bands["q_param"].isel(quantile=1))).mean()
    assert float(inside_param) < 0.3  # parameter uncertainty alone under-covers


def test_argument_errors():
    ds = reservoir_dataset(1)
    with pytest.raises(ValueError, match="unknown method 'mcmc'"):
        posterior(ds, model=FastReservoir(), method="mcmc")
    with pytest.raises(ValueError, match="needs n_chains >= 2"):
        posterior(ds, model=FastReservoir(), method="hmc", n_chains=1)


def test_simulate_takes_the_draws_and_the_hydrograph_shows_a_band():
    import basinsx

    ds = basinsx.open_dataset("sample").isel(basin=[0, 1]).sel(time=slice("2000-01-01", "2000-06-30"))
    theta = np.array([350.0, 0.5, 90.0, 1.7]) * np.exp(np.random.default_rng(0).normal(0, 0.05, (2, 3, 5, 4)))
    draws = xr.DataArray(theta, dims=("basin", "chain", "draw", "param"),
                         coords={"basin": ds["basin"].values, "param": ["x1", "x2", "x3", "x4"]},
                         attrs={"model": "gr4j", "snow": 0})  # as posterior() labels its draws
    q = ds.hydro.simulate(draws, pet="oudin")
    assert set(q.dims) == {"basin", "time", "chain", "draw"}
    one = ds.isel(basin=[1]).hydro.simulate(draws.isel(basin=[1], chain=2, draw=4), pet="oudin")
    np.testing.assert_array_equal(q.isel(basin=1, chain=2, draw=4), one.isel(basin=0))
    band = q.quantile([0.05, 0.95], dim=("chain", "draw"))
    pytest.importorskip("matplotlib")
    ax = ds.hydro.plot.hydrograph(q.isel(chain=0, draw=0), basin=ds["basin"].values[0], band=band)
    assert "90 % band" in [t.get_text() for t in ax.get_legend().get_texts()]
    (poly,) = ax.collections
    upper = poly.get_paths()[0].vertices[:, 1].max()
    assert upper == pytest.approx(float(band.isel(basin=0).max()), rel=1e-6)


def test_a_model_with_snow_is_recorded_with_its_snow():
    import basinsx
    import basinsx.models as bm

    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).isel(time=slice(0, 1100))
    post = posterior(ds, model=bm.get("gr4j", snow="degree_day"), warmup=365)
    # before: snow 0, so simulate(ds, post["draws"]) and predictive(ds, post) ran gr4j without its snow module
    assert post.attrs["snow"] == post["draws"].attrs["snow"] == "degree_day"
    bands = predictive(ds, post, warmup=365)
    assert np.isfinite(bands["q_pred"]).all()
