"""Differentiable pore-network flow: torch autograd Functions with a discrete adjoint.

Interior residual ``R_i(p, g) = sum_j g_ij (p_i - p_j) = 0`` with Dirichlet inlet/outlet.
For a loss ``J(p, g)``: ``L_II lambda = dJ/dp_I`` and
``dJ/dg_t = dJ/dg_t|explicit - (lambda_i - lambda_j)(p_i - p_j)`` (lambda = 0 on Dirichlet
pores). For ``J = K`` the energy identity ``Q dP = sum_t g_t dp_t^2`` gives the closed form
``dQ/dg_t = dp_t^2 / dP``: no second solve. The general adjoint reuses the forward
factorization, so a backward pass costs at most one more (triangular or AMG) solve.
"""

from __future__ import annotations

import numpy as np
import torch

from .network import checked
from .solver import check_dp_mu, factorize, length_and_area, system, viscosity


class _Permeability(torch.autograd.Function):
    """``K(g)``: forward sparse solve, backward closed form ``dK/dg_t = c dp_t^2 / dP``."""

    @staticmethod
    def forward(ctx, g, sys_, dp, scale, method):
        gn = g.detach().cpu().numpy().astype(np.float64)
        p = sys_.expand(factorize(sys_.matrix(gn), method)(sys_.rhs(gn, dp)), dp)
        q = sys_.flow_rate(gn, p)
        dpt = torch.as_tensor(sys_.throat_dp(p), dtype=g.dtype, device=g.device)
        ctx.save_for_backward(dpt)
        ctx.scale = scale / dp  # dK/dg = scale dp_t^2 / dP
        return g.new_tensor(scale * q)

    @staticmethod
    def backward(ctx, grad_k):
        (dpt,) = ctx.saved_tensors
        return grad_k * ctx.scale * dpt**2, None, None, None, None


class _Pressure(torch.autograd.Function):
    """Pore pressures ``p(g)`` with the general adjoint in backward."""

    @staticmethod
    def forward(ctx, g, sys_, dp, method):
        gn = g.detach().cpu().numpy().astype(np.float64)
        solve = factorize(sys_.matrix(gn), method)
        p = sys_.expand(solve(sys_.rhs(gn, dp)), dp)
        ctx.sys, ctx.solve = sys_, solve
        ctx.p = p
        return torch.as_tensor(p, dtype=g.dtype, device=g.device)

    @staticmethod
    def backward(ctx, grad_p):
        sys_ = ctx.sys
        gp = grad_p.detach().cpu().numpy().astype(np.float64)
        lam = np.zeros(sys_.npore)
        lam[sys_.interior] = ctx.solve(gp[sys_.interior])  # L_II is symmetric
        i, j = sys_.conns.T
        grad_g = -(lam[i] - lam[j]) * sys_.throat_dp(ctx.p)
        return torch.as_tensor(grad_g, dtype=grad_p.dtype, device=grad_p.device), None, None, None


def _check_g(net, g):
    if not isinstance(g, torch.Tensor):
        raise TypeError(f"g must be a torch tensor, got {type(g).__name__}")
    if g.shape != (net.sizes["throat"],):
        raise ValueError(f"g must have shape ({net.sizes['throat']},), got {tuple(g.shape)}")
    if torch.any(g <= 0) or not torch.all(torch.isfinite(g)):
        raise ValueError("conductances must be finite and positive")


def permeability_torch(net, g, axis: str = "x", dp: float = 1.0, mu: float | None = None, method: str = "auto",
                       flow_system=None):
    """Permeability as a differentiable function of the throat conductances.

    Parameters
    ----------
    net : xarray.Dataset
        Network.
    g : torch.Tensor (n_throats,)
        Positive conductances in m3 s-1 Pa-1 (any graph of torch ops may produce them).
    axis, dp, mu, method
        As in :func:`basinsx.porenet.permeability` (``mu`` defaults to the network's ``viscosity``
        attribute, else 1e-3).
    flow_system : FlowSystem, optional
        Precomputed :func:`basinsx.porenet.solver.system` (saves the graph analysis when
        the same network is solved many times, e.g. in training).

    Returns
    -------
    torch.Tensor
        Scalar K in m2; its gradient is the closed-form discrete adjoint.
    """
    net = checked(net)  # the sample's lengths in m
    _check_g(net, g)
    mu = viscosity(net, mu)
    check_dp_mu(dp, mu)  # before: a negative K for mu < 0, a ZeroDivisionError for dp = 0
    sys_ = system(net, axis) if flow_system is None else flow_system
    length, area = length_and_area(net, axis)
    return _Permeability.apply(g, sys_, float(dp), mu * length / (area * dp), method)


def pressure_torch(net, g, axis: str = "x", dp: float = 1.0, method: str = "auto", flow_system=None):
    """Pore pressures (n_pores,) as a differentiable function of ``g`` (general adjoint).

    Floating clusters have NaN pressure and receive no gradient; any loss on pressures and
    on throat flows ``g * (p_i - p_j)`` (see :func:`throat_flow_torch`) can be
    back-propagated.
    """
    _check_g(net, g)
    sys_ = system(net, axis) if flow_system is None else flow_system
    return _Pressure.apply(g, sys_, float(dp), method)


def throat_flow_torch(net, g, axis: str = "x", dp: float = 1.0, method: str = "auto", flow_system=None):
    """Throat flow rates ``g_t (p_i - p_j)`` from end 0 to end 1, differentiable in ``g``."""
    sys_ = system(net, axis) if flow_system is None else flow_system
    p = pressure_torch(net, g, axis, dp, method, sys_)
    c = torch.as_tensor(np.ascontiguousarray(sys_.conns))  # torch refuses negative strides
    return g * torch.nan_to_num(p[c[:, 0]] - p[c[:, 1]], nan=0.0)
