r"""``posterior`` and ``predictive``: parameter and predictive uncertainty from the exact Jacobian.

The posterior of a model's parameters under a likelihood of :mod:`.likelihood` and a
uniform prior on the model's bounds is worked with in the unbounded space
:math:`z = \operatorname{logit}(u)`, where :math:`u \in (0, 1)^d` is the search cube of
``calibrate`` (``theta = lo + u (hi - lo)``, or its logarithm for store capacities). The
prior's Jacobian term :math:`\log |d\theta/dz|` keeps the density uniform in ``theta``:

.. math:: \log p(z \mid y) = \log p(y \mid \theta(z)) + \sum_j \log \frac{d\theta_j}{dz_j} + \text{const}.

A bound is at :math:`z = \pm\infty`, so every draw honours the bounds and an optimum on a
bound leaves the mode in ``z`` defined.
"""

from __future__ import annotations

import time as _time
import zlib

import numpy as np
import xarray as xr
from scipy.special import expit, logit

from .. import flags, models
from ..inputs import model_inputs, on_basins, period_slice, with_units_notes
from ..models.base import forcing_message, snow_option
from ..models.cemaneige import layer_inputs
from .driver import basin_inputs, calibration_window, model_snow_attr
from .hmc import ess, nuts, rhat
from .likelihood import PosteriorLoss, get_likelihood
from .optimize import calibrate_basin, from_search, log_scaled, to_search

__all__ = ["METHODS", "METRICS", "Target", "collinearity", "posterior", "posterior_basin", "predictive"]

METHODS = ("laplace", "hmc")
#: NUTS metrics: the Laplace covariance kept (step size adapted), or re-estimated in Stan's windows from it.
METRICS = ("laplace", "adapt")
#: Unit-cube margin of a start on a bound (its logit must be finite).
EDGE = 1e-6
#: Newton iterations in ``z`` from the calibrated optimum to the mode of the transformed posterior.
NEWTON_MAXITER = 30
#: Newton stops when the step to the mode is below 0.01 posterior sd (squared Newton decrement below 1e-4).
NEWTON_TOL = 1e-4
#: Largest start of the Newton iterations in ``|z|`` (u within 1e-3 of a bound), and largest step in ``z``.
NEWTON_START, NEWTON_STEP = 6.9, 2.0
#: Spread of the chains' starts, in standard deviations of the Laplace approximation (over-dispersed).
DISPERSION = 2.0


