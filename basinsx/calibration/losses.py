"""Calibration losses on plain arrays: each returns the value and ``delta = dL/dq``.

Kernels of layer 1: ``q`` (simulated) and ``y`` (observed) are 1-D float arrays on the
same days; days where ``y`` is NaN are masked (they add nothing to the value and get
``delta = 0``), never zero-filled. The gradient of a loss with respect to the
parameters is ``J.T @ delta`` with ``J = dq/dtheta`` from the model.

Losses whose value is a monotone function of a sum of squares also expose
``residuals(q, y, J) -> (r, Jr)`` with ``Jr = dr/dtheta``, for Gauss-Newton and
Levenberg-Marquardt. Every loss is minimised: efficiencies enter as ``1 - E``.

``value_grad(q, J, y) -> (value, J.T @ delta)`` is what the optimizers call once per
model run; SSE, NSE and the KGEs form it from the sums of :func:`basinsx.efficiency.efficiency_sums`
(the kernel :mod:`basinsx.metrics` reports the efficiencies from), with no masked copies or
length-T temporaries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from numba import njit

from ..efficiency import efficiency_sums

__all__ = ["LOSSES", "Loss", "Weighted", "get_loss", "kge_terms"]

# Scale of the log offset relative to the mean observed flow (Pushpalatha et al. 2012).
LOG_OFFSET = 0.01
# Huber tuning constant (95 % efficiency under Gaussian errors) and MAD-to-sigma factor.
HUBER_C = 1.345
MAD_SIGMA = 0.6745


def _observed(y):
    mask = np.isfinite(y)
    if not mask.any():
        raise ValueError("no observed values (all NaN) in the loss period")
    return mask


def _log_offset(y, mask):
    return LOG_OFFSET * max(float(np.mean(y[mask])), 1e-6)


def kge_terms(q, y, mask=None):
    """Pearson r, variability ratio alpha, bias ratio beta and their derivatives in q.

    Returns ``(r, alpha, beta, dr, dalpha, dbeta)`` where the derivatives are arrays
    over the observed days only (``mask``). Sums of squares are used throughout, so
    the choice of ``n`` or ``n - 1`` in the standard deviations cancels.
    """
    if mask is None:
        mask = _observed(y)
    n, mu_q, mu_y, sqq, syy, sqy, _, _ = efficiency_sums(q, np.where(mask, y, np.nan), np.empty((q.size, 0)), False)
    dq, dy = q[mask] - mu_q, y[mask] - mu_y
    if sqq == 0.0:  # constant simulation (e.g. all water lost): r = 0 as airGR's ErrorCrit_KGE, alpha = 0
        zero = np.zeros(n)
        return 0.0, 0.0, mu_q / mu_y, zero, zero, np.full(n, 1.0 / (n * mu_y))
    root = np.sqrt(sqq * syy)
    r = sqy / root
    alpha = np.sqrt(sqq / syy)
    beta = mu_q / mu_y
    # d r / d q_t (both terms; the second is the one dropped by some public codes).
    dr = dy / root - r * dq / sqq
    dalpha = dq / root
    dbeta = np.full(n, 1.0 / (n * mu_y))
    return r, alpha, beta, dr, dalpha, dbeta


@njit(cache=True)
def _sse_value_grad(q, J, y, normalise):
    """``sum e^2`` (divided by ``sum (y - mean y)^2`` if ``normalise``) and ``J.T @ delta``."""
    n, _, _, _, syy, _, see, g = efficiency_sums(q, y, J, False)
    if n == 0:
        return np.nan, np.zeros(J.shape[1])
    s = syy if normalise else 1.0
    return see / s, -2.0 * g[0] / s


@njit(cache=True)
def _kge_value_grad(q, J, y, modified):
    """``ED`` of KGE 2009 (``gamma = alpha / beta`` in place of ``alpha`` if ``modified``) and ``J.T @ delta``.

    ``delta_t = A (y_t - mu_y) + B (q_t - mu_q) + C`` on observed days (see :func:`kge_terms`),
    so the gradient needs only the three sums ``J.T @ dy``, ``J.T @ dq`` and ``J.T @ 1``.
    """
    d = J.shape[1]
    n, mu_q, mu_y, sqq, syy, sqy, _, g = efficiency_sums(q, y, J, True)
    if n == 0:
        return np.nan, np.zeros(d)
    jy, jq, j1 = g[0], g[1], g[2]
    if sqq == 0.0:  # constant simulation: r = 0 (airGR's convention), alpha and gamma 0; only beta moves
        rb = mu_q / mu_y - 1.0
        ed = np.sqrt(2.0 + rb * rb)
        return ed, rb / (n * mu_y * ed) * j1
    root = np.sqrt(sqq * syy)
    r = sqy / root
    alpha = np.sqrt(sqq / syy)
    beta = mu_q / mu_y
    dbeta = 1.0 / (n * mu_y)
    if modified:  # gamma = alpha / beta: d gamma = d alpha / beta - alpha d beta / beta^2
        ra, ca, cb = alpha / beta - 1.0, 1.0 / beta, -alpha * dbeta / beta**2
    else:
        ra, ca, cb = alpha - 1.0, 1.0, 0.0
    rr, rb = r - 1.0, beta - 1.0
    ed = np.sqrt(rr * rr + ra * ra + rb * rb)
    if ed == 0.0:
        return 0.0, np.zeros(d)
    # dr = dy / root - r dq / sqq, d alpha = dq / root, d beta = dbeta (constant).
    a = rr / root
    b = -rr * r / sqq + ra * ca / root
    c = ra * cb + rb * dbeta
    return ed, (a * jy + b * jq + c * j1) / ed


def _checked(value_grad, y):
    """A fused kernel's result; a NaN value from a record without observations raises."""
    if np.isnan(value_grad[0]):
        _observed(y)
    return value_grad


