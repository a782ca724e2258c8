"""Case 1 of Chen et al. (2025) on basinsx.groundwater: eight zones + source, 25 wells.

Usage: python benchmarks/inverse_case1.py [--sizes 200 500 1000 2000] [--epochs 200] [--cnn-epochs 200]
       [--kinds kernel mlp lenet resnet] [--scenarios 10] [--pops 20 80] [--iters 200]
       [--tnna-epochs 1000] [--tnna-lr 1e-3] [--pretrain-epochs 200] [--cache DIR]
       (--scenarios 0: surrogates only)

1. Training sets by Latin hypercube, simulated in parallel (dask processes), a 100-sample
   test set; surrogates kernel / mlp / lenet / resnet: RMSE and R2 of scaled heads and
   concentrations.
2. Monte Carlo scenarios with 1 % multiplicative noise on the scaled observations: TNNA
   against GA / PSO / DE / SA on the best surrogate; forward (surrogate) calls per scenario,
   final misfit, parameter errors, and the misfit of the *solver* run at each estimate.
   TNNA twice: as the paper (random initialisation) and pretrained on the surrogate's
   training pairs (no extra forward call).
"""

import time

import numpy as np
import torch
import xarray as xr
from common import argument_parser, cached, code_digest

from basinsx import groundwater
from basinsx.groundwater import Aquifer, conductivity
from basinsx.inverse import (
    TNNA,
    Surrogate,
    latin_hypercube,
    minimize,
    objective,
    training_set,
    zone_map,
    zoned_field,
)

ZONES = zone_map((40, 80))
NAMES = [f"k{i + 1}" for i in range(8)] + ["c0"]
BOUNDS = {**{n: (1e-12, 9.9e-12) for n in NAMES[:8]}, "c0": (1e-3, 1.0)}
WELLS = {f"w{j}{i}": (x, y) for j, y in enumerate((1.0, 3.0, 5.0, 7.0, 9.0)) for i, x in enumerate((2.0, 6.0, 10.0, 14.0, 18.0))}
TIMES = [20.0]


