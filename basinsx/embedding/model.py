"""torch modules and losses of KGSSL (Ghosh et al. 2022) and the forward LSTM.

Imported only by the functions that need torch: ``import basinsx`` never loads this module.
Tensors are ``(batch, time, channel)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _rnn(cell: str):
    if cell == "gru":
        return nn.GRU
    if cell == "lstm":
        return nn.LSTM
    raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")


class KGSSLNet(nn.Module):
    """Bidirectional recurrent encoder with attention pooling, response decoder, attribute head.

    Parameters
    ----------
    n_channels : int
        Encoder input channels (drivers, response, observed flag, season).
    n_drivers : int
        Decoder input channels (drivers and season; the response is what it reconstructs).
    dim : int
        Embedding size.
    hidden : int
        Recurrent state size (per direction in the encoder).
    n_attributes : int
        Size of the supervised head (0: no head).
    head_hidden : int
        Hidden units of the head (0: a linear head).
    cell : {"gru", "lstm"}
    dropout : float
        Dropout on the pooled encoder state.
    """

    def __init__(self, n_channels: int, n_drivers: int, dim: int, hidden: int, n_attributes: int,
                 cell: str = "gru", dropout: float = 0.1, head_hidden: int = 0):
        super().__init__()
        rnn = _rnn(cell)
        self.encoder = rnn(n_channels, hidden, batch_first=True, bidirectional=True)
        self.attention = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(2 * hidden, dim)
        self.decoder = rnn(n_drivers + dim, hidden, batch_first=True)
        self.reconstruct = nn.Linear(hidden, 1)
        if not n_attributes:
            self.head = None
        elif head_hidden:
            self.head = nn.Sequential(nn.Linear(dim, head_hidden), nn.ReLU(), nn.Linear(head_hidden, n_attributes))
        else:
            self.head = nn.Linear(dim, n_attributes)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding ``(batch, dim)`` of windows ``x (batch, time, n_channels)``."""
        h, _ = self.encoder(x)
        weights = torch.softmax(self.attention(h), dim=1)  # (batch, time, 1)
        return self.project(self.dropout((weights * h).sum(dim=1)))

    def decode(self, z: torch.Tensor, drivers: torch.Tensor) -> torch.Tensor:
        """Reconstructed response ``(batch, time)`` from embedding and the window's drivers."""
        zt = z[:, None, :].expand(-1, drivers.shape[1], -1)
        h, _ = self.decoder(torch.cat([drivers, zt], dim=-1))
        return self.reconstruct(h)[..., 0]

    def predict_attributes(self, z: torch.Tensor) -> torch.Tensor:
        """z-scored attributes ``(batch, n_attributes)`` regressed from the embedding."""
        return self.head(z)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``mask`` is True (0 when none is; NaN targets allowed there)."""
    err = (pred - torch.where(mask, target, pred.detach())) ** 2  # NaN never enters the graph
    return err.sum() / mask.sum().clamp(min=1).to(pred.dtype)


def ntxent_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised NT-Xent: windows of the same basin are positives, all others negatives.

    Khosla et al. (2020) form on cosine similarities; anchors without a positive are skipped.
    """
    e = F.normalize(z, dim=1)
    sim = e @ e.T / temperature
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    positive = (labels[:, None] == labels[None, :]) & ~eye
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    n_pos = positive.sum(dim=1)
    has = n_pos > 0
    if not has.any():
        return z.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~positive, 0.0).sum(dim=1)[has] / n_pos[has])
    return per_anchor.mean()


def triplet_loss(z: torch.Tensor, labels: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Batch-hard triplet loss on unit-normalised embeddings (Hermans et al. 2017).

    For every anchor: farthest window of its own basin against the nearest of another basin,
    ``max(0, d_ap - d_an + margin)``.
    """
    e = F.normalize(z, dim=1)
    d = torch.cdist(e, e)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    pos = same & ~eye
    valid = pos.any(dim=1) & (~same).any(dim=1)
    if not valid.any():
        return z.sum() * 0.0
    d_ap = d.masked_fill(~pos, float("-inf")).max(dim=1).values
    d_an = d.masked_fill(same, float("inf")).min(dim=1).values
    return F.relu(d_ap - d_an + margin)[valid].mean()


class ForwardNet(nn.Module):
    """LSTM rainfall-runoff model with a static vector appended to every time step.

    ``forward(x, static)``: ``x (batch, time, n_dynamic)``, ``static (batch, n_static)`` ->
    flow ``(batch, time)`` in normalised units.
    """

    def __init__(self, n_dynamic: int, n_static: int, hidden: int = 64, dropout: float = 0.2):
        super().__init__()
        self.n_static = n_static
        self.lstm = nn.LSTM(n_dynamic + n_static, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)
        # Gers et al. (2000): a positive forget-gate bias helps long memory (snow, groundwater).
        with torch.no_grad():
            self.lstm.bias_hh_l0[hidden:2 * hidden].fill_(3.0)

    def forward(self, x: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_static:
            x = torch.cat([x, static[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
        h, _ = self.lstm(x)
        return self.out(self.dropout(h))[..., 0]