class Target:
    """The log posterior in ``z`` for one basin, its gradient and the model runs it took (layer 1)."""

    def __init__(self, model, forcing, obs, likelihood="gaussian", warmup=0, log_scale=True, solver_options=None):
        self.model, self.forcing, self.obs = model, forcing, obs
        self.likelihood = get_likelihood(likelihood)
        self.warmup, self.solver_options = int(warmup), dict(solver_options or {})
        lo, hi = np.array([model.bounds[p] for p in model.params], dtype=float).T
        self.log = log_scaled(model, log_scale)
        self.lo = to_search(lo, self.log)
        self.width = to_search(hi, self.log) - self.lo
        self.n = int(np.isfinite(obs).sum())
        self.n_evals = 0

    def theta(self, z):
        """Physical parameters of points ``z`` (..., d)."""
        return from_search(self.lo + expit(z) * self.width, self.log)

    def z(self, theta):
        """``z`` of physical parameters, kept :data:`EDGE` inside the bounds."""
        theta = np.asarray(theta, dtype=float)
        v = np.where(self.log, np.log(np.where(self.log, np.maximum(theta, 1e-300), 1.0)), theta)
        return logit(np.clip((v - self.lo) / self.width, EDGE, 1 - EDGE))

    def _chain(self, z):
        """``dtheta/dz``, ``d2theta/dz2``, ``log|dtheta/dz|`` and its first and second derivatives."""
        u = expit(z)
        s = u * (1 - u)
        theta = self.theta(z)
        tv = np.where(self.log, theta, 1.0)  # dtheta/dv, v = lo + u width
        dt = tv * self.width * s
        d2t = np.where(self.log, theta, 0.0) * (self.width * s) ** 2 + tv * self.width * s * (1 - 2 * u)
        # log(u (1 - u)) without underflow far out in z
        logjac = np.where(self.log, np.log(np.where(self.log, theta, 1.0)), 0.0) + np.log(self.width) \
            - np.logaddexp(0, z) - np.logaddexp(0, -z)
        dlog = (1 - 2 * u) + np.where(self.log, self.width * s, 0.0)
        d2log = -2 * s + np.where(self.log, self.width * s * (1 - 2 * u), 0.0)
        return theta, dt, d2t, logjac, dlog, d2log

    def run(self, theta, sensitivities=True):
        self.n_evals += 1
        return self.model.run(theta, self.forcing, warmup=self.warmup, sensitivities=sensitivities,
                              **self.solver_options)

    def __call__(self, z):
        """``(log p(z | y), gradient, S)``; ``-inf`` where the model fails."""
        theta, dt, _, logjac, dlog, _ = self._chain(z)
        try:
            q, J = self.run(theta)
        except (FloatingPointError, ValueError):
            return -np.inf, np.zeros(z.size), np.inf
        value, delta, s = self.likelihood.value_delta(q, self.obs)
        if not np.isfinite(value):
            return -np.inf, np.zeros(z.size), np.inf
        return value + logjac.sum(), dt * (J.T @ delta) + dlog, s

    def newton(self, z, maxiter=NEWTON_MAXITER, tol=NEWTON_TOL):
        """The mode of ``log p(z | y)`` by damped Gauss-Newton from ``z``, and the precision there.

        The Hessian is the likelihood's expected information (``J.T phi J``, from the one
        sensitivity run) in ``z`` plus the exact curvature of the transformation. Returns
        ``(z, precision, S, J, q)`` at the mode.
        """
        def at(z):
            theta, dt, d2t, logjac, dlog, d2log = self._chain(z)
            q, J = self.run(theta)
            value, delta, s = self.likelihood.value_delta(q, self.obs)
            if not np.isfinite(value):
                raise FloatingPointError(f"the flow at theta={theta} is outside the domain of the likelihood")
            g_theta = J.T @ delta
            info = J.T @ (self.likelihood.fisher_weights(q, self.obs, s)[:, None] * J)
            precision = dt[:, None] * info * dt[None, :] - np.diag(g_theta * d2t + d2log)
            return value + logjac.sum(), dt * g_theta + dlog, precision, s, J, q

        # an optimum on a bound is at z = +-14 (EDGE), where the prior's Jacobian term is steep and the likelihood
        # flat in z: start a logit unit inside instead, and cap the steps (a trust region in z)
        z = np.clip(z, -NEWTON_START, NEWTON_START)
        lp, g, prec, s, J, q = at(z)
        for _ in range(maxiter):
            step = _solve(prec, g)
            step *= min(1.0, NEWTON_STEP / np.max(np.abs(step)))
            if g @ step < tol:  # squared Newton decrement: the distance to the mode in posterior sd, squared
                break
            for _ in range(30):  # backtrack until the log density increases
                try:
                    new = at(z + step)
                except (FloatingPointError, ValueError):
                    new = None
                if new is not None and new[0] >= lp:
                    break
                step = step / 2
            else:
                break
            z = z + step
            lp, g, prec, s, J, q = new
        return z, _positive_definite(prec), s, J, q


def _solve(prec, g):
    """``prec^-1 g``, or a gradient step where ``prec`` is not positive definite."""
    try:
        np.linalg.cholesky(prec)
        return np.linalg.solve(prec, g)
    except np.linalg.LinAlgError:
        return g / np.maximum(np.abs(np.diag(prec)), 1.0)


def _positive_definite(prec):
    """``prec`` with eigenvalues floored at a small fraction of the largest (a flat direction stays finite)."""
    w, v = np.linalg.eigh(0.5 * (prec + prec.T))
    return (v * np.maximum(w, 1e-10 * max(w.max(), 1e-300))) @ v.T


def collinearity(J):
    """Collinearity index (Brun et al. 2001) of the sensitivity columns: ``1 / sqrt(min eig(S'S))``, unit columns."""
    norms = np.linalg.norm(J, axis=0)
    if not np.all(norms > 0):
        return np.inf
    s = J / norms
    return float(1.0 / np.sqrt(max(np.linalg.eigvalsh(s.T @ s)[0], 1e-300)))


