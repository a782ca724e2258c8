"""The sums NSE and KGE are made of, on plain arrays: one numba kernel shared by metrics and losses.

:func:`basinsx.metrics.metrics` reports the efficiencies from these sums;
:mod:`basinsx.calibration.losses` turns the same sums into a loss and its gradient
``J.T @ dL/dq`` in the optimizer's inner loop, without masked copies or length-T temporaries.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["efficiency_rows", "efficiency_sums"]


@njit(cache=True)
def efficiency_sums(q, y, J, kge):
    """Sums over the days where ``y`` is not NaN, in two passes (means first, for accuracy).

    Parameters
    ----------
    q, y : ndarray (T,)
        Simulated and observed series (float64); a day counts where ``y`` is not NaN.
    J : ndarray (T, d)
        Sensitivities ``dq/dtheta``; ``(T, 0)`` when no gradient is wanted.
    kge : bool
        Which sums of ``J`` to form: those of the KGE gradient, or that of the SSE's.

    Returns
    -------
    tuple
        ``n, mu_q, mu_y, sqq, syy, sqy, see, g`` with ``sqq = sum dq^2``, ``syy = sum dy^2``,
        ``sqy = sum dq dy``, ``see = sum (y - q)^2`` (``dq = q - mu_q``, ``dy = y - mu_y``), and
        ``g`` of shape ``(3, d)``: ``J.T @ dy``, ``J.T @ dq``, ``J.T @ 1`` if ``kge`` (then ``see``
        is NaN: the KGE needs none), else ``(1, d)``: ``J.T @ (y - q)``. All NaN (``g`` zero)
        without an observed day.
    """
    d = J.shape[1]
    g = np.zeros((3 if kge else 1, d))
    n = 0
    sq = 0.0
    sy = 0.0
    for t in range(y.size):
        if not np.isnan(y[t]):
            n += 1
            sq += q[t]
            sy += y[t]
    if n == 0:
        return 0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, g
    mu_q = sq / n
    mu_y = sy / n
    sqq = 0.0
    syy = 0.0
    sqy = 0.0
    see = 0.0
    if kge:  # the optimizer's inner loop: no sum of squared errors, which the KGE does not need
        jy, jq, j1 = g[0], g[1], g[2]
        for t in range(y.size):
            if not np.isnan(y[t]):
                dq = q[t] - mu_q
                dy = y[t] - mu_y
                sqq += dq * dq
                syy += dy * dy
                sqy += dq * dy
                for j in range(d):
                    jy[j] += J[t, j] * dy
                    jq[j] += J[t, j] * dq
                    j1[j] += J[t, j]
        return n, mu_q, mu_y, sqq, syy, sqy, np.nan, g
    for t in range(y.size):
        if not np.isnan(y[t]):
            dq = q[t] - mu_q
            dy = y[t] - mu_y
            e = y[t] - q[t]
            sqq += dq * dq
            syy += dy * dy
            sqy += dq * dy
            see += e * e
            for j in range(d):
                g[0, j] += J[t, j] * e
    return n, mu_q, mu_y, sqq, syy, sqy, see, g


@njit(cache=True)
def efficiency_rows(Q, Y):
    """:func:`efficiency_sums` of each row of ``Q`` and ``Y`` (2-D): ``(rows, 7)`` of ``n, mu_q, ..., see``."""
    out = np.empty((Q.shape[0], 7))
    none = np.empty((Q.shape[1], 0))
    for i in range(Q.shape[0]):
        n, mu_q, mu_y, sqq, syy, sqy, see, _ = efficiency_sums(Q[i], Y[i], none, False)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4], out[i, 5], out[i, 6] = n, mu_q, mu_y, sqq, syy, sqy, see
    return out