def _scatter(mask, values):
    out = np.zeros(mask.size)
    out[mask] = values
    return out


def _same_length(q, y) -> None:
    if np.shape(q)[-1] != np.shape(y)[-1]:
        raise ValueError(f"{np.shape(q)[-1]} simulated days against {np.shape(y)[-1]} observed: a loss compares "
                         "the two day by day")


class Loss(ABC):
    """A named loss. Call it as ``value, delta = loss(q, y)``.

    Subclasses implement ``__call__``; residual losses also ``residuals``.
    """

    name = ""
    residual = False
    #: the loss divides by the spread of the observations, which a constant record leaves undefined
    needs_spread = False

    def check(self, y) -> None:
        """Raise ``ValueError`` where ``y`` cannot define the loss: no observed value, or a constant record for a
        loss scaled by the observed spread (NSE, KGE, Huber, FDC: their value would be round-off over zero)."""
        mask = _observed(y)
        if self.needs_spread and np.ptp(y[mask]) == 0:
            raise ValueError(f"the observed flow is constant ({y[mask][0]:g} on all {int(mask.sum())} observed days "
                             f"of the loss period): the {self.name} loss divides by its spread; use loss='sse' or "
                             "'sae'")

    def __call__(self, q, y):
        """Return ``(value, delta)`` with ``delta = dL/dq`` (zero on unobserved days)."""
        _same_length(q, y)
        return self._value(q, y)

    def value_grad(self, q, J, y):
        """``(value, J.T @ delta)``: the loss and its gradient with respect to the parameters."""
        _same_length(q, y)
        return self._value_grad(q, J, y)

    @abstractmethod
    def _value(self, q, y):
        """:meth:`__call__` of flows of the same length."""

    def _value_grad(self, q, J, y):
        """:meth:`value_grad` of flows of the same length (the fused kernels read ``q`` by ``y``'s index)."""
        value, delta = self._value(q, y)
        return value, J.T @ delta

    def residuals(self, q, y, J):
        raise ValueError(f"loss {self.name!r} has no residual form; use optimizer='lbfgsb'")

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


class SSE(Loss):
    r"""Sum of squared errors :math:`\sum_t (y_t - q_t)^2`."""

    name, residual = "sse", True

    def _value(self, q, y):
        mask = _observed(y)
        e = y[mask] - q[mask]
        return float(e @ e), _scatter(mask, -2.0 * e)

    def _value_grad(self, q, J, y):
        return _checked(_sse_value_grad(q, J, y, False), y)

    def residuals(self, q, y, J):
        mask = _observed(y)
        return q[mask] - y[mask], J[mask]


class SAE(Loss):
    r"""Sum of absolute errors :math:`\sum_t |y_t - q_t|`."""

    name = "sae"

    def _value(self, q, y):
        mask = _observed(y)
        e = y[mask] - q[mask]
        return float(np.abs(e).sum()), _scatter(mask, -np.sign(e))


