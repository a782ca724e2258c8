"""Case 2 of Chen et al. (2025): 64 x 64 Gaussian ln-permeability field, 100 KLE terms.

Usage: python benchmarks/inverse_case2.py [--train 2000] [--surrogate mlp] [--epochs 300] [--pops 100 1000]
       [--iters 200] [--known-weight 100] [--sigma none|surrogate] [--prior W] [--adapt ROUNDS]
       [--n-local 50] [--radius 0.05] [--gauss-newton ITERS] [--refine ITERS] [--refine-prior W] [--extra N]
       [--cache DIR]

10 m x 10 m, no-flow top and bottom, heads 1 m (left) and 0 m (right), solute entering on the
left, concentrations every 2 d to 40 d at a dense 9 x 9 monitoring grid plus steady heads.
k = alpha k_ref, k_ref = 2e-13 m2, ln alpha Gaussian (mean 0, variance 2, isotropic exponential
covariance, correlation length 2.5 m), 100 KLE terms. Known ln alpha at the wells regularise
every method alike (the paper's constraint). Surrogate: an MLP on the 100 KLE coefficients, or
a CNN (lenet / resnet) on the ln alpha field as in the paper, the KLE decoding then being part
of every method's forward map (on one CPU core LeNet trains at ~4 s and ResNet at ~76 s per
epoch on 2,000 fields; a population-1000 metaheuristic through LeNet takes ~2 min). TNNA as in the paper (random initialisation) and pretrained on the
surrogate's training pairs. Reports the RMSE of the estimated ln alpha field and the forward
(surrogate) calls.

--prior W adds the Gaussian prior of the KLE coefficients, W * |xi|^2, to every method's
objective (not in the paper). --adapt ROUNDS adds the adaptive update (local_refine: n-local
solver runs around the estimate, surrogate fine-tuning, re-inversion) to TNNA-200 and to GA-100,
on copies of the surrogate, counting solver runs apart from surrogate calls. --gauss-newton ITERS
is a reference without a surrogate: Gauss-Newton on the solver itself with a one-sided
finite-difference Jacobian (101 runs per iteration), the known values and the prior, weighted by
the noise level. --refine ITERS refines TNNA-200's estimate on the solver in its last steps
(TNNA.refine: ITERS Levenberg-Marquardt iterations of TNNA's own objective with the prior weight
--refine-prior, default 6e-6 ~ the noise variance of the scaled data; 101 solver runs each).
"""

import copy
import pickle
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from common import argument_parser, cached, code_digest

from basinsx import groundwater
from basinsx.groundwater import Aquifer, conductivity
from basinsx.inverse import (
    KLE,
    TNNA,
    Surrogate,
    local_refine,
    minimize,
    objective,
    training_set,
)
from basinsx.inverse import kle as kle_module

COORD = (np.arange(9) + 0.5) * 10.0 / 9
WELLS = {f"w{j}{i}": (x, y) for j, y in enumerate(COORD) for i, x in enumerate(COORD)}
TIMES = np.arange(2.0, 41.0, 2.0)
BOUNDS = {f"xi{k}": (-4.0, 4.0) for k in range(100)}


class Case2:
    """Picklable simulator: 100 KLE coefficients -> heads and concentrations at 81 wells."""

    def __init__(self, kle):
        self.kle = kle

    def __call__(self, xi):
        aq = Aquifer((64, 64), (10.0, 10.0), porosity=0.3, dispersivity=(0.05, 0.005), diffusion=1e-4,
                     heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0}, wells=WELLS)
        return aq.observe(conductivity(2e-13) * np.exp(self.kle.field(xi)), TIMES)


