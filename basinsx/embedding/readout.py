"""Ridge regression of attributes on basin embeddings, penalty chosen by leave-one-out error.

KGSSL's supervised head is trained on single windows; a ridge map fitted afterwards on the
basins' mean embeddings (one row per training basin) has far fewer effective parameters and
generalises better to basins never seen in training (see docs/embedding.md).
"""

from __future__ import annotations

import numpy as np

#: Penalties tried, relative to standardised embedding dimensions.
ALPHAS = np.logspace(-3, 4, 15)


def fit_ridge(x: np.ndarray, y: np.ndarray, alphas=ALPHAS) -> dict:
    """Ridge map ``y ~ x`` per output column, each with its own penalty and its own known rows.

    Parameters
    ----------
    x : ndarray ``(n, d)``
        Predictors (basin embeddings); rows with a NaN are not used.
    y : ndarray ``(n, m)``
        Targets; NaN entries are skipped per column.
    alphas : sequence of float
        Penalties on the standardised predictors; the one with the smallest leave-one-out
        mean squared error (closed form, through the SVD) is kept per column.

    Returns
    -------
    dict
        ``coef (d, m)``, ``intercept (m,)`` (apply as ``x @ coef + intercept``) and ``alpha (m,)``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x must be (n, d) and y (n, m) with the same n; got {x.shape} and {y.shape}")
    alphas = np.asarray(alphas, dtype=np.float64)
    rows = np.all(np.isfinite(x), axis=1)
    mu = x[rows].mean(axis=0) if rows.any() else np.zeros(x.shape[1])
    sd = x[rows].std(axis=0) if rows.any() else np.ones(x.shape[1])
    sd = np.where(sd > 0, sd, 1.0)
    xs = (x - mu) / sd
    d, m = x.shape[1], y.shape[1]
    coef, intercept, best = np.zeros((d, m)), np.full(m, np.nan), np.full(m, np.nan)
    for j in range(m):
        ok = rows & np.isfinite(y[:, j])
        n = int(ok.sum())
        if n < 3:  # leave-one-out needs at least two rows left; the column stays NaN
            continue
        xj, yj = xs[ok], y[ok, j]
        xm, ym = xj.mean(axis=0), yj.mean()
        u, s, vt = np.linalg.svd(xj - xm, full_matrices=False)
        uty = u.T @ (yj - ym)
        shrink = s[None, :] ** 2 / (s[None, :] ** 2 + alphas[:, None])  # (alpha, k)
        fitted = ym + (shrink * uty) @ u.T  # (alpha, n)
        leverage = 1.0 / n + shrink @ (u.T ** 2)  # diagonal of the hat matrix, intercept included
        loo = ((yj - fitted) / (1.0 - leverage)) ** 2
        k = int(np.argmin(loo.mean(axis=1)))
        beta = vt.T @ (s / (s ** 2 + alphas[k]) * uty)
        coef[:, j] = beta / sd
        intercept[j] = ym - xm @ beta - (mu / sd) @ beta
        best[j] = alphas[k]
    return {"coef": coef.astype(np.float32), "intercept": intercept.astype(np.float32), "alpha": best}
