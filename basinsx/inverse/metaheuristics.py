"""Population metaheuristics (GA, PSO, DE, SA) behind one vectorised interface.

The objective is called once per iteration on the whole population, ``fun(X) -> f`` with
``X`` of shape ``(pop, n)``, so a surrogate evaluates a population in one batched call.
Every method counts forward calls (``nfev``) the same way: one per evaluated vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._design import warn_beyond_design
from ._labels import labeled, order
from .sampling import as_bounds

__all__ = ["METHODS", "OptimizeResult", "minimize"]


@dataclass
class OptimizeResult:
    """Outcome of :func:`minimize`: the best vector ``x``, labeled by ``param``."""

    x: np.ndarray
    param: list  # labels of x, in its order
    fun: float
    nfev: int
    nit: int
    method: str
    history: np.ndarray = field(repr=False)  # best objective after each iteration
    nfev_history: np.ndarray = field(repr=False)  # cumulative forward calls after each iteration


def _eval(fun, X):
    f = np.asarray(fun(X), dtype=float).reshape(-1)
    if f.shape[0] != X.shape[0]:
        raise ValueError(f"the objective returned {f.shape[0]} values for a population of {X.shape[0]}")
    return np.where(np.isfinite(f), f, np.inf)


def _ga(fun, lo, hi, pop, max_iter, rng, crossover=0.9, mutation=None, sigma=0.1):
    """Real-coded GA: binary tournaments, blend (BLX-0.5) crossover, Gaussian mutation, one elite.

    The mutation width decays geometrically from ``sigma`` to ``sigma / 100`` of each range so
    that late generations refine (the role of the bit precision in a binary-coded GA).
    """
    n = lo.size
    pm = 1.0 / n if mutation is None else mutation
    X = lo + rng.random((pop, n)) * (hi - lo)
    f = _eval(fun, X)
    for k in range(max_iter):
        width = sigma * 0.01 ** (k / max(max_iter - 1, 1))
        i, j = rng.integers(pop, size=(2, pop))
        parents = np.where((f[i] <= f[j])[:, None], X[i], X[j])
        mates = parents[rng.permutation(pop)]
        u = rng.uniform(-0.5, 1.5, size=(pop, n))
        child = np.where(rng.random((pop, 1)) < crossover, parents + u * (mates - parents), parents)
        mut = rng.random((pop, n)) < pm
        child = child + mut * rng.normal(0.0, width, (pop, n)) * (hi - lo)
        child = np.clip(child, lo, hi)
        best = np.argmin(f)
        child[0] = X[best]  # elitism: the best individual survives unchanged
        fc = np.empty(pop)
        fc[0] = f[best]
        fc[1:] = _eval(fun, child[1:])
        X, f = child, fc
        yield X, f, pop - 1


def _pso(fun, lo, hi, pop, max_iter, rng, w=0.8, c1=0.5, c2=0.5):
    n = lo.size
    X = lo + rng.random((pop, n)) * (hi - lo)
    V = (rng.random((pop, n)) - 0.5) * (hi - lo) * 0.2
    f = _eval(fun, X)
    P, fp = X.copy(), f.copy()
    for _ in range(max_iter):
        g = P[np.argmin(fp)]
        r1, r2 = rng.random((2, pop, n))
        V = w * V + c1 * r1 * (P - X) + c2 * r2 * (g - X)
        X = np.clip(X + V, lo, hi)
        f = _eval(fun, X)
        better = f < fp
        P[better], fp[better] = X[better], f[better]
        yield P, fp, pop


def _de(fun, lo, hi, pop, max_iter, rng, F=0.5, CR=0.3):
    """DE/rand/1/bin with greedy selection (defaults of scikit-opt: F = 0.5, crossover 0.3)."""
    n = lo.size
    X = lo + rng.random((pop, n)) * (hi - lo)
    f = _eval(fun, X)
    for _ in range(max_iter):
        idx = np.argsort(rng.random((pop, pop - 1)), axis=1)[:, :3]
        idx += idx >= np.arange(pop)[:, None]  # never pick the target itself
        a, b, c = X[idx[:, 0]], X[idx[:, 1]], X[idx[:, 2]]
        mutant = np.clip(a + F * (b - c), lo, hi)
        cross = rng.random((pop, n)) < CR
        cross[np.arange(pop), rng.integers(n, size=pop)] = True
        trial = np.where(cross, mutant, X)
        ft = _eval(fun, trial)
        better = ft <= f
        X[better], f[better] = trial[better], ft[better]
        yield X, f, pop


def _sa(fun, lo, hi, pop, max_iter, rng, cooling=0.97, step=0.1):
    """``pop`` simulated-annealing chains in parallel, Metropolis acceptance, geometric cooling.

    The initial temperature is the spread of the initial objective values, so the method does
    not depend on the objective's scale; the proposal width shrinks with sqrt(T / T0).
    """
    n = lo.size
    X = lo + rng.random((pop, n)) * (hi - lo)
    f = _eval(fun, X)
    T0 = float(np.std(f[np.isfinite(f)])) or 1.0
    T = T0
    B, fb = X.copy(), f.copy()
    for _ in range(max_iter):
        width = step * np.sqrt(T / T0) * (hi - lo)
        cand = np.clip(X + rng.normal(0.0, 1.0, (pop, n)) * width, lo, hi)
        fc = _eval(fun, cand)
        accept = (fc <= f) | (rng.random(pop) < np.exp(-np.clip((fc - f) / T, 0, 700)))
        X[accept], f[accept] = cand[accept], fc[accept]
        better = f < fb
        B[better], fb[better] = X[better], f[better]
        T *= cooling
        yield B, fb, pop


METHODS = {"ga": _ga, "pso": _pso, "de": _de, "sa": _sa}


def minimize(fun, bounds, method: str = "de", pop: int = 40, max_iter: int = 200, seed=None,
             **options) -> OptimizeResult:
    """Minimise a vectorised objective inside box bounds with a population metaheuristic.

    Parameters
    ----------
    fun : callable
        ``fun(X) -> f`` on a population ``X`` of shape ``(pop, n)``; returns ``(pop,)``. An
        attribute ``fun.param`` (as :func:`basinsx.inverse.objective` sets: the surrogate's
        input labels) gives the labels of the columns of ``X``.
    bounds : mapping, array or DataArray
        Box bounds, see :func:`basinsx.inverse.as_bounds`. With ``fun.param``, labeled bounds
        are put in that order (an error names missing or unknown labels) and a plain array is
        taken in it; otherwise the columns of ``X`` are the bounds in their own order.
    method : {"ga", "pso", "de", "sa"}
        Genetic algorithm (real-coded), particle swarm, differential evolution, or parallel
        simulated-annealing chains (``pop`` chains; the paper's chain length).
    pop : int
        Population size (number of chains for SA).
    max_iter : int
        Iterations; the objective is called ``max_iter + 1`` times (GA evaluates ``pop - 1``
        new individuals per iteration, keeping the elite).
    seed : int, optional
        Seed of the random generator.
    **options
        Method settings (GA: ``crossover``, ``mutation``, ``sigma``; PSO: ``w``, ``c1``, ``c2``;
        DE: ``F``, ``CR``; SA: ``cooling``, ``step``).
    """
    method = method.lower()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    if pop < 4 or max_iter < 1:
        raise ValueError("pop must be at least 4 and max_iter at least 1")
    b = as_bounds(bounds)
    names = getattr(fun, "param", None)
    if names is not None:
        if b.sizes["param"] != len(names):
            raise ValueError(f"bounds give {b.sizes['param']} parameters, the objective takes {len(names)}")
        b = (b.isel(param=order(b.indexes["param"], names, "bounds 'param'", "the objective's"))
             if labeled(bounds) else b.assign_coords(param=names))
    warn_beyond_design(b, getattr(fun, "design", None))
    lo, hi = b.values[:, 0], b.values[:, 1]
    rng = np.random.default_rng(seed)
    history, nfev_hist = [], []
    nfev = pop
    best_x, best_f = None, np.inf
    for X, f, calls in METHODS[method](fun, lo, hi, pop, max_iter, rng, **options):
        nfev += calls
        k = int(np.argmin(f))
        if f[k] < best_f:
            best_x, best_f = X[k].copy(), float(f[k])
        history.append(best_f)
        nfev_hist.append(nfev)
    if best_x is None:
        raise ValueError(f"the objective is NaN or infinite at every one of the {nfev} points evaluated")
    return OptimizeResult(best_x, b["param"].values.tolist(), best_f, nfev, max_iter, method, np.array(history),
                          np.array(nfev_hist))
