"""basinsx.inverse.minimize against scikit-opt (the paper's implementation), side by side.

Usage: python benchmarks/inverse_metaheuristics.py [--pop 40] [--iters 200] [--seeds 5]

Same objective, bounds, population and iteration count for both; scikit-opt GA/PSO/DE run in
its 'vectorization' mode, SA evaluates one vector at a time (scikit-opt has no vectorised
SA). Reports the median best objective over seeds, forward calls, and the wall-time ratio.
"""

import time

import numpy as np
from common import argument_parser

from basinsx.inverse import minimize


def sphere(X):
    return ((np.atleast_2d(X) - 0.3) ** 2).sum(1)


def rastrigin(X):
    X = np.atleast_2d(X)
    return 10 * X.shape[1] + (X**2 - 10 * np.cos(2 * np.pi * X)).sum(1)


def rosenbrock(X):
    X = np.atleast_2d(X)
    return ((1 - X[:, :-1]) ** 2 + 100 * (X[:, 1:] - X[:, :-1] ** 2) ** 2).sum(1)


class Counted:
    def __init__(self, f):
        self.f, self.n = f, 0

    def __call__(self, X):
        X = np.atleast_2d(X)
        self.n += len(X)
        out = self.f(X)
        return out if len(out) > 1 else out[0]


def run_sko(method, f, d, lo, hi, pop, iters, seed):
    from sko.DE import DE
    from sko.GA import GA
    from sko.PSO import PSO
    from sko.SA import SA
    from sko.tools import set_run_mode

    np.random.seed(seed)
    cf = Counted(f)
    if method == "sa":
        x0 = lo + np.random.rand(d) * (hi - lo)
        # chain length L = pop per temperature; cooling until the counted budget is reached
        opt = SA(func=lambda x: float(cf(x)), x0=x0, T_max=1.0, T_min=1e-9, L=pop, max_stay_counter=iters)
        x, y = opt.run()
        return float(np.min(f(np.clip(x, lo, hi)))), cf.n
    set_run_mode(cf, "vectorization")
    if method == "ga":
        opt = GA(func=cf, n_dim=d, size_pop=pop, max_iter=iters, prob_mut=0.01, lb=lo, ub=hi, precision=1e-7)
    elif method == "pso":
        opt = PSO(func=cf, n_dim=d, pop=pop, max_iter=iters, lb=lo, ub=hi)
    else:
        opt = DE(func=cf, n_dim=d, size_pop=pop, max_iter=iters, lb=lo, ub=hi)
    opt.run()
    y = opt.best_y if method != "pso" else opt.gbest_y
    return float(np.ravel(y)[0]), cf.n


def main(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--pop", type=int, default=40)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--seeds", type=int, default=5)
    a = p.parse_args(argv)
    pop, iters, seeds, d = a.pop, a.iters, a.seeds, 9
    problems = {"sphere": (sphere, -2.0, 2.0), "rastrigin": (rastrigin, -5.12, 5.12), "rosenbrock": (rosenbrock, -2.0, 2.0)}
    print(f"d={d}, pop={pop}, iters={iters}, seeds={seeds}")
    print(f"{'problem':11s} {'method':6s} {'basinsx f':>11s} {'sko f':>11s} {'basinsx nfev':>12s} {'sko nfev':>9s} {'time sko/basinsx':>16s}")
    for pname, (f, a, b) in problems.items():
        lo, hi = np.full(d, a), np.full(d, b)
        for method in ("ga", "pso", "de", "sa"):
            fb, fs, tb, ts, nb, ns = [], [], 0.0, 0.0, 0, 0
            for s in range(seeds):
                t0 = time.perf_counter()
                r = minimize(f, np.c_[lo, hi], method, pop=pop, max_iter=iters, seed=s)
                tb += time.perf_counter() - t0
                t0 = time.perf_counter()
                y, n = run_sko(method, f, d, lo, hi, pop, iters, s)
                ts += time.perf_counter() - t0
                fb.append(r.fun)
                fs.append(y)
                nb, ns = r.nfev, n
            print(f"{pname:11s} {method:6s} {np.median(fb):11.3e} {np.median(fs):11.3e} {nb:12d} {ns:9d} {ts / tb:16.2f}")


if __name__ == "__main__":
    main()