def main(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--test", type=int, default=100)
    p.add_argument("--extra", type=int, default=0, help="training runs added to --train (another random stream)")
    p.add_argument("--surrogate", choices=("mlp", "lenet", "resnet"), default="mlp")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--pops", type=int, nargs="*", default=[100, 1000], help="none: no metaheuristic table")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--known-weight", type=float, default=100.0)
    p.add_argument("--pretrain-epochs", type=int, default=200)
    p.add_argument("--sigma", choices=("none", "surrogate"), default="none",
                   help="weights of Eq. 19: equal, or from the surrogate's test error per output")
    p.add_argument("--no-pretrain", action="store_true", help="leave out the TNNA-pre rows")
    p.add_argument("--prior", type=float, default=0.0, help="weight W of the prior term W |xi|^2 (0: none, as the paper)")
    p.add_argument("--adapt", type=int, default=0, help="rounds of the adaptive update for TNNA-200 and GA-100")
    p.add_argument("--n-local", type=int, default=50, help="solver runs per adaptive round")
    p.add_argument("--radius", type=float, default=0.05, help="half-width of the local box, fraction of the range")
    p.add_argument("--finetune-epochs", type=int, default=100)
    p.add_argument("--gauss-newton", type=int, default=0, help="iterations of the solver-only reference")
    p.add_argument("--refine", type=int, default=0, help="solver iterations that refine TNNA-200's estimate")
    p.add_argument("--refine-prior", type=float, default=6e-6, help="prior weight of those iterations")
    p.add_argument("--scheduler", default="synchronous")
    p.add_argument("--cache", default=None, help="folder to keep the simulated training sets in")
    a = p.parse_args(argv)
    key = code_digest(groundwater, kle_module, Case2)  # runs of other solver code are made again
    torch.set_num_threads(1)
    KLE2 = KLE((64, 64), (10.0, 10.0), 2.5, variance=2.0, n_terms=100, kernel="isotropic")
    print(f"KLE: {KLE2.n_terms} terms keep {100 * KLE2.fraction:.2f}% of the variance (isotropic, l = 2.5 m)")
    sim = Case2(KLE2)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    xi_train = xr.DataArray(rng.standard_normal((a.train, 100)), dims=("sample", "param"),
                            coords={"param": list(BOUNDS)})
    test_xi = xr.DataArray(rng.standard_normal((a.test, 100)), dims=("sample", "param"), coords={"param": list(BOUNDS)})
    train = cached(a.cache, f"case2_train{a.train}", lambda: training_set(sim, xi_train, scheduler=a.scheduler), xi_train,
                   key=key)
    test = cached(a.cache, f"case2_test{a.test}", lambda: training_set(sim, test_xi, scheduler=a.scheduler), test_xi, key=key)
    if a.extra:  # more training runs from another stream: the test set and the reference field stay the same
        xi_extra = xr.DataArray(np.random.default_rng(1).standard_normal((a.extra, 100)), dims=("sample", "param"),
                                coords={"param": list(BOUNDS), "sample": np.arange(a.train, a.train + a.extra)})
        extra = cached(a.cache, f"case2_extra{a.extra}", lambda: training_set(sim, xi_extra, scheduler=a.scheduler),
                       xi_extra, key=key)
        train = xr.concat([train, extra], "sample")
    print(f"{train.sizes['sample']} + {a.test} forward runs ready in {time.perf_counter() - t0:.1f} s (cache {a.cache})")

    phi = torch.as_tensor(KLE2.matrix.T, dtype=torch.float32)  # xi -> ln alpha, inside every forward map

    def as_input(xi):
        if a.surrogate == "mlp":
            return xi
        f = KLE2.field(xi.values)
        return xr.DataArray(f, dims=("sample", "y", "x"))

    def transform(xi):
        return xi if a.surrogate == "mlp" else (KLE2.mean + xi @ phi).reshape(-1, 64, 64)

    t0 = time.perf_counter()
    kw = {"hidden_layers": 3, "width": 512} if a.surrogate == "mlp" else {"weight_decay": 1e-6}
    # the fit is deterministic; a cached one (pickled) skips it
    path = Path(a.cache, f"case2_{a.surrogate}_n{train.sizes['sample']}_e{a.epochs}_lr{a.lr}_b{a.batch}_{key[:12]}.pkl") if a.cache else None
    if path is not None and path.exists():
        sur = pickle.loads(path.read_bytes())
    else:
        sur = Surrogate(a.surrogate, epochs=a.epochs, lr=a.lr, batch_size=a.batch, progress=True, **kw)
        sur.fit(as_input(train.params), train.output)
        if path is not None:
            path.write_bytes(pickle.dumps(sur))
    score = sur.score(as_input(test.params), test.output)
    print(f"surrogate {a.surrogate} ({a.epochs} epochs, lr {a.lr}) ready in {time.perf_counter() - t0:.1f} s; "
          f"test RMSE {float(score.rmse):.4f}, R2 {float(score.r2):.4f}", flush=True)

    xi_true = rng.standard_normal(100)
    f_true = KLE2.field(xi_true)
    clean = sim(xi_true)
    y_obs = xr.DataArray(sur.unscale_y(sur.scale_y(clean) * rng.normal(1.0, 0.01, clean.shape)), dims="obs")
    cells = np.array([[min(int(y / (10 / 64)), 63), min(int(x / (10 / 64)), 63)] for x, y in WELLS.values()])
    flat = cells[:, 0] * 64 + cells[:, 1]
    known = (KLE2.matrix[flat], f_true.ravel()[flat] - KLE2.mean)
    sigma = None
    if a.sigma == "surrogate":
        # sigma_i of Eq. 19 from the surrogate's test error per output, normalised to mean 1:
        # outputs the surrogate predicts badly (late concentrations) count less, for every method
        err = np.sqrt(np.mean((sur.predict_scaled(as_input(test.params).values) - sur.scale_y(test.output.values)) ** 2, 0))
        sigma = np.maximum(err, 1e-3) / np.maximum(err, 1e-3).mean()
        print(f"sigma from the surrogate test error: min {sigma.min():.3f}, max {sigma.max():.3f} (mean 1)")

    def rmse(xi):
        return float(np.sqrt(np.mean((KLE2.field(xi) - f_true) ** 2)))

    print(f"\nRMSE of ln alpha: prior mean field {float(np.sqrt(np.mean(f_true**2))):.4f}")
    ys_obs, ys_true = sur.scale_y(y_obs.values), sur.scale_y(clean)
    print(f"noise: RMS {np.sqrt(np.mean((ys_obs - ys_true) ** 2)):.4f} of the scaled observations")

    def misfit(out):  # solver outputs vs the noise-free truth, scaled
        return float(np.sqrt(np.mean((sur.scale_y(out) - ys_true) ** 2)))

    print(f"{'method':12s} {'forward calls':>13s} {'RMSE ln k':>10s} {'time [s]':>8s}")
    # baseline without any flow data: the posterior mean of xi ~ N(0, I) given the known values
    A, b = known
    xi_known = A.T @ np.linalg.solve(A @ A.T + 1e-6 * np.eye(len(b)), b)
    print(f"{'known only':12s} {0:13d} {rmse(xi_known):10.4f} {0.0:8.1f}   solver misfit {misfit(sim(xi_known)):.4f}")
    terms = {"known": known, "known_weight": a.known_weight, "sigma": sigma}
    if a.prior:
        terms.update(prior=(0.0, 1.0), prior_weight=a.prior)
    pre = {"pretrain": (train.params, train.output), "pretrain_epochs": a.pretrain_epochs}
    for label, extra in (("TNNA", {}), ("TNNA-pre", pre))[: 1 if a.no_pretrain else 2]:
        for epochs in (200, 1000):
            t0 = time.perf_counter()
            tn = TNNA(sur, BOUNDS, transform=transform, epochs=epochs, lr=1e-3, weight_decay=1e-4, **terms, **extra)
            est = tn.fit(y_obs).values
            print(f"{label + '-' + str(epochs):12s} {tn.nfev:13d} {rmse(est):10.4f} {time.perf_counter() - t0:8.1f}",
                  flush=True)
    for pop in a.pops:
        fun = objective(sur, y_obs, transform=transform, **terms)
        for method in ("ga", "pso", "de", "sa"):
            t0 = time.perf_counter()
            r = minimize(fun, BOUNDS, method, pop=pop, max_iter=a.iters, seed=0)
            print(f"{method.upper() + '-' + str(pop):12s} {r.nfev:13d} {rmse(r.x):10.4f} {time.perf_counter() - t0:8.1f}",
                  flush=True)
    if a.refine:
        refine(a, sur, sim, transform, y_obs, terms, rmse)
    if a.adapt:
        adaptive(a, sur, sim, transform, y_obs, terms, rmse, misfit, as_input(test.params), test.output)
    if a.gauss_newton:
        gauss_newton(a, sim, sur, ys_obs, known, xi_known, rmse)


