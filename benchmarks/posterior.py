"""GR4J posterior: basinsx NUTS and Laplace vs a long random-walk Metropolis reference vs spotpy DREAM.

Same data (Caravan CAMELS-US, Oudin PET, warm-up 1981, calibration 1982-1995), same model
(basinsx's GR4J), same bounds (uniform prior) and the same likelihood (Gaussian errors,
sigma integrated out: ``log p = -(n/2) log SSE``) for every method, one basin after the
other in the same process, so CPU-time ratios are taken under the same load.

- basinsx: ``posterior(method="hmc")`` with its defaults (4 chains x (100 warm-up + ``--draws``)
  NUTS iterations on the Laplace metric, calibration included), the same with the metric
  adapted in Stan's windows (``metric="adapt"``, 300 warm-up iterations, the former default),
  and ``posterior(method="laplace")``.
- reference: random-walk Metropolis in the parameters, ``--rwm`` runs of ``Model.run``,
  proposal ``2.38^2/d`` times the Laplace covariance, from the mode, first 10 % discarded.
- spotpy DREAM: ``--dream`` runs, 7 chains, Metropolis ratio ``exp(like - like_old)``
  (``acceptance_test_option=2``), no early stop; second half of each chain's states kept
  (``sampler.bestpar``: spotpy's database holds every proposal, rejected ones too).

Efficiency = bulk ESS (smallest over parameters) per model run (a sensitivity run counts
as one) and per CPU second. Coverage of the 90 % predictive band, validation 1996-2014
(warm-up 1995), for Laplace on ``--coverage`` basins with every likelihood of ``--likelihoods``
and for NUTS on the compared basins.

    python benchmarks/posterior.py --basins 4 --coverage 100
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from common import argument_parser, caravan

import basinsx.models as bm
from basinsx.calibration import posterior, predictive
from basinsx.calibration.hmc import ess

CAL, VAL = slice("1981-01-01", "1995-12-31"), slice("1995-01-01", "2014-12-31")
MODEL = bm.get("gr4j")
BOUNDS = np.array([MODEL.bounds[p] for p in MODEL.params])


def log_post(theta, forcing, obs):
    if np.any(theta <= BOUNDS[:, 0]) or np.any(theta >= BOUNDS[:, 1]):
        return -np.inf
    q = MODEL.run(theta, forcing, warmup=365, sensitivities=False)[0]
    e = (obs - q)[np.isfinite(obs)]
    return -0.5 * e.size * np.log(e @ e)


def rwm(forcing, obs, start, cov, n, seed=0):
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(2.38**2 / len(start) * cov)
    x, lp = start.copy(), log_post(start, forcing, obs)
    out = np.empty((n, len(start)))
    accepted = 0
    for i in range(n):
        y = x + chol @ rng.standard_normal(len(x))
        lq = log_post(y, forcing, obs)
        if np.log(rng.random()) < lq - lp:
            x, lp, accepted = y, lq, accepted + 1
        out[i] = x
    return out[n // 10:], accepted / n


class DreamSetup:
    def __init__(self, forcing, obs):
        import spotpy

        self.params = [spotpy.parameter.Uniform(p, low=lo, high=hi) for p, (lo, hi) in zip(MODEL.params, BOUNDS)]
        self.forcing, self.obs = forcing, obs

    def parameters(self):
        import spotpy

        return spotpy.parameter.generate(self.params)

    def simulation(self, vector):
        return MODEL.run(np.asarray(vector, dtype=float), self.forcing, warmup=365, sensitivities=False)[0]

    def evaluation(self):
        return self.obs

    def objectivefunction(self, simulation, evaluation):
        e = (evaluation - simulation)[np.isfinite(evaluation)]
        return -0.5 * e.size * np.log(e @ e)


def dream(forcing, obs, n, seed=0):
    import spotpy

    np.random.seed(seed)  # spotpy draws from numpy's and python's global generators
    import random

    random.seed(seed)
    sampler = spotpy.algorithms.dream(DreamSetup(forcing, obs), dbformat="ram", save_sim=False)
    sampler.sample(n, nChains=7, convergence_limit=0.0, acceptance_test_option=2)
    # the chains' states, not spotpy's database: that holds every proposal evaluated, rejected ones included
    n = min(sampler.nChainruns)  # the chains end a few runs apart
    return np.asarray(sampler.bestpar, dtype=float)[:, n // 2:n]


def coverage(ds, post):
    bands = predictive(ds.sel(time=VAL), post, quantiles=(0.05, 0.95), warmup=365, pet="pet")
    y = ds["streamflow"].sel(time=slice("1996-01-01", None))
    ok = y.notnull()
    out = {}
    for name in ("q_pred", "q_param"):
        inside = (y >= bands[name].isel(quantile=0)) & (y <= bands[name].isel(quantile=1))
        out[name] = (inside & ok).sum("time") / ok.sum("time")
    return out


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--basins", type=int, default=4, help="basins compared with the reference and DREAM")
    parser.add_argument("--step", type=int, default=25, help="take every STEP-th basin for the comparison")
    parser.add_argument("--rwm", type=int, default=100_000)
    parser.add_argument("--dream", type=int, default=30_000)
    parser.add_argument("--coverage", type=int, default=100, help="basins for the Laplace band coverage")
    parser.add_argument("--draws", type=int, default=500, help="NUTS draws per chain")
    parser.add_argument("--likelihoods", nargs="*", default=["gaussian", "log", "boxcox", "heteroscedastic"],
                        help="likelihoods of the Laplace coverage run")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    ds = caravan("oudin")[["prcp", "pet", "streamflow"]].astype("float64")
    ratios = []
    for b in list(ds.basin.values)[:: args.step][: args.basins]:
        one = ds.sel(basin=[b])
        cal = one.sel(time=CAL)
        forcing = np.stack([cal["prcp"].values[0], cal["pet"].values[0]])
        obs = cal["streamflow"].values[0][365:]
        res = {"laplace": posterior(one, method="laplace", pet="pet", seed=1),
               "hmc": posterior(one, method="hmc", pet="pet", seed=1, n_draws=args.draws),
               "adapt": posterior(one, method="hmc", pet="pet", seed=1, n_draws=args.draws, metric="adapt",
                                  n_adapt=300)}
        hmc = res["hmc"]
        draws = hmc["draws"].values[0]
        t0 = time.process_time()
        cov = np.cov(res["laplace"]["draws"].values[0].reshape(-1, 4), rowvar=False)
        ref, acc = rwm(forcing, obs, res["laplace"]["mean"].values[0], cov, args.rwm)
        t_rwm = time.process_time() - t0
        t0 = time.process_time()
        chains = dream(forcing, obs, args.dream)
        t_dream = time.process_time() - t0
        rm, rs = ref.mean(0), ref.std(0)
        print(f"\n{b}: reference RWM {args.rwm} runs (acceptance {acc:.2f}, {t_rwm:.0f} CPU s), ESS/param "
              f"{[round(ess(ref[None, :, j])) for j in range(4)]}")
        print(f"{'param':6} {'ref mean':>10} {'ref sd':>9} | {'hmc dmean/sd':>12} {'hmc sd/ref':>10} | "
              f"{'lap dmean/sd':>12} {'lap sd/ref':>10} | {'dream dmean/sd':>14} {'dream sd/ref':>12}")
        dflat = chains.reshape(-1, 4)
        for j, p in enumerate(MODEL.params):
            h = draws[..., j].ravel()
            lap_mean, lap_sd = float(res["laplace"]["mean"][0, j]), float(res["laplace"]["sd"][0, j])
            print(f"{p:6} {rm[j]:10.4g} {rs[j]:9.3g} | {(h.mean() - rm[j]) / rs[j]:12.3f} {h.std() / rs[j]:10.3f} | "
                  f"{(lap_mean - rm[j]) / rs[j]:12.3f} {lap_sd / rs[j]:10.3f} | "
                  f"{(dflat[:, j].mean() - rm[j]) / rs[j]:14.3f} {dflat[:, j].std() / rs[j]:12.3f}")
        ess_h = float(hmc["ess"].min())
        ess_d = min(ess(chains[..., j]) for j in range(4))
        runs_h, sec_h = int(hmc["n_evals"][0]), float(hmc["seconds"][0])
        per_run = (ess_h / runs_h) / (ess_d / args.dream)
        per_sec = (ess_h / sec_h) / (ess_d / t_dream)
        ratios.append((per_run, per_sec))
        print(f"NUTS: min ESS {ess_h:.0f}, max R-hat {float(hmc['rhat'].max()):.3f}, {runs_h} runs, {sec_h:.1f} CPU s, "
              f"{int(hmc['n_divergent'][0])} divergent | Laplace: {int(res['laplace']['n_evals'][0])} runs, "
              f"{float(res['laplace']['seconds'][0]):.2f} CPU s | DREAM: min ESS {ess_d:.0f}, {args.dream} runs, "
              f"{t_dream:.1f} CPU s")
        ada = res["adapt"]
        ess_a, runs_a = float(ada["ess"].min()), int(ada["n_evals"][0])
        print(f"ESS per run NUTS/DREAM {per_run:.1f}x, ESS per CPU second {per_sec:.1f}x | adapted metric: min ESS "
              f"{ess_a:.0f}, {runs_a} runs, {float(ada['seconds'][0]):.1f} CPU s, ESS per run "
              f"{(ess_a / runs_a) / (ess_d / args.dream):.1f}x DREAM's")
        cov_h = coverage(one, hmc)
        print(f"90 % band coverage (validation), NUTS: {float(cov_h['q_pred'][0]):.3f} "
              f"(parameters only {float(cov_h['q_param'][0]):.3f})")
    if ratios:
        r = np.array(ratios)
        q = np.percentile(r, [25, 50, 75], axis=0)
        print(f"\nNUTS/DREAM over {len(r)} basins (q25/median/q75): ESS per run {q[:, 0].round(1)}, "
              f"ESS per CPU s {q[:, 1].round(1)}")
    if args.coverage:
        sub = ds.isel(basin=slice(0, args.coverage))
        for lik in args.likelihoods:
            t0 = time.process_time()
            lap = posterior(sub, method="laplace", likelihood=lik, pet="pet", seed=1)
            cov = coverage(sub, lap)
            print(f"\nLaplace, {lik} likelihood, on {sub.sizes['basin']} basins ({time.process_time() - t0:.0f} CPU s, "
                  f"median {float(lap['seconds'].median()):.2f} CPU s and {int(lap['n_evals'].median())} runs per basin, "
                  f"calibration included; {int((lap['message'] != '').sum())} failed)")
            for name, what in (("q_pred", "with residual noise"), ("q_param", "parameters only")):
                c = cov[name]
                print(f"90 % band coverage {what}: q25/median/q75 {np.nanpercentile(c, [25, 50, 75]).round(3)}")

if __name__ == "__main__":
    main()
