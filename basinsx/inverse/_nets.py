"""torch networks of the surrogates and the VAE reducer.

Kept at module level so that fitted surrogates and reducers pickle; imported only by the
methods that need torch, so that ``import basinsx.inverse`` stays light.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ToImage(nn.Module):
    """Fully connected layer from a parameter vector to a ``side x side`` one-channel image."""

    def __init__(self, n_in, side=16):
        super().__init__()
        self.fc, self.side = nn.Linear(n_in, side * side), side

    def forward(self, x):
        return torch.relu(self.fc(x)).view(-1, 1, self.side, self.side)


def _head(in_shape):
    return ToImage(in_shape[0]) if len(in_shape) == 1 else nn.Unflatten(1, (1, *in_shape))


def mlp(n_in, n_out, hidden_layers, width):
    layers, d = [], n_in
    for _ in range(hidden_layers):
        layers += [nn.Linear(d, width), nn.SiLU()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, n_out), nn.Sigmoid())


def lenet(in_shape, n_out):
    conv = nn.Sequential(
        _head(in_shape),
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )
    with torch.no_grad():
        n_flat = conv(torch.zeros(1, int(np.prod(in_shape)))).shape[1]
    return nn.Sequential(
        conv, nn.Linear(n_flat, 1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, n_out), nn.Sigmoid()
    )


class Block(nn.Module):
    """Basic residual unit; a strided 1x1 projection replaces the identity when down-sampling."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.skip = (
            nn.Identity() if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def resnet(in_shape, n_out, base=16):
    c = [base, 2 * base, 4 * base, 8 * base]
    return nn.Sequential(
        _head(in_shape),
        nn.Conv2d(1, c[0], 3, 1, 1, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU(),
        Block(c[0], c[0], 1), Block(c[0], c[0], 1),  # stage 1: no down-sampling
        Block(c[0], c[1], 2), Block(c[1], c[1], 1),  # stages 2-4: down-sample, then keep
        Block(c[1], c[2], 2), Block(c[2], c[2], 1),
        Block(c[2], c[3], 2), Block(c[3], c[3], 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c[3], n_out), nn.Sigmoid(),
    )


class KernelNet(nn.Module):
    """Differentiable copy of a fitted RBF kernel ridge: ``exp(-gamma |x - X|^2) @ W``."""

    def __init__(self, X, W, gamma):
        super().__init__()
        self.register_buffer("X", torch.as_tensor(X, dtype=torch.float32))
        self.register_buffer("W", torch.as_tensor(W, dtype=torch.float32))
        self.gamma = float(gamma)

    def forward(self, x):
        return torch.exp(-self.gamma * torch.cdist(x, self.X) ** 2) @ self.W


class Scaled(nn.Module):
    """Raw inputs in, scaled outputs out: wraps a network with the input min-max scaling."""

    def __init__(self, net, lo, span):
        super().__init__()
        self.net = net
        self.register_buffer("lo", torch.as_tensor(lo, dtype=torch.float32))
        self.register_buffer("span", torch.as_tensor(span, dtype=torch.float32))

    def forward(self, x):
        return self.net((x.reshape(x.shape[0], -1) - self.lo) / self.span)


class VAE(nn.Module):
    """Convolutional VAE of ``(y, x)`` fields with a ``latent_dim`` Gaussian latent."""

    def __init__(self, shape, latent_dim, base=16):
        super().__init__()
        self.ny, self.nx = shape
        self.gy, self.gx = -(-self.ny // 8), -(-self.nx // 8)
        self.enc = nn.Sequential(
            nn.Conv2d(1, base, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(base, 2 * base, 4, 2, 1), nn.BatchNorm2d(2 * base), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * base, 4 * base, 4, 2, 1), nn.BatchNorm2d(4 * base), nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.enc(torch.zeros(1, 1, 8 * self.gy, 8 * self.gx)).shape[1]
        self.mu, self.logvar = nn.Linear(n_flat, latent_dim), nn.Linear(n_flat, latent_dim)
        self.fc = nn.Linear(latent_dim, 4 * base * self.gy * self.gx)
        self.dec = nn.Sequential(
            nn.ReLU(), nn.Unflatten(1, (4 * base, self.gy, self.gx)),
            nn.ConvTranspose2d(4 * base, 2 * base, 4, 2, 1), nn.BatchNorm2d(2 * base), nn.ReLU(),
            nn.ConvTranspose2d(2 * base, base, 4, 2, 1), nn.BatchNorm2d(base), nn.ReLU(),
            nn.ConvTranspose2d(base, 1, 4, 2, 1),
        )

    def encode(self, m):
        # pad to a multiple of 8 cells so that three stride-2 layers divide evenly
        h = self.enc(nn.functional.pad(m[:, None], (0, 8 * self.gx - self.nx, 0, 8 * self.gy - self.ny)))
        return self.mu(h), self.logvar(h)

    def logits(self, z):
        return self.dec(self.fc(z))[:, 0, : self.ny, : self.nx]

    def forward(self, z):
        return torch.sigmoid(self.logits(z))