def adaptive_rounds(a, sur, sim, invert, bounds, transform=None):
    """Run an inversion method with ``a.adapt`` rounds of local_refine on its own copy of the
    surrogate; yield (round, solver runs, surrogate calls, estimate, solver output at the
    estimate, the surrogate the estimate was found with). ``invert(surrogate) -> (estimate,
    calls)``. Cases 2 and 3 use it."""
    s = copy.deepcopy(sur)
    est, calls = invert(s)
    local = None
    for r in range(a.adapt + 1):
        if r:
            est, n = invert(s)
            calls += n
        used = s
        # the next round's first run is at this estimate; the last estimate gets one check run
        if r < a.adapt:
            used = copy.deepcopy(s)  # local_refine tunes s for the next round in place
            local = local_refine(s, sim, est, bounds, n_local=a.n_local, radius=a.radius, finetune_epochs=a.finetune_epochs,
                                 transform=transform, local=local, seed=r, scheduler=a.scheduler)
            at_est = local.output.values[r * a.n_local]
        else:
            at_est = sim(est)
        yield r, r * a.n_local, calls, est, at_est, used


def adaptive(a, sur, sim, transform, y_obs, terms, rmse, misfit, x_test, y_test):
    """TNNA-200 and GA-100, each with adaptive rounds on its own copy of the surrogate."""
    print(f"\nadaptive update: {a.adapt} rounds x {a.n_local} solver runs, radius {a.radius} of the range, "
          f"{a.finetune_epochs} fine-tuning epochs on all local runs")
    print(f"{'method':8s} {'round':>5s} {'solver runs':>11s} {'surrogate calls':>15s} {'RMSE ln k':>10s} "
          f"{'solver misfit':>13s} {'time [s]':>8s}")

    def tnna(s):
        tn = TNNA(s, BOUNDS, transform=transform, epochs=200, lr=1e-3, weight_decay=1e-4, **terms)
        return tn.fit(y_obs).values, tn.nfev

    def ga(s):
        r = minimize(objective(s, y_obs, transform=transform, **terms), BOUNDS, "ga", pop=100, max_iter=a.iters, seed=0)
        return r.x, r.nfev

    for label, invert in (("TNNA-200", tnna), ("GA-100", ga)):
        t0 = time.perf_counter()
        for r, runs, calls, est, at_est, s in adaptive_rounds(a, sur, sim, invert, BOUNDS, transform):
            print(f"{label:8s} {r:5d} {runs:11d} {calls:15d} {rmse(est):10.4f} {misfit(at_est):13.4f} "
                  f"{time.perf_counter() - t0:8.1f}", flush=True)
        print(f"{label}: surrogate test RMSE after the rounds {float(s.score(x_test, y_test).rmse):.4f} "
              f"(before {float(sur.score(x_test, y_test).rmse):.4f})")


