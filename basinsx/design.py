"""Space-filling designs on plain arrays, shared by the calibration's multi-start and the inverse tools."""

from __future__ import annotations

import numpy as np

__all__ = ["latin_hypercube"]


def latin_hypercube(n: int, d: int, seed=0) -> np.ndarray:
    """``n`` points of a Latin hypercube in ``[0, 1]^d``: one point per stratum and axis.

    Each axis is cut into ``n`` equal strata, every stratum holds exactly one point
    (McKay et al., 1979) and strata are paired at random across axes. ``seed`` is
    passed to :func:`numpy.random.default_rng` (``None``: fresh entropy).
    """
    rng = np.random.default_rng(seed)
    u = (rng.random((n, d)) + np.arange(n)[:, None]) / n
    for j in range(d):
        u[:, j] = u[rng.permutation(n), j]
    return u