def posterior_basin(model, forcing, obs, method="laplace", likelihood="gaussian", warmup=0, start=None,
                    n_chains=4, n_draws=500, n_adapt=100, seed=0, n_starts=8, log_scale=True, solver_options=None,
                    max_depth=10, metric="laplace"):
    """Posterior of ``model``'s parameters for one basin (plain arrays).

    Parameters are as :func:`posterior`; ``start`` is a physical parameter vector (or None
    to calibrate first), ``seed`` an int or a sequence for :func:`numpy.random.default_rng`.

    Returns
    -------
    dict
        ``draws`` (n_chains, n_draws, d) physical, ``sigma`` (n_chains, n_draws), ``mean``,
        ``sd`` (d,), ``rhat``, ``ess`` (d,), ``correlation`` (d, d), ``collinearity``,
        ``n_evals``, ``n_divergent``, ``step``, ``mean_depth``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    target = Target(model, forcing, obs, likelihood, warmup, log_scale, solver_options)
    rng = np.random.default_rng(seed)
    d = len(model.params)
    n_cal = 0
    if start is None or not np.all(np.isfinite(start)):
        cal = calibrate_basin(model, forcing, obs, loss=PosteriorLoss(target.likelihood), warmup=warmup,
                              n_starts=n_starts, seed=0, log_scale=log_scale, solver_options=solver_options)
        start, n_cal = cal["params"], cal["n_evals"]
    z_mode, prec, s, J, _ = target.newton(target.z(start))
    cov_z = np.linalg.inv(prec)
    out = {"collinearity": collinearity(J), "n_divergent": 0, "step": np.nan, "mean_depth": np.nan,
           "rhat": np.full(d, np.nan), "ess": np.full(d, np.nan)}
    chol = np.linalg.cholesky(cov_z)
    if method == "laplace":
        z = z_mode + rng.standard_normal((n_chains, n_draws, d)) @ chol.T
        dt = target._chain(z_mode)[1]
        cov = dt[:, None] * cov_z * dt[None, :]  # delta method
        out.update(mean=target.theta(z_mode), sd=np.sqrt(np.diag(cov)))
        ss = np.full((n_chains, n_draws), s)  # sigma given the mode's residuals
    else:
        z = np.empty((n_chains, n_draws, d))
        ss = np.empty((n_chains, n_draws))
        divergent, steps, depths = 0, [], []
        for c in range(n_chains):
            for _ in range(100):  # an over-dispersed start where the model runs
                z0 = z_mode + DISPERSION * chol @ rng.standard_normal(d)
                if np.isfinite(target(z0)[0]):
                    break
            else:
                z0 = z_mode
            res = nuts(target, z0, n_adapt, n_draws, rng, cov=cov_z, max_depth=max_depth,
                       adapt_metric=metric == "adapt")
            z[c], ss[c] = res["z"], res["aux"]
            divergent += res["n_divergent"]
            steps.append(res["step"])
            depths.append(res["mean_depth"])
        out.update(n_divergent=divergent, step=float(np.mean(steps)), mean_depth=float(np.mean(depths)))
    draws = target.theta(z)
    if method == "hmc":
        flat = draws.reshape(-1, d)
        out.update(mean=flat.mean(axis=0), sd=flat.std(axis=0, ddof=1),
                   rhat=np.array([rhat(draws[..., j]) for j in range(d)]),
                   ess=np.array([ess(draws[..., j]) for j in range(d)]))
        cov = np.cov(flat, rowvar=False)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["correlation"] = cov / np.outer(sd, sd)
    out["sigma"] = np.sqrt(ss / rng.chisquare(target.n, size=ss.shape))  # sigma^2 | theta, y ~ S / chi2(n)
    out.update(draws=draws, n_evals=n_cal + target.n_evals)
    return out


_OUTPUTS = ("draws", "sigma", "mean", "sd", "rhat", "ess", "correlation", "collinearity", "n_evals", "seconds",
           "n_divergent", "message", "n_negative_pet")


def _start_params(start, model) -> xr.DataArray:
    """The parameters of ``start`` (a calibration result or a DataArray with a ``param`` dim) in the model's order."""
    if isinstance(start, xr.Dataset) and "params" in start:
        start = start["params"]
    if not isinstance(start, xr.DataArray) or "param" not in start.dims or "param" not in start.coords:
        raise TypeError("start must be a calibration result or a DataArray with a labelled 'param' dim; got "
                        f"{type(start).__name__}")
    missing = [p for p in model.params if p not in start["param"].values]
    if missing:
        raise ValueError(f"start lacks the {model.name} parameters {missing}")
    return start.sel(param=list(model.params)).astype(np.float64).reset_coords(drop=True).drop_vars("param")