def refine(a, sur, sim, transform, y_obs, terms, rmse):
    """TNNA-200, then TNNA.refine on the solver: solver runs, surrogate calls, RMSE per iteration."""
    print(f"\nTNNA-200 refined on the solver: {a.refine} Levenberg-Marquardt iterations, prior weight {a.refine_prior}")
    t0 = time.perf_counter()
    tn = TNNA(sur, BOUNDS, transform=transform, epochs=200, lr=1e-3, weight_decay=1e-4, **terms)
    tn.fit(y_obs)
    print(f"TNNA-200 done in {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"{'iteration':>9s} {'solver runs':>11s} {'surrogate calls':>15s} {'RMSE ln k':>10s} {'objective':>10s}")
    tn.refine(sim, y_obs, iterations=a.refine, prior_weight=a.refine_prior, scheduler=a.scheduler)
    for it, (est, runs, obj) in enumerate(zip(tn.refine_history, tn.refine_runs, tn.refine_objective)):
        print(f"{it:9d} {runs:11d} {tn.nfev:15d} {rmse(est):10.4f} {obj:10.4g}")
    print(f"refined: {tn.n_simulations} solver runs, {tn.nfev} surrogate calls, RMSE ln k "
          f"{rmse(tn.estimate.values):.4f}, {time.perf_counter() - t0:.1f} s in all")


def gauss_newton(a, sim, sur, ys_obs, known, xi0, rmse):
    """Reference without a surrogate: Gauss-Newton MAP on the solver, finite-difference Jacobian."""
    A, b = known
    s = 0.01 * float(np.sqrt(np.mean(ys_obs**2)))  # the 1 % noise in scaled units
    s_known = 1e-3  # the known values are exact; a small std keeps them nearly hard constraints
    print(f"\nGauss-Newton on the solver (prior N(0, I), data std {s:.4f}, known std {s_known}), from 'known only'")
    print(f"{'iteration':>9s} {'solver runs':>11s} {'RMSE ln k':>10s} {'time [s]':>8s}")
    xi, runs, t0 = xi0.copy(), 0, time.perf_counter()
    for it in range(1, a.gauss_newton + 1):
        f0 = sur.scale_y(sim(xi))
        J = np.stack([(sur.scale_y(sim(xi + 1e-3 * e)) - f0) / 1e-3 for e in np.eye(len(xi))], 1)
        runs += len(xi) + 1
        H = J.T @ J / s**2 + np.eye(len(xi)) + A.T @ A / s_known**2
        g = J.T @ (ys_obs - f0) / s**2 - xi + A.T @ (b - A @ xi) / s_known**2
        xi = xi + np.linalg.solve(H, g)
        print(f"{it:9d} {runs:11d} {rmse(xi):10.4f} {time.perf_counter() - t0:8.1f}", flush=True)


if __name__ == "__main__":
    main()