class Case1:
    """Picklable simulator: 9 parameters -> heads and 20-day concentrations at 25 wells."""

    def __call__(self, theta):
        aq = Aquifer((40, 80), (10.0, 20.0), porosity=0.3, dispersivity=(0.05, 0.005), diffusion=1e-4,
                     heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": float(theta[8])}, wells=WELLS)
        return aq.observe(conductivity(zoned_field(ZONES, theta[:8])), TIMES)


def split_scores(sur, x, y):
    pred = sur.predict_scaled(x.values)
    obs = sur.scale_y(y.values)
    out = {}
    for name, sl in (("H", slice(0, 25)), ("C", slice(25, 50)), ("All", slice(0, 50))):
        p, o = pred[:, sl], obs[:, sl]
        out[f"RMSE_{name}"] = np.sqrt(np.mean((p - o) ** 2))
        out[f"R2_{name}"] = 1 - np.sum((p - o) ** 2) / np.sum((o - o.mean()) ** 2)
    return out


def main(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 1000, 2000])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--cnn-epochs", type=int, default=200)
    p.add_argument("--kinds", nargs="+", default=["kernel", "mlp", "lenet", "resnet"])
    p.add_argument("--scenarios", type=int, default=10)
    p.add_argument("--pops", type=int, nargs="+", default=[20, 80])
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--tnna-epochs", type=int, default=1000)
    p.add_argument("--tnna-lr", type=float, default=1e-3)
    p.add_argument("--pretrain-epochs", type=int, default=200)
    p.add_argument("--scheduler", default="synchronous")
    p.add_argument("--cache", default=None, help="folder to keep the simulated training sets in")
    a = p.parse_args(argv)
    key = code_digest(groundwater, Case1)  # cached runs of other solver code are made again
    torch.set_num_threads(1)
    sim = Case1()
    t0 = time.perf_counter()
    # one process: the benchmark box is shared (a.scheduler="processes" to use every core)
    test = cached(a.cache, "case1_test", lambda: training_set(sim, latin_hypercube(BOUNDS, 100, seed=99),
                                                              scheduler=a.scheduler, progress=False), key=key)
    sets = {n: cached(a.cache, f"case1_{n}", lambda n=n: training_set(sim, latin_hypercube(BOUNDS, n, seed=n),
                                                                       scheduler=a.scheduler), key=key)
            for n in a.sizes}
    n_sim = 100 + sum(a.sizes)
    print(f"{n_sim} forward runs ready in {time.perf_counter() - t0:.1f} s (scheduler {a.scheduler}, cache {a.cache})")

    print(f"\n## Surrogates (mlp: {a.epochs} epochs, CNNs: {a.cnn_epochs}, lr 1e-3, batch 50; test set 100 samples, scaled data)")
    print(f"{'kind':7s} {'n':>5s} {'RMSE_H':>7s} {'RMSE_C':>7s} {'RMSE_All':>8s} {'R2_H':>6s} {'R2_C':>6s} {'R2_All':>6s} {'fit [s]':>8s}")
    fitted = {}
    for kind in a.kinds:
        for n, ds in sets.items():
            kw = {} if kind == "kernel" else {"epochs": a.cnn_epochs if kind in ("lenet", "resnet") else a.epochs, "lr": 1e-3, "batch_size": 50,
                                                "weight_decay": 0.0 if kind == "mlp" else 1e-5}
            t0 = time.perf_counter()
            sur = Surrogate(kind, **kw).fit(ds.params, ds.output)
            dt = time.perf_counter() - t0
            s = split_scores(sur, test.params, test.output)
            fitted[kind, n] = (sur, s["RMSE_All"])
            print(f"{kind:7s} {n:5d} {s['RMSE_H']:7.4f} {s['RMSE_C']:7.4f} {s['RMSE_All']:8.4f} "
                  f"{s['R2_H']:6.3f} {s['R2_C']:6.3f} {s['R2_All']:6.3f} {dt:8.1f}", flush=True)
    (best_kind, best_n), (sur, rmse) = min(fitted.items(), key=lambda kv: kv[1][1])
    print(f"\nbest surrogate: {best_kind} on {best_n} samples (RMSE_All {rmse:.4f})")
    if a.scenarios == 0:
        return

    # Monte Carlo scenarios: truths inside the prior, 1 % multiplicative noise on scaled data
    rng = np.random.default_rng(0)
    truths = latin_hypercube(BOUNDS, a.scenarios, seed=7)
    clean = np.stack([sim(t) for t in truths.values])
    noisy = sur.unscale_y(sur.scale_y(clean) * rng.normal(1.0, 0.01, clean.shape))
    y_obs = xr.DataArray(noisy, dims=("scenario", "obs"))
    lo, hi = np.array([BOUNDS[n] for n in NAMES]).T

    def report(label, est, nfev, misfit, secs):
        rel = np.abs(est - truths.values) / (hi - lo)
        sim_err = np.array([np.sqrt(np.mean((sur.scale_y(sim(e)) - sur.scale_y(c)) ** 2)) for e, c in zip(est, clean)])
        print(f"{label:10s} {nfev:8d} {np.mean(misfit):10.3e} {np.mean(rel):9.4f} {np.max(rel):9.4f} {np.mean(sim_err):10.4f} {secs:8.1f}", flush=True)

    print(f"\n## Inversion, {a.scenarios} scenarios, 1% noise, surrogate {best_kind}-{best_n}")
    print(f"{'method':10s} {'nfev/sc':>8s} {'misfit':>10s} {'err/range':>9s} {'max err':>9s} {'solver RMSE':>10s} {'time [s]':>8s}")
    conv = {}
    pairs = (sets[best_n].params, sets[best_n].output)
    for label, kw in (("TNNA", {}), ("TNNA-pre", {"pretrain": pairs, "pretrain_epochs": a.pretrain_epochs})):
        t0 = time.perf_counter()
        tn = TNNA(sur, BOUNDS, epochs=a.tnna_epochs, lr=a.tnna_lr, weight_decay=1e-6, **kw)
        est = tn.fit(y_obs).values
        report(label, est, tn.nfev, tn.misfit_history[-1], time.perf_counter() - t0)
        conv[label] = tn.misfit_history.mean(1)
        for m in (50, 100, 160, 200):  # the estimate evaluated by the m-th surrogate call
            if m < a.tnna_epochs:
                report(f"{label}-{m}", tn.param_history[m - 1], m, tn.misfit_history[m - 1], 0.0)
    for pop in a.pops:
        for method in ("ga", "pso", "de", "sa"):
            t0 = time.perf_counter()
            res = [minimize(objective(sur, y_obs.isel(scenario=k)), BOUNDS, method, pop=pop, max_iter=a.iters, seed=k)
                   for k in range(a.scenarios)]
            report(f"{method.upper()}-{pop}", np.stack([r.x for r in res]), res[0].nfev, [r.fun for r in res],
                   time.perf_counter() - t0)
            conv[f"{method.upper()}-{pop}"] = (np.mean([r.history for r in res], 0), res[0].nfev_history)
    print("\n## Convergence: mean misfit after a given number of iterations (TNNA: epochs)")
    marks = [m for m in (10, 50, 100, 200, 500, 1000) if m <= min(a.iters, a.tnna_epochs)]
    print(f"{'method':10s} " + " ".join(f"{m:>10d}" for m in marks) + f" {'final':>10s}")
    for k, v in conv.items():
        h = v[0] if isinstance(v, tuple) else v
        print(f"{k:10s} " + " ".join(f"{h[m - 1]:10.3e}" for m in marks) + f" {h[-1]:10.3e}")


if __name__ == "__main__":
    main()
