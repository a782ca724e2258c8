"""GR4J with the degree-day snow module in torch, batched over basins: the autograd reference.

The same discrete map as :func:`basinsx.models._grcore.gr_kernel` (variant 4) behind
:func:`basinsx.models.snow.snow_step`, written the way differentiable-parameter-learning codes
(dPL, dMG) write their models: a Python loop over days, every basin of the batch in one tensor,
the gradient by autograd through the loop. basinsx trains with the exact sensitivities instead
(:class:`basinsx.regional.ParameterLearner`); this version is there to check those gradients and
to measure what the exact ones save (``benchmarks/regional.py``).
"""

from __future__ import annotations

import torch

from ..models._grcore import INIT_LEVELS, NH, PERC, B, D
from ..models.snow import EPS_MELT, EPS_T


def _smooth_pos(a, eps):
    return 0.5 * (a + torch.sqrt(a * a + eps * eps))


def unit_hydrograph_ordinates(x4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordinates of UH1 ``(basin, NH)`` and UH2 ``(basin, 2 NH)`` for ``x4 (basin,)``."""
    c = x4[:, None]
    i1 = torch.arange(NH + 1, dtype=x4.dtype, device=x4.device)[None, :]
    i2 = torch.arange(2 * NH + 1, dtype=x4.dtype, device=x4.device)[None, :]
    ss1 = torch.where(i1 < c, (i1 / c).clamp(max=1.0) ** D, torch.ones_like(i1 / c))
    half = 0.5 * (i2 / c).clamp(max=1.0) ** D
    upper = 1.0 - 0.5 * (2.0 - i2 / c).clamp(min=0.0) ** D
    ss2 = torch.where(i2 <= c, half, torch.where(i2 < 2.0 * c, upper, torch.ones_like(half)))
    return ss1[:, 1:] - ss1[:, :-1], ss2[:, 1:] - ss2[:, :-1]


def gr4j_snow(theta: torch.Tensor, forcing: torch.Tensor, warmup: int = 0) -> torch.Tensor:
    """Daily flow ``(basin, T - warmup)`` of GR4J + snow for parameters ``theta (basin, 6)``.

    ``theta`` holds ``x1, x2, x3, x4, T_tr, f_dd``; ``forcing (basin, 3, T)`` holds ``prcp``,
    ``pet`` (already >= 0) and ``tmean``. Differentiable by autograd.
    """
    x1, x2, x3, x4, t_tr, fdd = theta.unbind(1)
    o1, o2 = unit_hydrograph_ordinates(x4)
    n = theta.shape[0]
    s, r = INIT_LEVELS[0] * x1, INIT_LEVELS[1] * x3
    swe = torch.zeros_like(x1)
    uh1 = torch.zeros((n, NH), dtype=theta.dtype, device=theta.device)
    uh2 = torch.zeros((n, 2 * NH), dtype=theta.dtype, device=theta.device)
    zero = torch.zeros((n, 1), dtype=theta.dtype, device=theta.device)
    out = []
    for k in range(forcing.shape[2]):
        p, e, t = forcing[:, 0, k], forcing[:, 1, k], forcing[:, 2, k]
        # snow: rain/snow split, smooth melt limited by the pack
        fs = 0.5 * (1.0 - torch.tanh(t - t_tr))
        avail = swe + p * fs
        pot = fdd * _smooth_pos(t - t_tr, EPS_T)
        diff = avail - pot
        melt = 0.5 * (avail + pot - torch.sqrt(diff * diff + EPS_MELT * EPS_MELT))
        swe = avail - melt
        p1 = p * (1.0 - fs) + melt
        # production store: evaporation where PET exceeds the water input, filling otherwise
        wet = p1 > e
        tws = torch.tanh(torch.clamp(torch.abs(p1 - e) / x1, max=13.0))
        sr = s / x1
        er = s * (2.0 - sr) * tws / (1.0 + (1.0 - sr) * tws)
        ps = x1 * (1.0 - sr * sr) * tws / (1.0 + sr * tws)
        s = torch.clamp(torch.where(wet, s + ps, s - er), min=0.0)
        pr = torch.where(wet, p1 - e - ps, torch.zeros_like(s))
        perc = s * (1.0 - (1.0 + (s / x1) ** 4 / PERC) ** -0.25)
        s = s - perc
        pr = pr + perc
        uh1 = torch.cat((uh1[:, 1:], zero), dim=1) + o1 * (pr * B)[:, None]
        uh2 = torch.cat((uh2[:, 1:], zero), dim=1) + o2 * (pr * (1.0 - B))[:, None]
        exch = x2 * (r / x3) ** 3.5
        r = torch.clamp(r + uh1[:, 0] + exch, min=0.0)
        qr = r * (1.0 - (1.0 + (r / x3) ** 4) ** -0.25)
        r = r - qr
        if k >= warmup:
            out.append(qr + torch.clamp(uh2[:, 0] + exch, min=0.0))
    return torch.stack(out, dim=1)
