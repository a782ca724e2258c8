"""The no-U-turn sampler with windowed adaptation, and MCMC diagnostics (plain arrays, layer 1).

:func:`nuts` samples ``exp(logp(z))`` on ``R^d`` from one start: multinomial NUTS with the
generalised U-turn criterion checked across sub-trees (Hoffman & Gelman 2014; Betancourt
2017), step size by dual averaging to a mean acceptance of :data:`TARGET_ACCEPT`, and a dense
mass matrix estimated in Stan's doubling windows. :func:`rhat` and :func:`ess` are the
rank-normalised split R-hat and bulk effective sample size of Vehtari et al. (2021).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

__all__ = ["TARGET_ACCEPT", "ess", "nuts", "rhat"]

#: Mean acceptance statistic the step size is adapted to.
TARGET_ACCEPT = 0.8
#: A leapfrog step whose energy error exceeds this is divergent: the trajectory ends there.
DIVERGENCE = 1000.0
#: Stan's adaptation windows: initial fast buffer, first slow window, final fast buffer (iterations).
WINDOWS = (75, 25, 50)


class _Tree:
    """A sub-tree of a trajectory: its two ends (in build order), the sum of momenta, the proposal, weights."""

    __slots__ = ("beg", "end", "rho", "prop", "logw", "acc", "n", "div", "turn")


def _leaf(f, z, p, g, eps, minv, h0):
    p = p + 0.5 * eps * g
    z = z + eps * (minv @ p)
    lp, g, aux = f(z)
    p = p + 0.5 * eps * g
    ps = minv @ p
    h = -lp + 0.5 * (p @ ps)
    h = h if np.isfinite(h) else np.inf
    t = _Tree()
    t.beg = t.end = (z, p, ps, g)
    t.rho, t.prop, t.logw = p, (z, lp, g, aux), h0 - h
    t.acc, t.n, t.div, t.turn = min(1.0, np.exp(min(h0 - h, 0.0))), 1, h - h0 > DIVERGENCE, False
    return t


def _no_uturn(ps_a, ps_b, rho):
    return ps_a @ rho > 0 and ps_b @ rho > 0


def _build(f, z, p, g, depth, eps, minv, h0, rng):
    """``2**depth`` leapfrog steps of size ``eps`` (its sign is the direction) from ``(z, p, g)``."""
    if depth == 0:
        return _leaf(f, z, p, g, eps, minv, h0)
    left = _build(f, z, p, g, depth - 1, eps, minv, h0, rng)
    if left.div or left.turn:
        return left
    right = _build(f, *left.end[:2], left.end[3], depth - 1, eps, minv, h0, rng)
    right.acc, right.n = right.acc + left.acc, right.n + left.n
    if right.div or right.turn:
        return right
    t = _Tree()
    t.beg, t.end, t.acc, t.n, t.div = left.beg, right.end, right.acc, right.n, False
    t.logw = np.logaddexp(left.logw, right.logw)
    t.prop = right.prop if rng.random() < np.exp(right.logw - t.logw) else left.prop
    t.rho = left.rho + right.rho
    t.turn = not (_no_uturn(left.beg[2], right.end[2], t.rho)
                  and _no_uturn(left.beg[2], right.beg[2], left.rho + right.beg[1])
                  and _no_uturn(left.end[2], right.end[2], right.rho + left.end[1]))
    return t


def _transition(f, state, eps, minv, chol, rng, max_depth):
    """One NUTS iteration from ``state = (z, lp, g, aux)``; returns the new state and statistics."""
    z, lp, g, _ = state
    p = chol @ rng.standard_normal(z.size)  # p ~ N(0, M), M = inverse of minv
    ps = minv @ p
    h0 = -lp + 0.5 * (p @ ps)
    ends = {True: (z, p, ps, g), False: (z, p, ps, g)}  # forward, backward
    rho, logw, prop = p, 0.0, state
    n = 0
    acc, div, depth = 0.0, False, 0
    for depth in range(max_depth):
        forward = bool(rng.random() > 0.5)
        near, far = ends[forward], ends[not forward]
        t = _build(f, near[0], near[1], near[3], depth, eps if forward else -eps, minv, h0, rng)
        n, acc = n + t.n, acc + t.acc
        if t.div:
            div = True
            break
        if t.turn:
            break
        # biased progressive sampling, favouring the new sub-tree; the ratio capped at 1 (rng.random() < 1):
        # the same choice, without exp overflowing where the new sub-tree weighs e^710 times the old ones
        if rng.random() < np.exp(min(t.logw - logw, 0.0)):
            prop = t.prop
        logw = np.logaddexp(logw, t.logw)
        old, rho = rho, rho + t.rho
        ends[forward] = t.end
        if not (_no_uturn(far[2], t.end[2], rho) and _no_uturn(far[2], t.beg[2], old + t.beg[1])
                and _no_uturn(near[2], t.end[2], t.rho + near[1])):
            break
    return prop, n, acc / max(n, 1), div, depth + 1


def _initial_step(f, state, minv, chol, rng):
    """Stan's heuristic: double or halve the step until one leapfrog step's acceptance crosses 0.8."""
    eps = 1.0
    z, lp, g, _ = state

    def log_accept(eps):
        p = chol @ rng.standard_normal(z.size)
        h0 = -lp + 0.5 * (p @ (minv @ p))
        t = _leaf(f, z, p, g, eps, minv, h0)
        return t.logw if np.isfinite(t.logw) else -np.inf

    up = log_accept(eps) > np.log(0.8)
    for _ in range(50):
        eps = eps * 2.0 if up else eps / 2.0
        if (log_accept(eps) > np.log(0.8)) != up:
            break
    return eps


def _windows(n_adapt):
    """Iterations after which the metric is updated (Stan's doubling windows, shrunk for short warm-ups)."""
    init, base, term = WINDOWS
    if init + base + term > n_adapt:
        init, term = int(0.15 * n_adapt), int(0.1 * n_adapt)
        base = n_adapt - init - term
    ends, start, size = [], init, base
    while start + size < n_adapt - term:
        nxt = start + size
        if nxt + 2 * size > n_adapt - term:  # the last window runs to the final buffer
            break
        ends.append(nxt)
        start, size = nxt, 2 * size
    ends.append(n_adapt - term)
    return init, ends


def nuts(f, z0, n_adapt, n_draws, rng, cov=None, max_depth=10, target_accept=TARGET_ACCEPT, adapt_metric=True):
    """Sample ``exp(lp)`` with NUTS, adapting the step size (and a dense metric) during ``n_adapt`` iterations.

    Parameters
    ----------
    f : callable
        ``f(z) -> (lp, grad, aux)``: log density, its gradient and anything to keep with each
        draw (``lp = -inf`` outside the support).
    z0 : ndarray (d,)
        Starting point, where ``lp`` must be finite.
    n_adapt, n_draws : int
        Adaptation iterations (discarded) and kept draws.
    rng : numpy.random.Generator
    cov : ndarray (d, d), optional
        Initial inverse metric (an estimate of the posterior covariance); identity if None.
    max_depth : int
        Largest tree depth (``2**max_depth`` leapfrog steps per iteration).
    adapt_metric : bool
        Re-estimate the metric from the warm-up draws in Stan's windows; False keeps ``cov``
        (a good one, such as a Laplace covariance, beats an estimate from a few hundred
        correlated draws and needs only the step size adapted).

    Returns
    -------
    dict
        ``z`` (n_draws, d), ``aux`` (list of n_draws), ``n_grad`` (gradient evaluations,
        warm-up included), ``n_divergent`` (after warm-up), ``step``, ``mean_depth``, ``accept``.
    """
    d = z0.size
    minv = np.eye(d) if cov is None else np.array(cov, dtype=float)
    chol = np.linalg.cholesky(np.linalg.inv(minv))
    state = (z0, *f(z0))
    if not np.isfinite(state[1]):
        raise FloatingPointError(f"the starting point has log density {state[1]}")
    n_grad = 1
    eps = _initial_step(f, state, minv, chol, rng)
    init, ends = _windows(n_adapt) if n_adapt > 0 and adapt_metric else (n_adapt, [])
    mu, s_bar, x_bar, k = np.log(10 * eps), 0.0, 0.0, 0
    window = []
    draws, aux = np.empty((n_draws, d)), []
    n_div, depths, accepts = 0, [], []
    for it in range(n_adapt + n_draws):
        state, n, acc, div, depth = _transition(f, state, eps, minv, chol, rng, max_depth)
        n_grad += n
        if it < n_adapt:
            k += 1  # dual averaging of log(eps) (Hoffman & Gelman 2014, Stan's constants)
            s_bar += (target_accept - acc - s_bar) / (k + 10)
            x = mu - np.sqrt(k) / 0.05 * s_bar
            x_bar = k ** -0.75 * x + (1 - k ** -0.75) * x_bar
            eps = np.exp(x)
            if it >= init:
                window.append(state[0])
            if ends and it + 1 == ends[0]:
                ends.pop(0)
                w = np.array(window)
                m = len(w)
                sample = np.cov(w, rowvar=False).reshape(d, d)
                # shrink towards the diagonal, as Stan does towards a small identity, but in the posterior's scale
                minv = (m * sample + 5 * np.diag(np.diag(sample))) / (m + 5)
                chol = np.linalg.cholesky(np.linalg.inv(minv))
                window = []
                eps = _initial_step(f, state, minv, chol, rng)
                mu, s_bar, x_bar, k = np.log(10 * eps), 0.0, 0.0, 0
            if it + 1 == n_adapt:
                eps = np.exp(x_bar)
        else:
            draws[it - n_adapt] = state[0]
            aux.append(state[3])
            n_div += div
            depths.append(depth)
            accepts.append(acc)
    return {"z": draws, "aux": aux, "n_grad": n_grad, "n_divergent": n_div, "step": eps,
            "mean_depth": float(np.mean(depths)) if depths else np.nan,
            "accept": float(np.mean(accepts)) if accepts else np.nan}


def _split(x):
    """Chains ``(m, n)`` cut in halves: ``(2m, n // 2)``, so that a drift within a chain shows in R-hat."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]])


def _normal_ranks(x):
    """Ranks over all chains mapped to normal scores (Blom's offsets): robust to heavy tails."""
    r = rankdata(x, method="average").reshape(x.shape)
    return ndtri((r - 0.375) / (x.size + 0.25))


def _rhat(x):
    m, n = x.shape
    w = x.var(axis=1, ddof=1).mean()
    b = n * x.mean(axis=1).var(ddof=1)
    return float(np.sqrt(((n - 1) / n * w + b / n) / w)) if w > 0 else np.nan


def rhat(x) -> float:
    """Rank-normalised split R-hat of draws ``(chain, draw)``: the larger of the bulk and the folded (tail) one."""
    x = _split(np.asarray(x, dtype=float))
    return max(_rhat(_normal_ranks(x)), _rhat(_normal_ranks(np.abs(x - np.median(x)))))


def _ess(x):
    """ESS of ``(chain, draw)`` by Geyer's initial monotone sequence over the chains' pooled autocorrelation."""
    m, n = x.shape
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(centred, size, axis=1)
    acov = np.fft.irfft(spec * np.conj(spec), size, axis=1)[:, :n].real / n  # biased autocovariance per chain
    within = acov[:, 0].mean() * n / (n - 1)
    var_plus = within * (n - 1) / n + (x.mean(axis=1).var(ddof=1) if m > 1 else 0.0)
    if not var_plus > 0:
        return np.nan
    rho = 1.0 - (within - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    pairs = rho[: 2 * ((n - 1) // 2)].reshape(-1, 2).sum(axis=1)  # Gamma_k = rho_2k + rho_2k+1
    positive = np.nonzero(pairs <= 0)[0]
    pairs = pairs[: positive[0] if positive.size else pairs.size]
    pairs = np.minimum.accumulate(pairs)  # initial monotone sequence
    tau = -1.0 + 2.0 * pairs.sum()
    return float(m * n / max(tau, 1.0 / np.log10(m * n)))


def ess(x) -> float:
    """Bulk effective sample size of draws ``(chain, draw)``: ESS of the rank-normalised split chains."""
    return _ess(_normal_ranks(_split(np.asarray(x, dtype=float))))