def _posterior_block(*arrays, model, snow, method, likelihood, warmup, n_chains, n_draws, n_adapt, seed, n_starts,
                     log_scale, solver_options, dates, forcing_names, has_start, max_depth, metric, layers=False):
    """Kernel over a block of basins: forcings ``(..., T)``, flow ``(..., T)``, [start ``(..., d)``], labels,
    [CemaNeige's hypsometry ``(..., 101)`` and station elevation]."""
    model = models.get(model, snow=snow)
    if layers:
        *arrays, hyps, elev = arrays
    if has_start:
        *forcings, flow, start, labels = arrays
    else:
        *forcings, flow, labels = arrays
        start = None
    shape, d = flow.shape[:-1], len(model.params)
    out = (np.full(shape + (n_chains, n_draws, d), np.nan), np.full(shape + (n_chains, n_draws), np.nan),
           np.full(shape + (d,), np.nan), np.full(shape + (d,), np.nan), np.full(shape + (d,), np.nan),
           np.full(shape + (d,), np.nan), np.full(shape + (d, d), np.nan), np.full(shape, np.nan),
           np.zeros(shape, dtype=np.int64), np.full(shape, np.nan), np.zeros(shape, dtype=np.int64),
           np.full(shape, "", dtype=object), np.zeros(shape, dtype=np.int64))
    labels = np.broadcast_to(labels, shape)
    for idx in np.ndindex(shape):
        forcing, obs, out[12][idx], failure = basin_inputs(forcings, flow, idx, warmup, forcing_names, dates)
        if failure:
            out[11][idx] = failure
            continue
        tic = _time.process_time()
        try:
            # the basin's label seeds its own stream: the draws do not depend on the chunking
            basin_model = model.with_layers(hyps[idx], elev[idx], dates=dates) if layers else model
            res = posterior_basin(basin_model, forcing, obs, method=method, likelihood=likelihood, warmup=warmup,
                                  start=None if start is None else np.asarray(start[idx], dtype=float),
                                  n_chains=n_chains, n_draws=n_draws, n_adapt=n_adapt,
                                  seed=[int(seed), zlib.crc32(str(labels[idx]).encode())], n_starts=n_starts,
                                  log_scale=log_scale, solver_options=solver_options, max_depth=max_depth,
                                  metric=metric)
        except Exception as err:  # whatever goes wrong in one basin fails that basin only
            out[11][idx] = f"failed: {type(err).__name__}: {err}"
            continue
        for k, name in enumerate(_OUTPUTS[:9]):
            out[k][idx] = res[name]
        out[9][idx] = _time.process_time() - tic
        out[10][idx] = res["n_divergent"]
    return out


