"""GNN-embedded pore network model (Zhao & Xiao 2025): throat conductances learned from permeability.

An edge-level message-passing network maps pore and throat features to a positive
correction of the classical conduit conductance, ``g = g_classical exp(c)``; the pore
network solve (:func:`basinsx.porenet.torch_solver.permeability_torch`) turns the
conductances into ``K``. Training needs only scalar permeability labels: the gradient
reaches the GNN through the discrete adjoint of the solver.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .conductance import conductance
from .network import checked
from .solver import length_and_area, system
from .torch_solver import permeability_torch

PORE_FEATURES = ("log_diameter", "log_volume", "coordination", "flow_face", "side_face")
#: The pore-half lengths enter as the mean and the absolute difference of their logs: symmetric in the
#: two ends of a throat, so the prediction does not depend on which end is stored first.
THROAT_FEATURES = ("log_diameter", "log_spacing", "log_pore_length_mean", "log_throat_length",
                   "log_pore_length_difference", "log_g_classical")


def graph_inputs(net, model: str = "cones_and_cylinders", mu: float = 1e-3, axis: str = "x") -> dict:
    """Dimensionless features and the classical conductance of a network (torch float64).

    Lengths are scaled by the voxel size (attribute ``voxel_size``, else the mean pore
    diameter), conductances by ``length^3 / mu``.

    Returns
    -------
    dict
        ``x`` (n_pores, 5) pore features :data:`PORE_FEATURES`, ``e`` (n_throats, 6) throat
        features :data:`THROAT_FEATURES`, ``conns`` (n_throats, 2), ``g0`` classical
        conductance, ``scale`` (conductance unit), ``system`` (the flow system along ``axis``).
    """
    net = checked(net)  # lengths in m, whatever units they declare
    g0 = conductance(net, model, mu).values  # first: names a missing diameter clearly
    ref = float(net.attrs.get("voxel_size", np.mean(net["pore_diameter"].values)))
    conns = np.ascontiguousarray(net["throat_conns"].values)  # torch refuses negative strides
    npore = net.sizes["pore"]
    scale = ref**3 / mu
    coord = np.bincount(conns.ravel(), minlength=npore)
    # inlet/outlet pores (held at fixed pressure, their conduit to the face is not modelled)
    # and pores on the closed sides are different boundary conditions: separate flags
    flow_face = np.maximum(net[f"pore_{axis}min"].values, net[f"pore_{axis}max"].values).astype(float)
    side_face = np.zeros(npore)
    for a in "xyz".replace(axis, ""):
        side_face = np.maximum(side_face, np.maximum(net[f"pore_{a}min"].values, net[f"pore_{a}max"].values))
    vol = net["pore_volume"].values if "pore_volume" in net else np.pi / 6 * net["pore_diameter"].values ** 3
    x = np.stack([np.log(net["pore_diameter"].values / ref), np.log(np.maximum(vol, 1e-3 * ref**3) / ref**3),
                  coord / 6.0, flow_face, side_face], axis=1)
    log_cl = np.log(np.maximum(net["conduit_length"].values / ref, 1e-3))
    e = np.stack([np.log(net["throat_diameter"].values / ref), np.log(net["throat_spacing"].values / ref),
                  (log_cl[:, 0] + log_cl[:, 2]) / 2, log_cl[:, 1], np.abs(log_cl[:, 0] - log_cl[:, 2]),
                  np.log(g0 / scale)], axis=1)
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    return {"x": t(x), "e": t(e), "conns": torch.as_tensor(conns, dtype=torch.int64), "g0": t(g0),
            "scale": scale, "system": system(net, axis), "length_area": length_and_area(net, axis), "mu": mu,
            "axis": axis}


def _inputs_for(net, inputs, mu, axis) -> dict:
    """``inputs`` (precomputed :func:`graph_inputs`) if they were made with ``mu`` and ``axis``, else computed."""
    if inputs is None:
        return graph_inputs(net, mu=mu, axis=axis)
    if (inputs.get("mu"), inputs.get("axis")) != (mu, axis):  # their g0 and flow system would win silently
        raise ValueError(f"inputs were computed with mu={inputs.get('mu')}, axis={inputs.get('axis')!r}; got "
                         f"mu={mu}, axis={axis!r}: compute them with graph_inputs(net, mu=..., axis=...)")
    return inputs


def _mlp(n_in, hidden, n_out):
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, n_out))


class ConductanceGNN(nn.Module):
    """Message passing over pores and throats predicting a positive conductance per throat.

    Parameters
    ----------
    hidden : int
        Width of the embeddings.
    layers : int
        Rounds of message passing.
    max_log_correction : float
        Bound of ``|log(g / g_classical)|`` (tanh-squashed) that keeps early training stable.

    Notes
    -----
    Messages are symmetric in the two pores of a throat (``h_i + h_j`` and
    ``|h_i - h_j|``, and the throat features :data:`THROAT_FEATURES` take the two pore-half
    lengths as the mean and the absolute difference of their logs), so the prediction does not
    depend on throat orientation. The last
    layer starts at zero: an untrained model reproduces the classical PNM.
    """

    def __init__(self, hidden: int = 32, layers: int = 2, max_log_correction: float = 4.0):
        super().__init__()
        npf, ntf = len(PORE_FEATURES), len(THROAT_FEATURES)
        self.encode = _mlp(npf, hidden, hidden)
        self.message = nn.ModuleList([_mlp(2 * hidden + ntf, hidden, hidden) for _ in range(layers)])
        self.update = nn.ModuleList([_mlp(2 * hidden, hidden, hidden) for _ in range(layers)])
        self.head = _mlp(2 * hidden + ntf, hidden, 1)
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.max_log_correction = max_log_correction
        self.double()

    def _pair(self, h, conns, e):
        hi, hj = h[conns[:, 0]], h[conns[:, 1]]
        return torch.cat([hi + hj, (hi - hj).abs(), e], dim=1)

    def node_states(self, x, e, conns):
        """Pore states ``(n_pores, hidden)`` after the message-passing layers."""
        h = self.encode(x)
        deg = torch.bincount(conns.reshape(-1), minlength=x.shape[0]).clamp(min=1).to(h.dtype)[:, None]
        for msg, upd in zip(self.message, self.update):
            m = msg(self._pair(h, conns, e))
            agg = torch.zeros_like(h).index_add_(0, conns[:, 0], m).index_add_(0, conns[:, 1], m) / deg
            h = h + upd(torch.cat([h, agg], dim=1))
        return h

    def forward(self, x, e, conns, g0):
        """Throat conductances (n_throats,) in the units of ``g0``."""
        h = self.node_states(x, e, conns)
        c = self.max_log_correction * torch.tanh(self.head(self._pair(h, conns, e))[:, 0] / self.max_log_correction)
        return g0 * torch.exp(c)

    def permeability(self, net, inputs=None, mu: float = 1e-3, axis: str = "x"):
        """Differentiable K (m2) of a network with the learned conductances."""
        inp = _inputs_for(net, inputs, mu, axis)
        g = self(inp["x"], inp["e"], inp["conns"], inp["g0"])
        return permeability_torch(net, g, axis=axis, mu=mu, flow_system=inp["system"])


def fit(model: ConductanceGNN, nets, k_true, *, epochs: int = 100, lr: float = 3e-3, mu: float = 1e-3,
        axis: str = "x", inputs=None, progress: bool = True, seed: int = 0) -> list[float]:
    """Train end to end on ``(log K_pred - log K_true)^2`` through the adjoint solver.

    Parameters
    ----------
    model : ConductanceGNN
    nets : list of xarray.Dataset
        Training networks.
    k_true : array
        Permeability labels in m2.
    epochs, lr : training schedule (Adam, one network per step, shuffled every epoch).
    inputs : list of dict, optional
        Precomputed :func:`graph_inputs` of ``nets``.
    progress : bool
        tqdm bar over epochs.

    Returns
    -------
    list of float
        Mean loss of each epoch.
    """
    from tqdm.auto import tqdm

    if len(nets) != len(k_true):
        raise ValueError(f"{len(nets)} networks but {len(k_true)} labels")
    k_true = np.asarray(k_true, dtype=float)
    if np.any(k_true <= 0):
        raise ValueError("permeability labels must be positive")
    inputs = [_inputs_for(n, None if inputs is None else inputs[i], mu, axis) for i, n in enumerate(nets)]
    logk = torch.as_tensor(np.log(k_true))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    for _ in tqdm(range(epochs), desc="ConductanceGNN", disable=not progress):
        total = 0.0
        for i in rng.permutation(len(nets)):
            opt.zero_grad()
            loss = (torch.log(model.permeability(nets[i], inputs[i], mu, axis)) - logk[i]) ** 2
            loss.backward()
            opt.step()
            total += loss.item()
        history.append(total / len(nets))
    return history
