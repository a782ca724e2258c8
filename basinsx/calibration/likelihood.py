r"""Likelihoods of observed flow with the residual scale integrated out (plain arrays, layer 1).

Every likelihood standardises the residuals, :math:`r_t = (g(y_t) - g(q_t)) / w_t(q)`, and
assumes :math:`r_t \sim N(0, \sigma^2)` independent, with :math:`p(\sigma) \propto 1/\sigma`.
Integrating :math:`\sigma` out gives, over the :math:`n` observed days,

.. math:: \log p(y \mid \theta) = -\tfrac{n}{2} \log S(\theta) - \sum_t \log w_t(q) + \text{const},
   \qquad S = \sum_t r_t^2,

and :math:`\sigma^2 \mid \theta, y \sim \text{Inv-Gamma}(n/2, S/2)`. The log-likelihood
depends on :math:`\theta` only through the flow, so its gradient is ``J.T @ delta`` with
``delta = d log p / d q`` (zero on days without observations).

- ``"gaussian"``: :math:`g(x) = x`, :math:`w = 1`.
- ``"log"``: :math:`g(x) = \ln(x + c)`, :math:`c = \bar y / 100`.
- ``"boxcox"``: :math:`g(x) = ((x + c)^\lambda - 1) / \lambda` with :math:`\lambda = 0.2`,
  :math:`c = \bar y / 100`.
- ``"heteroscedastic"``: :math:`g(x) = x`, :math:`w_t = q_t + a`, :math:`a = \bar y / 10`:
  the error's standard deviation grows linearly with the simulated flow.
"""

from __future__ import annotations

import numpy as np

from .losses import LOG_OFFSET, Loss
from .optimize import FAILED_RUN_PENALTY

__all__ = ["LIKELIHOODS", "BoxCox", "Gaussian", "Heteroscedastic", "Likelihood", "get_likelihood"]

#: Offset of the heteroscedastic error model relative to the mean observed flow: sd = sigma (q + a).
HETERO_OFFSET = 0.1
#: Box-Cox exponent of ``likelihood="boxcox"`` (McInerney et al. 2017 recommend 0.2 among the fixed ones).
BOXCOX_LAMBDA = 0.2


class Likelihood:
    """A likelihood of observed flow with the residual scale integrated out; see the module docstring."""

    name = "gaussian"

    def transform(self, x, y):
        """``g(x)`` and ``g'(x)`` on the days of ``x`` (``y``: the observations, for data-based offsets)."""
        return x, np.ones_like(x)

    def weight(self, q, y):
        """``w(q)`` and ``w'(q)``."""
        return None, None

    def value_delta(self, q, y):
        """``(log p(y | theta) up to a constant, delta = d log p / d q, S)``; ``-inf`` outside the domain."""
        mask = np.isfinite(y)
        n = int(mask.sum())
        if n == 0:
            raise ValueError("no observed values (all NaN) in the likelihood period")
        qm, ym = q[mask], y[mask]
        gq, dg = self.transform(qm, ym)
        gy = self.transform(ym, ym)[0]
        w, dw = self.weight(qm, ym)
        delta = np.zeros(q.size)
        if not (np.all(np.isfinite(gq)) and (w is None or np.all(w > 0))):
            return -np.inf, delta, np.inf
        e = gy - gq
        r = e if w is None else e / w
        s = float(r @ r)
        # dr/dq = -(g' + r w') / w
        if w is None:
            delta[mask] = n / s * r * dg
            return -0.5 * n * np.log(s), delta, s
        delta[mask] = n / s * r * (dg + r * dw) / w - dw / w
        return -0.5 * n * np.log(s) - float(np.log(w).sum()), delta, s

    def fisher_weights(self, q, y, s):
        """Per-day weights ``phi`` of the expected information ``J.T @ (phi[:, None] * J)`` at ``sigma^2 = S/n``."""
        mask = np.isfinite(y)
        n = int(mask.sum())
        phi = np.zeros(q.size)
        _, dg = self.transform(q[mask], y[mask])
        w, dw = self.weight(q[mask], y[mask])
        if w is None:
            phi[mask] = dg**2 * n / s
        else:  # a mean and a scale that both depend on theta: N(q, sigma^2 w^2) has I = J'J/(s w)^2 + 2 (w'/w)^2 J'J
            phi[mask] = dg**2 * n / (s * w**2) + 2.0 * (dw / w) ** 2
        return phi

    def noise(self, q, sigma, y_mean, rng):
        """Observation-like flow: ``q`` (..., T) plus residual noise of scale ``sigma`` (...,); negative flow is 0."""
        eps = rng.standard_normal(q.shape) * sigma[..., None]
        return np.maximum(self._perturb(q, eps, y_mean), 0.0)

    def _perturb(self, q, eps, y_mean):
        return q + eps

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


