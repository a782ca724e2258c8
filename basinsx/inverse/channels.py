"""Object-based generator of binary channelised (two-facies) permeability fields.

Each realisation holds a random number of sinuous channels that run along ``x`` (the mean
flow direction). A channel's centreline is ``y_c(x) = y0 + A sin(2 pi x / W + phi)`` plus a
second harmonic of amplitude ``A / 3`` that breaks the periodicity; every cell within half a
channel width of the centreline (measured along ``y``) is channel facies (1), the rest is
background (0). This is a simple stand-in for the multiple-point-statistics realisations of
Chen et al. (2025), which are drawn from a training image of the same kind.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["channel_fields"]


def channel_fields(
    n: int,
    shape=(80, 80),
    *,
    n_channels=(3, 5),
    width=(0.06, 0.1),
    amplitude=(0.05, 0.15),
    wavelength=(0.4, 1.0),
    seed=None,
) -> xr.DataArray:
    """``n`` binary channel fields ``(sample, y, x)`` (1 = channel facies, 0 = background).

    Parameters
    ----------
    n : int
        Number of realisations.
    shape : (int, int)
        Cells ``(ny, nx)``.
    n_channels : (int, int)
        Inclusive range of the number of channels per realisation.
    width, amplitude, wavelength : (float, float)
        Uniform ranges of the channel width and meander amplitude (fractions of the domain
        height) and of the meander wavelength (fraction of the domain length).
    seed : int, optional
        Seed of the random generator.
    """
    ny, nx = shape
    lo, hi = n_channels
    if n < 1 or lo < 1 or hi < lo:
        raise ValueError("n must be positive and n_channels a range (lo, hi) with 1 <= lo <= hi")
    rng = np.random.default_rng(seed)
    x = (np.arange(nx) + 0.5) / nx
    y = (np.arange(ny) + 0.5) / ny
    counts = rng.integers(lo, hi + 1, size=n)
    fields = np.zeros((n, ny, nx), dtype=bool)
    for k in range(hi):
        active = counts > k  # realisations that have a k-th channel
        y0 = rng.uniform(0.0, 1.0, n)
        amp = rng.uniform(*amplitude, n)
        wl = rng.uniform(*wavelength, n)
        w = rng.uniform(*width, n)
        phi, phi2 = rng.uniform(0, 2 * np.pi, (2, n))
        yc = (
            y0[:, None]
            + amp[:, None] * np.sin(2 * np.pi * x[None, :] / wl[:, None] + phi[:, None])
            + amp[:, None] / 3 * np.sin(4 * np.pi * x[None, :] / wl[:, None] + phi2[:, None])
        )
        inside = np.abs(y[None, :, None] - yc[:, None, :]) < 0.5 * w[:, None, None]
        fields |= inside & active[:, None, None]
    return xr.DataArray(
        fields.astype(np.float32),
        dims=("sample", "y", "x"),
        coords={"sample": np.arange(n)},
        attrs={"long_name": "facies indicator (1 = channel)", "generator": "object-based sinuous channels"},
    )
