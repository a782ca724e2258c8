"""Integrators of the ODE models side by side: adaptive Heun (the paper's rtol = atol = 1e-5) against the implicit schemes.

One sample basin (01031500), ``--years`` of real forcing (prcp, ERA5-Land PET), one warm-up year,
the parameters of ``THETA``. Per model and method (``--methods``, ``method[:tolerance]``; without a
tolerance the model's default for the method): ms per run without and with the Jacobian (best of
``--repeat``, methods interleaved), the max flow error ``max|q - q_ref| / max q_ref`` and the max
Jacobian error (per parameter, relative to the column's max) against a tight reference (adaptive
Heun, rtol = atol = 1e-9), and the speed-up of the Jacobian run over the first method's.

With ``--lhs N``: instead, per model, N parameter sets of a Latin hypercube over the bounds
(uniform), ``--lhs-years`` of the same forcing after the warm-up year, without sensitivities: per
method the sets that diverge (an error or a non-finite flow), the max and 99th percentile of
``max|q - q_ref| / max q_ref`` against adaptive Heun at rtol = atol = 1e-7, the sets above 1e-3,
and the seconds of the N runs.

    python benchmarks/ode_integrators.py --repeat 3
    python benchmarks/ode_integrators.py --methods adaptive:1e-5,sdirk:3e-3,esdirk3:1e-4
    python benchmarks/ode_integrators.py --lhs 200 --lhs-years 2
"""

from __future__ import annotations

import time

import numpy as np
from common import argument_parser

import basinsx
import basinsx.models as bm
from basinsx.design import latin_hypercube

THETA = {"hymod": [250.0, 0.6, 0.7, 0.02, 0.45], "hmodel": [5.0, 200.0, 5.0, 2.0, 1.5, 2.0, 40.0],
         "gr4j_ode": [350.0, -0.5, 90.0, 1.7]}
DEFAULT_METHODS = "adaptive:1e-5,sdirk,trbdf2,esdirk3,ros34pw2"
DEFAULT_LHS_METHODS = "adaptive:1e-5,sdirk,trbdf2,esdirk3,ros34pw2"
REFERENCE = {"method": "adaptive", "rtol": 1e-7, "atol": 1e-7, "hmin": 1e-6}


def parse_methods(spec):
    """``"adaptive:1e-5,esdirk3"`` -> ``{"adaptive 1e-5": {"method": "adaptive", "rtol": 1e-5, "atol": 1e-5},
    "esdirk3 (default)": {"method": "esdirk3"}}`` (no tolerance: the model's default for the method)."""
    out = {}
    for item in spec.split(","):
        method, _, tol = item.partition(":")
        if tol:
            out[f"{method} {tol}"] = {"method": method, "rtol": float(tol), "atol": float(tol)}
        else:
            out[f"{method} (default)"] = {"method": method}
    return out


def flow_error(q, q_ref) -> float:
    """``max|q - q_ref| / max q_ref`` (inf where ``q`` is not finite)."""
    if not np.all(np.isfinite(q)):
        return np.inf
    return float(np.abs(q - q_ref).max() / max(q_ref.max(), 1e-3))


def lhs(f, n, methods, models, seed=0):
    """Per ODE model and method: divergences and flow errors on ``n`` Latin-hypercube sets of the bounds."""
    print(f"{f.shape[1]} days (365 warm-up), {n} Latin-hypercube sets per model, reference {REFERENCE}")
    print(f"{'model':9s} {'method':24s} {'diverged':>8s} {'max err':>9s} {'p99 err':>9s} {'> 1e-3':>6s} {'s':>6s}")
    for name in models:
        m = bm.get(name)
        lo, hi = (np.array([m.bounds[p][i] for p in m.params]) for i in (0, 1))
        sets = lo + np.asarray(latin_hypercube(n, len(m.params), seed=seed)) * (hi - lo)
        err = {k: [] for k in methods}
        wall = dict.fromkeys(methods, 0.0)
        for theta in sets:
            q_ref = m.run(theta, f, 365, False, **REFERENCE)[0]
            for k, o in methods.items():
                t0 = time.perf_counter()
                try:
                    q = m.run(theta, f, 365, False, **o)[0]
                except (ArithmeticError, RuntimeError, ValueError):
                    q = np.array([np.nan])
                wall[k] += time.perf_counter() - t0
                err[k].append(flow_error(q, q_ref))
        for k, e in err.items():
            e = np.array(e)
            ok = e[np.isfinite(e)]
            top = (ok.max(), np.quantile(ok, 0.99)) if ok.size else (np.nan, np.nan)
            print(f"{name:9s} {k:24s} {int((~np.isfinite(e)).sum()):8d} {top[0]:9.1e} {top[1]:9.1e} "
                  f"{int((e > 1e-3).sum()):6d} {wall[k]:6.1f}", flush=True)


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--years", type=int, default=15)
    parser.add_argument("--lhs", type=int, default=0, help="Latin-hypercube sets per model (0: the timing table)")
    parser.add_argument("--lhs-years", type=int, default=2, help="years after the warm-up year for --lhs")
    parser.add_argument("--methods", help="method[:tolerance],... (the first is the speed-up's reference); default "
                        f"{DEFAULT_METHODS!r}, with --lhs {DEFAULT_LHS_METHODS!r}")
    parser.add_argument("--models", default=",".join(THETA), help="comma-separated ODE models")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None).isel(basin=0)
    if args.lhs:
        ds = ds.isel(time=slice(0, 365 * (args.lhs_years + 1)))
        return lhs(np.vstack([ds["prcp"].values, ds["pet"].values]).astype(float), args.lhs,
                   parse_methods(args.methods or DEFAULT_LHS_METHODS), models)
    ds = ds.isel(time=slice(0, 365 * (args.years + 1)))
    f = np.vstack([ds["prcp"].values, ds["pet"].values]).astype(float)
    print(f"{f.shape[1]} days (365 warm-up), best of {args.repeat}")
    print(f"{'model':9s} {'method':21s} {'ms':>8s} {'ms + J':>8s} {'flow err':>9s} {'J err':>9s} {'speed-up':>8s}")
    methods = parse_methods(args.methods or DEFAULT_METHODS)
    first = next(iter(methods))
    for name in models:
        theta = THETA[name]
        m = bm.get(name)
        q_ref, j_ref = m.run(theta, f, warmup=365, method="adaptive", rtol=1e-9, atol=1e-9, hmin=1e-6)
        best = {k: [np.inf, np.inf] for k in methods}
        out = {}
        for k, o in methods.items():  # compile
            out[k] = m.run(theta, f, warmup=365, **o)
        for _ in range(args.repeat):
            for k, o in methods.items():
                for i, sens in enumerate((False, True)):
                    t0 = time.perf_counter()
                    m.run(theta, f, warmup=365, sensitivities=sens, **o)
                    best[k][i] = min(best[k][i], time.perf_counter() - t0)
        for k in methods:
            q, jac = out[k]
            eq = np.abs(q - q_ref).max() / q_ref.max()
            ej = (np.abs(jac - j_ref).max(axis=0) / np.abs(j_ref).max(axis=0)).max()
            print(f"{name:9s} {k:21s} {1e3 * best[k][0]:8.1f} {1e3 * best[k][1]:8.1f} {eq:9.1e} {ej:9.1e} "
                  f"{best[first][1] / best[k][1]:8.1f}")


if __name__ == "__main__":
    main()