def posterior(ds: xr.Dataset, model="gr4j", method: str = "laplace", likelihood="gaussian",
              period=slice("1982", "1995"), warmup: int = 365, pet=None, n_chains: int = 4, n_draws: int = 500,
              seed: int = 0, start=None, *, n_adapt: int = 100, n_starts: int = 8, flow: str = "streamflow",
              snow: bool | str = False, log_scale: bool = True, solver_options: dict | None = None,
              max_depth: int = 10, metric: str = "laplace") -> xr.Dataset:
    r"""Posterior of a conceptual model's parameters for every basin, from the exact Jacobian.

    Uniform prior on the model's bounds; a likelihood of :mod:`basinsx.calibration.likelihood`
    with the residual scale integrated out (``"gaussian"``: :math:`\log p(\theta \mid y) =
    -\frac{n}{2}\log \mathrm{SSE}(\theta)`). Worked in :math:`z = \operatorname{logit}(u)`,
    ``u`` the unit cube of ``calibrate``'s search space, with the prior's Jacobian term, so
    that the bounds are at infinity. Each basin is first calibrated to the likelihood's
    mode (``calibrate_basin`` with ``n_starts`` starts), unless ``start`` gives parameters,
    then Gauss-Newton steps in ``z`` find the mode there.

    - ``method="laplace"``: ``z ~ N(mode, H^-1)``, ``H`` the expected information
      ``J.T phi J`` (one sensitivity run at the mode) in ``z`` plus the exact curvature of the
      transformation. ``mean`` is the mode, ``sd`` the delta-method standard deviation.
    - ``method="hmc"``: the no-U-turn sampler (:func:`basinsx.calibration.hmc.nuts`), one
      chain per start drawn :data:`DISPERSION` Laplace standard deviations around the mode,
      the Laplace covariance as the metric (``metric="laplace"``; the step size adapted during
      ``n_adapt`` iterations) or re-estimated from it in Stan's windows (``metric="adapt"``).
      ``mean`` and ``sd`` are those of the draws.

    Dask-backed input gives a lazy result, one task per basin chunk; the draws of a basin
    depend on ``seed`` and its label only (not on the chunking).

    Parameters
    ----------
    ds : xr.Dataset
        Forcings and observed ``flow`` as for :func:`basinsx.calibration.calibrate`.
    model : str or model object
    method : {"laplace", "hmc"}
    likelihood : str or Likelihood
        ``"gaussian"``, ``"log"``, ``"boxcox"`` (lambda 0.2) or ``"heteroscedastic"`` (see
        :mod:`basinsx.calibration.likelihood` for the equations).
    period, warmup, pet, flow, snow, log_scale, solver_options
        As for :func:`basinsx.calibration.calibrate`.
    n_chains, n_draws : int
        Chains and draws kept per chain (Laplace: independent draws in the same layout).
    seed : int
    start : xr.Dataset or xr.DataArray, optional
        A calibration result (``params(basin, param)``) or parameters to start from; the
        mode is then found from there (a few sensitivity runs) instead of calibrating.
    n_adapt : int
        HMC warm-up iterations per chain (step size, and with ``metric="adapt"`` the metric; discarded).
        100 suffice for the step size; give ``metric="adapt"`` 300 or more.
    metric : {"laplace", "adapt"}
        HMC: keep the Laplace covariance as the metric, or estimate a dense one during warm-up.
        The Laplace metric gave 1.5-2x the effective samples per model run on GR4J
        (``docs/benchmarks/calibration.md``); ``"adapt"`` helps where the posterior is far from
        Gaussian in ``z``.
    n_starts : int
        Starts of the calibration to the likelihood's mode when ``start`` is None.
    max_depth : int
        Largest NUTS tree depth.

    Returns
    -------
    xr.Dataset
        ``draws(basin, chain, draw, param)`` in physical units, ``sigma(basin, chain, draw)``
        (residual scale in the likelihood's space, drawn from its conditional), ``mean`` and
        ``sd(basin, param)``, ``rhat`` and ``ess(basin, param)`` (HMC; rank-normalised split
        R-hat and bulk ESS over chains), ``correlation(basin, param, param_)``,
        ``collinearity(basin)`` (Brun et al. 2001 index of the sensitivities at the mode;
        above 10-15 the parameters are not identifiable together), ``n_evals(basin)`` (model
        runs, calibration included; a sensitivity run counts as one), ``seconds(basin)``
        (CPU seconds), the flags ``n_divergent(basin)`` and ``n_negative_pet(basin)``, and
        ``message(basin)`` (``"failed: <reason>"`` where a basin failed; NaN results there).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    lik = get_likelihood(likelihood)
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if int(n_chains) < 1 or int(n_draws) < 2 or int(n_adapt) < 0 or int(warmup) < 0:
        raise ValueError(f"need n_chains >= 1, n_draws >= 2, n_adapt >= 0 and warmup >= 0; got n_chains={n_chains}, "
                         f"n_draws={n_draws}, n_adapt={n_adapt}, warmup={warmup}")
    if method == "hmc" and int(n_chains) < 2:
        raise ValueError("method='hmc' needs n_chains >= 2 for R-hat")
    model_obj = models.get(model, snow=snow)
    period = period_slice(period)
    ds, input_attrs = model_inputs(ds, model_obj.forcings, flow=flow, pet=pet, where="posterior",
                                   warn_biased_pet=True)
    names = list(model_obj.forcings) + [flow]
    missing = [n for n in names if n not in ds]
    if missing:
        raise KeyError(f"posterior needs variables {missing} for model {model_obj.name!r}; the dataset has "
                       f"{sorted(ds.data_vars)}")
    sub, spin, span = calibration_window(ds, names, period, warmup)
    arrays = [sub[n].reset_coords(drop=True) for n in names]
    arrays = [a.chunk({"time": -1}) if a.chunks is not None else a for a in arrays]
    chunks = next((a.chunksizes for a in arrays if a.chunks is not None), None)
    if start is not None:
        theta0 = on_basins(_start_params(start, model_obj), sub, "start")
        arrays.append(theta0.chunk({"basin": chunks["basin"]}) if chunks and "basin" in theta0.dims
                      and "basin" in chunks else theta0)
    if "basin" in sub.dims:
        labels = xr.DataArray(np.asarray(sub["basin"].values).astype(str), dims="basin")
        if chunks and "basin" in chunks:
            labels = labels.chunk({"basin": chunks["basin"]})
    else:
        labels = xr.DataArray(str(sub["basin"].values) if "basin" in sub.coords else "")
    arrays.append(labels)
    # CemaNeige's elevation layers per basin, as calibrate reads them
    extra = layer_inputs(ds, getattr(model_obj, "snow", None))
    input_attrs = with_units_notes(input_attrs, extra)
    arrays += extra
    coords = {c: sub[c] for c in sub.coords if c not in sub.indexes and sub[c].dims == ("basin",)}

    d = len(model_obj.params)
    core_in = [["time"]] * len(names) + ([["param"]] if start is not None else []) + [[]]
    core_in += [["quantile"], []][:len(extra)]
    results = xr.apply_ufunc(
        _posterior_block, *arrays,
        input_core_dims=core_in,
        output_core_dims=[["chain", "draw", "param"], ["chain", "draw"], ["param"], ["param"], ["param"], ["param"],
                          ["param", "param_"]] + [[]] * 6,
        dask="parallelized",
        output_dtypes=[np.float64] * 8 + [np.int64, np.float64, np.int64, object, np.int64],
        dask_gufunc_kwargs={"output_sizes": {"chain": int(n_chains), "draw": int(n_draws), "param": d, "param_": d}},
        kwargs={"model": model if isinstance(model, str) else model_obj, "snow": snow, "method": method,
                "likelihood": lik, "warmup": spin, "n_chains": int(n_chains), "n_draws": int(n_draws),
                "n_adapt": int(n_adapt), "seed": int(seed), "n_starts": int(n_starts), "log_scale": bool(log_scale),
                "solver_options": dict(solver_options or {}), "dates": sub.indexes["time"].values,
                "forcing_names": list(model_obj.forcings), "has_start": start is not None,
                "max_depth": int(max_depth), "metric": metric, "layers": bool(extra)},
    )
    out = xr.Dataset(dict(zip(_OUTPUTS, results))).assign_coords(coords)
    # the likelihoods' offsets scale with the mean observed flow: predictive() needs it
    out["flow_mean"] = sub[flow].isel(time=slice(spin, None)).reset_coords(drop=True).astype(np.float64).mean("time")
    out["flow_mean"].attrs = {"long_name": "mean observed flow in the calibration period", "units": "mm d-1"}
    units = getattr(model_obj, "units", {}) or {}
    params = list(model_obj.params)
    out = out.assign_coords(param=params, param_=params, chain=np.arange(int(n_chains)), draw=np.arange(int(n_draws)),
                            param_units=("param", [str(units.get(p, "")) for p in params]))
    what = "Laplace approximation" if method == "laplace" else "NUTS"
    attrs = {
        "draws": f"posterior draws of the {model_obj.name} parameters ({what}; units: param_units)",
        "sigma": f"residual standard deviation of the {lik.name} likelihood, drawn given each parameter draw",
        "mean": "posterior mode" if method == "laplace" else "posterior mean",
        "sd": "posterior standard deviation" + (" (delta method at the mode)" if method == "laplace" else ""),
        "rhat": "rank-normalised split R-hat over chains (HMC only)",
        "ess": "bulk effective sample size over chains (HMC only)",
        "correlation": "posterior correlation of the parameters",
        "collinearity": "collinearity index of the sensitivities at the mode (Brun et al. 2001)",
        "n_evals": "model runs, calibration included (a run with sensitivities counts as one)",
        "seconds": "CPU seconds of the basin, calibration included",
        "message": "why the basin failed, or empty",
    }
    for name, text in attrs.items():
        out[name].attrs = {"long_name": text}
    out["mean"].attrs["units"] = out["sd"].attrs["units"] = "see param_units"
    out["seconds"].attrs["units"] = "s"
    out["n_divergent"].attrs = {"long_name": "divergent NUTS transitions after warm-up",
                                "flag": "divergent transitions after warm-up (the posterior may be biased)"}
    out["n_negative_pet"].attrs = {"long_name": "days of negative PET in the calibration window, clipped to zero",
                                   "units": "d", "flag": "negative PET clipped to zero (days)",
                                   "flag_category": "NegativePETWarning"}
    # simulate(ds, post["draws"]) and predictive pick the model and its snow option from these
    out["draws"].attrs.update(model=model_obj.name, snow=model_snow_attr(model_obj))
    out.attrs = {"model": model_obj.name, "snow": model_snow_attr(model_obj), "method": method, "likelihood": lik.name,
                 "period": span, "warmup_days": spin, "n_chains": int(n_chains), "n_draws": int(n_draws),
                 "seed": int(seed), "log_scale": int(log_scale),
                 **({"n_adapt": int(n_adapt), "metric": metric} if method == "hmc" else {}),
                 "start": "calibrated to the likelihood's mode" if start is None else "given", **input_attrs}
    if out["n_divergent"].chunks is None and "basin" in out.dims:
        flags.warn(out)
    return out


def _predictive_block(*arrays, model, snow, likelihood, quantiles, warmup, seed, forcing_names, dates,
                      solver_options, layers=False):
    """Kernel: forcings ``(..., T)``, draws ``(..., S, d)``, sigma ``(..., S)``, flow mean and label ``(...)``,
    [CemaNeige's hypsometry ``(..., 101)`` and station elevation].

    Returns the quantiles over the draws of the flow with and without the residual noise, ``(..., Q, T - warmup)``,
    and per basin what is wrong with its forcing ("" if nothing; such a basin's bands are NaN).
    """
    model = models.get(model, snow=snow)
    if layers:
        *arrays, hyps, elev = arrays
    *forcings, draws, sigma, flow_mean, labels = arrays
    shape = np.broadcast_shapes(draws.shape[:-2], np.shape(labels))
    n = forcings[0].shape[-1]
    pred, param = (np.full(shape + (len(quantiles), n - warmup), np.nan) for _ in range(2))
    labels, flow_mean = np.broadcast_to(labels, shape), np.broadcast_to(flow_mean, shape)
    draws, sigma = np.broadcast_to(draws, shape + draws.shape[-2:]), np.broadcast_to(sigma, shape + sigma.shape[-1:])
    pet = forcing_names.index("pet") if "pet" in forcing_names else None
    problems = np.full(shape, "", dtype=object)
    for idx in np.ndindex(shape):
        ok = np.isfinite(sigma[idx]) & np.isfinite(draws[idx]).all(axis=-1)
        if not ok.any():
            continue  # a basin whose posterior failed: NaN bands
        forcing = np.stack([np.broadcast_to(f, shape + (n,))[idx] for f in forcings]).astype(np.float64)
        problems[idx] = forcing_message(forcing, forcing_names, dates) or ""
        if problems[idx]:
            continue  # one basin's bad forcing fails that basin only, flagged
        if pet is not None:
            np.maximum(forcing[pet], 0.0, out=forcing[pet])
        basin_model = model.with_layers(hyps[idx], elev[idx], dates=dates) if layers else model
        q = np.stack([basin_model.run(th, forcing, warmup=warmup, sensitivities=False, **solver_options)[0]
                      for th in draws[idx][ok]])
        rng = np.random.default_rng([int(seed), zlib.crc32(str(labels[idx]).encode())])
        pred[idx] = np.quantile(likelihood.noise(q, sigma[idx][ok], flow_mean[idx], rng), quantiles, axis=0)
        param[idx] = np.quantile(q, quantiles, axis=0)
    return pred, param, problems


def predictive(ds: xr.Dataset, post: xr.Dataset, quantiles=(0.05, 0.5, 0.95), warmup: int = 365, *, model=None,
               pet=None, thin: int = 1, seed: int = 0, solver_options: dict | None = None) -> xr.Dataset:
    """Predictive bands of streamflow: every posterior draw simulated, plus the likelihood's residual noise.

    The noise matters: parameter uncertainty alone gives bands far narrower than the
    scatter of the observations (see the coverage in the uncertainty docs). Predicted flow
    below zero (possible under the Gaussian likelihoods) is set to zero.

    Parameters
    ----------
    ds : xr.Dataset
        Forcings over the prediction period, ``warmup`` days before it included.
    post : xr.Dataset
        A result of :func:`posterior`.
    quantiles : sequence of float
    warmup : int
        Leading days used to spin up the model, dropped from the result.
    model : model object, optional
        The model of ``post`` if it is not a registry model (its name is in ``post.attrs``).
    pet : None, str or xr.DataArray
        As for :func:`posterior`: use the same PET.
    thin : int
        Use every ``thin``-th draw of each chain (one model run per draw used).
    seed : int
        Seed of the residual noise (with the basin label: independent of the chunking).

    Returns
    -------
    xr.Dataset
        ``q_pred(basin, quantile, time)`` (parameters and residual noise) and
        ``q_param(basin, quantile, time)`` (parameter uncertainty only), mm/d; lazy for dask input.
    """
    snow = snow_option(post.attrs.get("snow", 0))
    model_obj = models.get(post.attrs["model"] if model is None else model, snow=snow)
    lik = get_likelihood(post.attrs["likelihood"])
    ds, input_attrs = model_inputs(ds, model_obj.forcings, pet=pet, where="predictive")
    missing = [v for v in model_obj.forcings if v not in ds]
    if missing:
        raise KeyError(f"predictive needs forcings {list(model_obj.forcings)}; the dataset lacks {missing}")
    n = ds.sizes["time"]
    if not 0 <= int(warmup) < n:
        raise ValueError(f"warmup must lie in [0, {n}) days; got {warmup}")
    qs = [float(x) for x in quantiles]
    if not all(0 <= x <= 1 for x in qs):
        raise ValueError(f"quantiles must lie in [0, 1]; got {qs}")
    post = on_basins(post[["draws", "sigma", "flow_mean"]], ds, "post")
    thinned = post[["draws", "sigma"]].isel(draw=slice(None, None, int(thin))).stack(sample=("chain", "draw"))
    thinned = thinned.drop_vars(["sample", "chain", "draw"]).reset_coords(drop=True)
    forcings = [ds[v].reset_coords(drop=True) for v in model_obj.forcings]
    forcings = [f.chunk({"time": -1}) if f.chunks is not None else f for f in forcings]
    labels = xr.DataArray(np.asarray(ds["basin"].values).astype(str), dims=ds["basin"].dims) if "basin" in ds.coords \
        else xr.DataArray("")
    chunks = next((f.chunksizes for f in forcings if f.chunks is not None), None)
    extra = [thinned["draws"].transpose(..., "sample", "param"), thinned["sigma"],
             post["flow_mean"].reset_coords(drop=True), labels]
    layers = layer_inputs(ds, snow)  # as posterior read them
    input_attrs = with_units_notes(input_attrs, layers)
    extra += [a.rename(quantile="elevation_quantile") for a in layers[:1]] + layers[1:]  # "quantile": the bands
    if chunks and "basin" in chunks:  # the basin chunks of the forcings for every input: one task per chunk
        extra = [a.chunk({"basin": chunks["basin"]}) if "basin" in a.dims else a for a in extra]
    pred, param, problem = xr.apply_ufunc(
        _predictive_block, *forcings, *extra,
        input_core_dims=[["time"]] * len(forcings) + [["sample", "param"], ["sample"], [], []]
        + [["elevation_quantile"], []][:len(layers)],
        output_core_dims=[["quantile", "time"]] * 2 + [[]], exclude_dims={"time"},
        dask="parallelized", output_dtypes=[np.float64, np.float64, object],
        dask_gufunc_kwargs={"output_sizes": {"quantile": len(qs), "time": n - int(warmup)}},
        kwargs={"model": post.attrs["model"] if model is None else model_obj,
                "snow": snow, "likelihood": lik, "quantiles": qs, "warmup": int(warmup),
                "seed": int(seed), "forcing_names": list(model_obj.forcings), "dates": ds["time"].values,
                "solver_options": dict(solver_options or {}), "layers": bool(layers)},
    )
    problem.attrs = {"long_name": "what is wrong with the basin's forcing (its bands are NaN)",
                     "flag": "bad forcing, bands NaN"}
    out = xr.Dataset({"q_pred": pred, "q_param": param, "forcing_problem": problem})
    out = out.assign_coords(quantile=qs, time=ds["time"].values[warmup:])
    if "basin" in ds.coords and "basin" not in ds.dims:  # one basin: its label, as simulate keeps it
        out = out.assign_coords(basin=ds["basin"].values)
    out["q_pred"].attrs = {"units": "mm d-1", "long_name": f"predictive quantiles of streamflow (parameters and "
                                                           f"{lik.name} residual noise)"}
    out["q_param"].attrs = {"units": "mm d-1", "long_name": "quantiles of simulated streamflow over the parameter "
                                                            "draws (no residual noise)"}
    out.attrs = {"model": model_obj.name, "likelihood": lik.name, "n_samples": int(thinned.sizes["sample"]),
                 **input_attrs}
    if problem.chunks is None:  # computed now: summarise now, once
        flags.warn(out if "basin" in out.dims else out.expand_dims("basin"))
    return out
