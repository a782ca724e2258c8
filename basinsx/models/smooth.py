"""Smoothed threshold functions (value and derivatives) used by the ODE models."""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True)
def smooth_pos(a, eps):
    """Smooth max(a, 0) = (a + sqrt(a^2 + eps^2)) / 2 and its derivative."""
    r = math.sqrt(a * a + eps * eps)
    return 0.5 * (a + r), 0.5 * (1.0 + a / r)


@njit(cache=True)
def exp_flux(r, a):
    """Normalised exponential ``(1 - exp(-a r)) / (1 - exp(-a))`` of Schoups & Vrugt (2010).

    Equals ``r`` for ``a -> 0``, is concave for ``a > 0`` and convex for ``a < 0``; 1 at
    ``r = 1``. Returns the value and its derivatives with respect to ``r`` and ``a``.
    """
    if abs(a) < 1e-4:
        # second-order expansion in a: the closed form divides 0 by 0 at a = 0
        return r + 0.5 * a * r * (1.0 - r), 1.0 + 0.5 * a * (1.0 - 2.0 * r), 0.5 * r * (1.0 - r)
    den = -math.expm1(-a)
    ear = math.exp(-a * r)
    num = -math.expm1(-a * r)
    val = num / den
    return val, a * ear / den, (r * ear * den - num * math.exp(-a)) / (den * den)