class NSE(Loss):
    r"""One minus the Nash-Sutcliffe efficiency, :math:`\sum e^2 / \sum (y - \bar y)^2`."""

    name, residual, needs_spread = "nse", True, True

    def _value(self, q, y):
        mask = _observed(y)
        e = y[mask] - q[mask]
        d = y[mask] - y[mask].mean()
        s = d @ d
        return float(e @ e / s), _scatter(mask, -2.0 * e / s)

    def _value_grad(self, q, J, y):
        return _checked(_sse_value_grad(q, J, y, True), y)

    def residuals(self, q, y, J):
        mask = _observed(y)
        d = y[mask] - y[mask].mean()
        scale = 1.0 / np.sqrt(d @ d)
        return (q[mask] - y[mask]) * scale, J[mask] * scale


class LogNSE(Loss):
    r"""One minus the NSE of :math:`\ln(q + \epsilon)`, :math:`\epsilon = \bar y / 100`."""

    name, residual, needs_spread = "lognse", True, True

    def _parts(self, q, y):
        mask = _observed(y)
        eps = _log_offset(y, mask)
        lq, ly = np.log(q[mask] + eps), np.log(y[mask] + eps)
        d = ly - ly.mean()
        return mask, q[mask] + eps, lq, ly, d @ d

    def _value(self, q, y):
        mask, qe, lq, ly, s = self._parts(q, y)
        e = ly - lq
        return float(e @ e / s), _scatter(mask, -2.0 * e / (qe * s))

    def residuals(self, q, y, J):
        mask, qe, lq, ly, s = self._parts(q, y)
        scale = 1.0 / np.sqrt(s)
        return (lq - ly) * scale, J[mask] * (scale / qe)[:, None]


class KGE(Loss):
    r"""One minus the Kling-Gupta efficiency (Gupta et al. 2009).

    :math:`ED = \sqrt{(r-1)^2 + (\alpha-1)^2 + (\beta-1)^2}` with :math:`\alpha = \sigma_q/\sigma_y`.
    The residual form is ``(r-1, alpha-1, beta-1)`` (``ED`` is its norm).
    """

    name, residual, needs_spread = "kge", True, True
    modified = False

    def _terms(self, q, y):
        mask = _observed(y)
        r, a, b, dr, da, db = kge_terms(q, y, mask)
        return mask, np.array([r - 1.0, a - 1.0, b - 1.0]), np.stack([dr, da, db])

    def _value(self, q, y):
        mask, res, d = self._terms(q, y)
        ed = float(np.sqrt(res @ res))
        delta = res @ d / ed if ed > 0 else np.zeros(d.shape[1])
        return ed, _scatter(mask, delta)

    def _value_grad(self, q, J, y):
        return _checked(_kge_value_grad(q, J, y, self.modified), y)

    def residuals(self, q, y, J):
        mask, res, d = self._terms(q, y)
        return res, d @ J[mask]


class KGE2012(KGE):
    r"""One minus the modified KGE (Kling et al. 2012): :math:`\gamma = CV_q / CV_y` replaces :math:`\alpha`."""

    name = "kge2012"
    modified = True

    def _terms(self, q, y):
        mask = _observed(y)
        r, a, b, dr, da, db = kge_terms(q, y, mask)
        gamma = a / b if a else 0.0  # a constant simulation has CV 0 (0/0 for zero flow)
        dgamma = da / b - a * db / b**2 if a else da
        return mask, np.array([r - 1.0, gamma - 1.0, b - 1.0]), np.stack([dr, dgamma, db])


class Huber(Loss):
    r"""Huber loss :math:`\sum_t \rho(e_t / S)` with :math:`S = \mathrm{MAD}(y)/0.6745`, c = 1.345.

    :math:`\rho(u) = u^2/2` for :math:`|u| \le c`, else :math:`c|u| - c^2/2`: quadratic for
    ordinary errors, linear for outliers (extreme events).
    """

    name, needs_spread = "huber", True

    def _value(self, q, y):
        mask = _observed(y)
        ym = y[mask]
        scale = np.median(np.abs(ym - np.median(ym))) / MAD_SIGMA
        if scale <= 0:
            scale = max(float(np.std(ym)), 1e-6)
        u = (ym - q[mask]) / scale
        a = np.abs(u)
        rho = np.where(a <= HUBER_C, 0.5 * u * u, HUBER_C * a - 0.5 * HUBER_C**2)
        psi = np.clip(u, -HUBER_C, HUBER_C)
        return float(rho.sum()), _scatter(mask, -psi / scale)