class Gaussian(Likelihood):
    """Independent Gaussian errors of constant variance: ``log p = -(n/2) log SSE``."""


class BoxCox(Likelihood):
    r"""Gaussian errors of Box-Cox transformed flow, :math:`g(x) = ((x + c)^\lambda - 1)/\lambda` (``lam=0``: log)."""

    def __init__(self, lam=BOXCOX_LAMBDA, offset=LOG_OFFSET):
        self.lam, self.offset = float(lam), float(offset)
        self.name = "log" if self.lam == 0 else f"boxcox({self.lam:g})"

    def _c(self, y):
        return self.offset * max(float(np.nanmean(y)), 1e-6)

    def transform(self, x, y):
        with np.errstate(invalid="ignore", divide="ignore"):
            x = x + self._c(y)
            if self.lam == 0:
                return np.log(x), 1.0 / x
            return (x**self.lam - 1.0) / self.lam, x ** (self.lam - 1.0)

    def _perturb(self, q, eps, y_mean):
        c = self.offset * max(float(y_mean), 1e-6)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.lam == 0:
                return np.exp(np.log(q + c) + eps) - c
            z = ((q + c) ** self.lam - 1.0) / self.lam + eps
            # below the transform's range the flow is as low as it gets
            return np.where(self.lam * z + 1.0 > 0, np.maximum(self.lam * z + 1.0, 0.0) ** (1.0 / self.lam), 0.0) - c


class Heteroscedastic(Likelihood):
    r"""Gaussian errors with standard deviation :math:`\sigma (q_t + a)`, :math:`a` = ``offset`` times the mean flow."""

    name = "heteroscedastic"

    def __init__(self, offset=HETERO_OFFSET):
        self.offset = float(offset)

    def weight(self, q, y):
        return q + self.offset * max(float(np.nanmean(y)), 1e-6), np.ones_like(q)

    def _perturb(self, q, eps, y_mean):
        return q + eps * (q + self.offset * max(float(y_mean), 1e-6))


LIKELIHOODS = {"gaussian": Gaussian(), "log": BoxCox(0.0), "boxcox": BoxCox(), "heteroscedastic": Heteroscedastic()}


def get_likelihood(likelihood) -> Likelihood:
    """A likelihood from its name (:data:`LIKELIHOODS`, or ``"boxcox(0.5)"`` for another exponent) or an instance."""
    if isinstance(likelihood, Likelihood):
        return likelihood
    if isinstance(likelihood, str) and likelihood in LIKELIHOODS:
        return LIKELIHOODS[likelihood]
    if isinstance(likelihood, str) and likelihood.startswith("boxcox(") and likelihood.endswith(")"):
        try:
            return BoxCox(float(likelihood[7:-1]))
        except ValueError:
            pass
    raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {sorted(LIKELIHOODS)}, 'boxcox(<lambda>)' "
                     "or a Likelihood")


class PosteriorLoss(Loss):
    """``-log p(y | theta) / n`` as a calibration loss, so that ``calibrate_basin`` finds the likelihood's mode."""

    def __init__(self, likelihood):
        self.likelihood = get_likelihood(likelihood)
        self.name = f"-log likelihood ({self.likelihood.name}) per day"

    def _value(self, q, y):
        n = int(np.isfinite(y).sum())
        value, delta, _ = self.likelihood.value_delta(q, y)
        if not np.isfinite(value):  # flow outside the likelihood's domain: a penalty the line search backs off from
            return FAILED_RUN_PENALTY, np.zeros(q.size)
        return -value / n, -delta / n
