"""Karhunen-Loeve expansion of a Gaussian random field with exponential covariance."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..groundwater import grid_values

__all__ = ["KLE"]


class KLE:
    """Truncated Karhunen-Loeve expansion on a regular grid.

    ``Y(x) = mean + sum_k sqrt(lambda_k) phi_k(x) xi_k`` with ``xi_k ~ N(0, 1)``; the
    ``phi_k`` are the leading eigenvectors of the covariance matrix of the cell centres.

    Parameters
    ----------
    shape : (int, int)
        Cells ``(ny, nx)``.
    length : (float, float)
        Extent ``(Ly, Lx)`` in m.
    corr_length : float or (float, float)
        Correlation lengths ``(ly, lx)`` in m.
    variance, mean : float
        Variance and mean of the field (e.g. of ln k).
    n_terms : int
        Number of retained terms.
    kernel : {"separable", "isotropic"}
        ``separable``: ``C = s2 exp(-|dx|/lx - |dy|/ly)``, the Kronecker product of two 1-D
        covariances, decomposed through two small eigenproblems (fast, any grid size).
        ``isotropic``: ``C = s2 exp(-sqrt((dx/lx)^2 + (dy/ly)^2))``, a dense eigenproblem of
        size ``ny * nx`` (only the leading ``n_terms`` pairs are computed).

    Attributes
    ----------
    eigenvalues : ndarray (n_terms,)
    modes : ndarray (n_terms, ny, nx)
        Orthonormal eigenvectors.
    fraction : float
        Share of the total variance kept, ``sum(lambda_kept) / (s2 * ny * nx)``.
    """

    def __init__(self, shape, length, corr_length, variance=1.0, mean=0.0, n_terms=100, kernel="separable"):
        ny, nx = (int(s) for s in shape)
        if min(ny, nx) < 1:
            raise ValueError(f"shape must be positive, got {shape!r}")
        Ly, Lx = (float(v) for v in length)
        ly, lx = np.broadcast_to(np.asarray(corr_length, float), (2,))
        if min(Ly, Lx, ly, lx) <= 0 or variance <= 0:
            raise ValueError("length, corr_length and variance must be positive")
        if not 1 <= n_terms <= ny * nx:
            raise ValueError(f"n_terms must lie in [1, {ny * nx}], got {n_terms}")
        self.shape, self.length, self.corr_length = (ny, nx), (Ly, Lx), (ly, lx)
        self.variance, self.mean, self.n_terms, self.kernel = float(variance), float(mean), int(n_terms), kernel
        y = (np.arange(ny) + 0.5) * Ly / ny
        x = (np.arange(nx) + 0.5) * Lx / nx
        if kernel == "separable":
            lam_y, vy = np.linalg.eigh(np.exp(-np.abs(y[:, None] - y[None, :]) / ly))
            lam_x, vx = np.linalg.eigh(np.exp(-np.abs(x[:, None] - x[None, :]) / lx))
            lam = self.variance * np.outer(lam_y, lam_x).ravel()
            order = np.argsort(lam)[::-1][:n_terms]
            iy, ix = np.unravel_index(order, (ny, nx))
            self.eigenvalues = lam[order]
            self.modes = vy[:, iy].T[:, :, None] * vx[:, ix].T[:, None, :]
        elif kernel == "isotropic":
            from scipy.sparse.linalg import eigsh

            Y, X = np.meshgrid(y, x, indexing="ij")
            d = np.hypot((Y.ravel()[:, None] - Y.ravel()[None, :]) / ly, (X.ravel()[:, None] - X.ravel()[None, :]) / lx)
            C = self.variance * np.exp(-d)
            n = ny * nx
            if n_terms < n - 1:  # Lanczos for the leading pairs only; fixed start vector for reproducibility
                lam, v = eigsh(C, k=n_terms, which="LA", v0=np.ones(n))
            else:
                lam, v = np.linalg.eigh(C)
                lam, v = lam[n - n_terms :], v[:, n - n_terms :]
            order = np.argsort(lam)[::-1]
            self.eigenvalues = lam[order]
            self.modes = v[:, order].T.reshape(n_terms, ny, nx)
        else:
            raise ValueError(f"kernel must be 'separable' or 'isotropic', got {kernel!r}")
        self.fraction = float(self.eigenvalues.sum() / (self.variance * ny * nx))
        self.y, self.x = y, x

    @property
    def matrix(self) -> np.ndarray:
        """``(ny * nx, n_terms)`` map from ``xi`` to the field anomaly: ``phi_k sqrt(lambda_k)``."""
        return (self.modes.reshape(self.n_terms, -1) * np.sqrt(self.eigenvalues)[:, None]).T

    def field(self, xi):
        """Field from coefficients ``xi (..., n_terms)``; a DataArray with dim ``mode`` gives ``(..., y, x)``."""
        if isinstance(xi, xr.DataArray):
            if "mode" not in xi.dims:
                raise ValueError("a DataArray of KLE coefficients needs a 'mode' dim")
            if "mode" in xi.coords:  # modes by their numbers, not their order
                given = set(xi["mode"].values.tolist())
                missing, extra = sorted(set(range(self.n_terms)) - given), sorted(given - set(range(self.n_terms)))
                if missing or extra:
                    raise ValueError(f"the expansion has modes 0 .. {self.n_terms - 1}; the coefficients lack modes "
                                     f"{missing} and have modes {extra} it does not have")
                xi = xi.sel(mode=np.arange(self.n_terms))
            return xr.apply_ufunc(
                self.field, xi, input_core_dims=[["mode"]], output_core_dims=[["y", "x"]],
                dask="parallelized", output_dtypes=[float],
                dask_gufunc_kwargs={"output_sizes": {"y": self.shape[0], "x": self.shape[1]}},
            ).assign_coords(y=self.y, x=self.x)
        xi = np.asarray(xi, float)
        if xi.shape[-1] != self.n_terms:
            raise ValueError(f"xi has {xi.shape[-1]} coefficients on its last axis, the expansion has {self.n_terms}")
        return self.mean + (xi @ self.matrix.T).reshape(*xi.shape[:-1], *self.shape)

    def project(self, field):
        """Coefficients ``xi (..., n_terms)`` of the orthogonal projection of ``field (..., ny, nx)`` (a DataArray by
        its ``y``, ``x`` labels)."""
        f = grid_values(field, self.y, self.x)
        if f.shape[-2:] != self.shape:
            raise ValueError(f"field has trailing shape {f.shape[-2:]}, the expansion grid is {self.shape}")
        anomaly = (f - self.mean).reshape(*f.shape[:-2], -1)
        return anomaly @ self.modes.reshape(self.n_terms, -1).T / np.sqrt(self.eigenvalues)

    def sample(self, n, seed=None):
        """``n`` random fields ``(n, ny, nx)`` and their coefficients ``(n, n_terms)``."""
        xi = np.random.default_rng(seed).standard_normal((n, self.n_terms))
        return self.field(xi), xi

    def __repr__(self):
        return f"KLE(shape={self.shape}, kernel={self.kernel!r}, n_terms={self.n_terms}, fraction={self.fraction:.4f})"