class FDC(Loss):
    r"""Flow-duration-curve loss: one minus the NSE of the sorted flows (all quantiles, L2).

    Both series are sorted over the observed days; the derivative is scattered back to
    the days through the sort permutation of ``q``.
    """

    name, residual, needs_spread = "fdc", True, True
    log = False

    def _parts(self, q, y):
        mask = _observed(y)
        days = np.flatnonzero(mask)
        order = np.argsort(q[mask], kind="stable")
        qs, ys = q[mask][order], np.sort(y[mask])
        if self.log:
            eps = _log_offset(y, mask)
            fq, fy, dfq = np.log(qs + eps), np.log(ys + eps), 1.0 / (qs + eps)
        else:
            fq, fy, dfq = qs, ys, np.ones_like(qs)
        d = fy - fy.mean()
        return days[order], fq - fy, dfq, d @ d, mask.size

    def _value(self, q, y):
        days, e, dfq, s, size = self._parts(q, y)
        delta = np.zeros(size)
        delta[days] = 2.0 * e * dfq / s
        return float(e @ e / s), delta

    def residuals(self, q, y, J):
        days, e, dfq, s, _ = self._parts(q, y)
        scale = 1.0 / np.sqrt(s)
        return e * scale, J[days] * (dfq * scale)[:, None]


class LogFDC(FDC):
    r"""Log flow-duration-curve loss: as :class:`FDC` on :math:`\ln(q + \epsilon)` (low flows weigh more)."""

    name = "fdc_log"
    log = True


class Recession(Loss):
    r"""Recession-curve loss: mean squared error of the daily log-recession rate.

    On the observed recession days :math:`R = \{t : y_t < y_{t-1}\}` (both days observed)
    the loss is :math:`\frac{1}{|R|}\sum_{t\in R} (\Delta_t \ln(q+\epsilon) - \Delta_t \ln(y+\epsilon))^2`,
    which compares the recession constants :math:`-d\ln Q/dt` of model and data. The
    set :math:`R` comes from the observations, so it does not move with the parameters.
    """

    name, residual = "recession", True

    def _parts(self, q, y):
        mask = _observed(y)
        eps = _log_offset(y, mask)
        with np.errstate(invalid="ignore"):
            t = np.flatnonzero(mask[1:] & mask[:-1] & (y[1:] < y[:-1])) + 1
        if t.size == 0:
            raise ValueError("no observed recession days in the loss period")
        lq, ly = np.log(q + eps), np.log(np.where(mask, y, 1.0) + eps)
        e = (lq[t] - lq[t - 1]) - (ly[t] - ly[t - 1])
        return t, e, 1.0 / (q + eps), t.size

    def _value(self, q, y):
        t, e, dl, n = self._parts(q, y)
        w = 2.0 * e / n
        delta = np.zeros(q.size)
        np.add.at(delta, t, w * dl[t])
        np.add.at(delta, t - 1, -w * dl[t - 1])
        return float(e @ e / n), delta

    def residuals(self, q, y, J):
        t, e, dl, n = self._parts(q, y)
        scale = 1.0 / np.sqrt(n)
        return e * scale, (J[t] * dl[t, None] - J[t - 1] * dl[t - 1, None]) * scale


class Weighted(Loss):
    """Weighted sum of losses, e.g. ``Weighted({"kge": 0.7, "fdc_log": 0.3})``."""

    def __init__(self, weights):
        if not weights:
            raise ValueError("a weighted loss needs at least one term")
        weights = {k: float(w) for k, w in dict(weights).items()}
        # a negative weight would maximise its term (kge: -1 rewards the worst fit)
        bad = {k: w for k, w in weights.items() if not (np.isfinite(w) and w > 0)}
        if bad:
            raise ValueError(f"loss weights must be positive and finite, got {bad}")
        self.terms = [(get_loss(k), w) for k, w in weights.items()]
        self.name = "+".join(f"{w:g}*{loss.name}" for loss, w in self.terms)

    def check(self, y) -> None:
        for loss, _ in self.terms:
            loss.check(y)

    def _value(self, q, y):
        value, delta = 0.0, np.zeros(q.size)
        for loss, w in self.terms:
            v, d = loss(q, y)
            value += w * v
            delta += w * d
        return value, delta


LOSSES = {cls.name: cls() for cls in (SSE, SAE, NSE, LogNSE, KGE, KGE2012, Huber, FDC, LogFDC, Recession)}


def get_loss(loss) -> Loss:
    """Resolve a loss name, a ``{name: weight}`` dict or a :class:`Loss` instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, dict):
        return Weighted(loss)
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]
    raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)} or a dict of weights")
