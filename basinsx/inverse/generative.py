"""Generative reducer of binary (facies) fields: a convolutional variational autoencoder.

The decoder maps a standard-normal latent vector ``z`` (e.g. 100 values) to the probability of
the channel facies in every cell, so a non-Gaussian binary field is estimated through ``z``
(Chen et al., 2025, Eq. 3). The loss is the cell-wise binary cross-entropy of the
reconstruction plus ``beta`` times the Kullback-Leibler divergence of the encoder's Gaussian
to N(0, I) (Kingma and Welling, 2014). The paper's octave-convolution adversarial autoencoder
replaces the KL term by a latent discriminator; both make the latent distribution Gaussian.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..groundwater import grid_values

__all__ = ["VAEReducer"]


class VAEReducer:
    """Convolutional VAE from a ``latent_dim`` Gaussian latent to binary fields ``(y, x)``.

    Parameters
    ----------
    latent_dim : int
    epochs, batch_size, lr : training settings (Adam).
    beta : float
        Weight of the KL term.
    seed : int
    progress : bool
    """

    def __init__(self, latent_dim=100, *, epochs=100, batch_size=64, lr=1e-3, beta=1.0, seed=0, progress=False):
        if latent_dim < 1:
            raise ValueError("latent_dim must be positive")
        self.latent_dim, self.epochs, self.batch_size, self.lr = int(latent_dim), epochs, batch_size, lr
        self.beta, self.seed, self.progress = beta, seed, progress
        self.model = None
        self.loss_history = []

    def fit(self, fields: xr.DataArray) -> VAEReducer:
        """Train on binary fields ``(sample, y, x)`` with values in {0, 1}."""
        import torch
        from tqdm.auto import trange

        from ._nets import VAE

        if not isinstance(fields, xr.DataArray) or fields.dims != ("sample", "y", "x"):
            raise ValueError("fields must be a DataArray with dims (sample, y, x)")
        M = np.asarray(fields.values, np.float32)
        if not np.all((M == 0) | (M == 1)):
            raise ValueError("fields must be binary (0 = background, 1 = channel)")
        self.shape = M.shape[1:]
        self.coords = {d: fields[d].values for d in ("y", "x") if d in fields.coords}
        torch.manual_seed(self.seed)
        self.model = VAE(self.shape, self.latent_dim)
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        X = torch.as_tensor(M)
        gen = torch.Generator().manual_seed(self.seed)
        self.model.train()
        for _ in trange(self.epochs, desc="training VAE", disable=not self.progress):
            perm = torch.randperm(len(X), generator=gen)
            total = 0.0
            for k in range(0, len(X), self.batch_size):
                b = X[perm[k : k + self.batch_size]]
                if len(b) < 2:
                    continue
                mu, logvar = self.model.encode(b)
                z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
                rec = torch.nn.functional.binary_cross_entropy_with_logits(self.model.logits(z), b, reduction="sum")
                kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())
                loss = (rec + self.beta * kl) / len(b)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            self.loss_history.append(total / len(X))
        self.model.eval()
        return self

    def _require_fit(self):
        if self.model is None:
            raise RuntimeError("the reducer is not fitted; call fit(fields) first")

    def _cells(self, fields) -> np.ndarray:
        """``fields (n, y, x)`` as floats on the training grid (a DataArray by its ``y``, ``x`` labels)."""
        f = grid_values(fields, self.coords.get("y"), self.coords.get("x"), "fields")
        if f.shape[-2:] != tuple(self.shape):
            raise ValueError(f"fields have cells {f.shape[-2:]}; the reducer was fitted on {tuple(self.shape)}")
        return f

    def encode(self, fields) -> np.ndarray:
        """Latent means ``(n, latent_dim)`` of fields ``(n, y, x)`` (a DataArray by its ``y``, ``x`` labels)."""
        import torch

        self._require_fit()
        with torch.no_grad():
            return self.model.encode(torch.as_tensor(self._cells(fields), dtype=torch.float32))[0].numpy().astype(float)

    def decode(self, z, binary=False) -> xr.DataArray:
        """Channel probabilities (or thresholded facies) ``(sample, y, x)`` of latents ``(n, latent_dim)``."""
        import torch

        self._require_fit()
        z = np.atleast_2d(np.asarray(z, np.float32))
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"z has {z.shape[-1]} values per sample, the latent has {self.latent_dim}")
        with torch.no_grad():
            p = self.model(torch.as_tensor(z)).numpy().astype(float)
        return xr.DataArray(p > 0.5 if binary else p, dims=("sample", "y", "x"), coords=self.coords)

    def torch_decoder(self):
        """Frozen torch decoder ``z (batch, latent_dim) -> probabilities (batch, y, x)``, e.g. a TNNA transform."""
        self._require_fit()
        for p in self.model.parameters():
            p.requires_grad_(False)
        return self.model

    def accuracy(self, fields) -> float:
        """Share of cells whose facies is reproduced by encode-decode (threshold 0.5)."""
        f = self._cells(fields)
        return float(np.mean(self.decode(self.encode(f), binary=True).values == (f > 0.5)))
