"""Tandem neural network architecture (TNNA) inversion through a frozen surrogate.

A reverse network ``m = R(y_obs)`` is trained so that the frozen forward surrogate reproduces
the observations, minimising Eq. (19) of Chen et al. (2025),
``sum_i (y_obs[i] - F(R(y_obs))[i])^2 / sigma_i`` on min-max-scaled data. Each training epoch
calls the surrogate once per observation vector, which is the forward-call count reported.

The paper trains the reverse network on ``y_obs`` alone, from a random initialisation. With
``pretrain``, it first learns the inverse map by supervised regression on the surrogate's own
training pairs (outputs -> parameters); this costs no forward call (neither solver nor
surrogate), only data already paid for, and starts the tandem training near the answer.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .sampling import as_bounds, latin_hypercube, training_set

__all__ = ["TNNA", "objective"]


def _prepare(surrogate, y_obs, sigma):
    """Scaled observations ``(S, n_obs)``, their leading dims and the weights ``1 / sigma``."""
    if not isinstance(y_obs, xr.DataArray):
        raise ValueError("y_obs must be a DataArray labeled like the surrogate outputs")
    flat = surrogate._flat_obs(y_obs)
    lead = [d for d in y_obs.dims if d not in surrogate.y_template.dims]
    if len(lead) > 1:
        raise ValueError(f"y_obs may have at most one extra dim (e.g. scenario), got {lead}")
    Y = surrogate.scale_y(flat).reshape(-1, flat.shape[-1])
    w = np.ones(Y.shape[1]) if sigma is None else 1.0 / np.broadcast_to(np.asarray(sigma, float), (Y.shape[1],))
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("sigma must be positive and finite")
    return Y, lead, w


def _known(known, n_param):
    if known is None:
        return None
    A, b = (np.asarray(v, float) for v in known)
    A = A.reshape(-1, n_param) if A.ndim == 1 else A
    if A.shape[1] != n_param or A.shape[0] != b.size:
        raise ValueError(f"known=(A, b) needs A of shape (k, {n_param}) and b of length k; got {A.shape}, {b.shape}")
    return A, b.ravel()


def objective(surrogate, y_obs, *, transform=None, sigma=None, known=None, known_weight=1.0):
    """Vectorised misfit ``f(M) -> (pop,)`` of parameter vectors for one observation vector.

    The same weighted least squares as TNNA's loss (plus the same known-value penalty),
    evaluated by the surrogate on a whole population at once, for
    :func:`basinsx.inverse.minimize`.
    """
    import torch

    Y, _, w = _prepare(surrogate, y_obs, sigma)
    if Y.shape[0] != 1:
        raise ValueError("objective takes one observation vector; loop over scenarios")
    fwd = surrogate.torch_module()
    y = torch.as_tensor(Y[0], dtype=torch.float32)
    wt = torch.as_tensor(w, dtype=torch.float32)
    kn = None
    n_param = None

    def fun(M):
        nonlocal kn, n_param
        m = torch.as_tensor(np.asarray(M), dtype=torch.float32)
        if n_param is None:
            n_param = m.shape[1]
            kn = _known(known, n_param)
        with torch.no_grad():
            x = transform(m) if transform is not None else m
            f = ((y - fwd(x)) ** 2 * wt).sum(1)
            if kn is not None:
                A, b = (torch.as_tensor(v, dtype=torch.float32) for v in kn)
                f = f + known_weight * ((m @ A.T - b) ** 2).mean(1)
        return f.numpy().astype(float)

    return fun


class TNNA:
    """Tandem-network inversion of a fitted :class:`~basinsx.inverse.Surrogate`.

    Parameters
    ----------
    surrogate : Surrogate
        Fitted forward surrogate; it stays frozen.
    bounds : mapping, array or DataArray
        Bounds of the estimated parameters (see :func:`as_bounds`); estimates stay inside
        (sigmoid output layer mapped onto the box).
    transform : callable, optional
        torch function from parameters ``(batch, n_param)`` to surrogate inputs, e.g. a KLE
        or a generative decoder; identity by default.
    hidden : tuple of int
        Hidden layer widths of the reverse network (the paper: three of 512).
    epochs, lr, weight_decay : training settings (Adam).
    sigma : array_like, optional
        Standard deviations of the scaled observations (weights ``1 / sigma`` of Eq. 19).
    known : (A, b), optional
        Linear constraint ``A m ~ b`` from known values (e.g. log-permeability at wells),
        added to the loss as ``known_weight * mean((A m - b)^2)``.
    pretrain : (params, outputs), optional
        Training pairs for the supervised initialisation: ``params (sample, param)`` inside
        ``bounds`` and ``outputs (sample, ...)`` labeled like the surrogate outputs (usually
        the surrogate's training set). No surrogate call is made.
    pretrain_epochs, pretrain_batch : int
        Epochs and batch size of that regression (Adam at ``lr``, mean squared error of the
        parameters scaled to [0, 1]).
    seed : int
    progress : bool

    Attributes
    ----------
    history : ndarray (epochs,)
        Loss per epoch (mean over observation vectors).
    misfit_history : ndarray (epochs, S)
        Data misfit of each observation vector per epoch.
    param_history : ndarray (epochs, S, n_param)
        The estimate evaluated by each epoch's surrogate call (``misfit_history`` is its misfit),
        i.e. the estimate after ``k`` updates and ``k + 1`` calls is ``param_history[k]``.
    nfev : int
        Surrogate calls per observation vector (= epochs run).
    """

    def __init__(
        self,
        surrogate,
        bounds,
        *,
        transform=None,
        hidden=(512, 512, 512),
        epochs=1000,
        lr=1e-3,
        weight_decay=0.0,
        sigma=None,
        known=None,
        known_weight=1.0,
        pretrain=None,
        pretrain_epochs=200,
        pretrain_batch=64,
        seed=0,
        progress=False,
    ):
        surrogate._require_fit()
        self.surrogate = surrogate
        self.bounds = as_bounds(bounds)
        self.transform = transform
        self.hidden, self.epochs, self.lr, self.weight_decay = tuple(hidden), int(epochs), lr, weight_decay
        self.sigma, self.known_weight, self.seed, self.progress = sigma, known_weight, seed, progress
        self.known = _known(known, self.bounds.sizes["param"])
        self.pretrain = None if pretrain is None else self._pairs(*pretrain)
        self.pretrain_epochs, self.pretrain_batch = int(pretrain_epochs), int(pretrain_batch)
        self.n_simulations = 0

    def _pairs(self, params, outputs):
        """Pretraining pairs as arrays: scaled outputs ``(n, n_obs)``, parameters scaled to [0, 1]."""
        if not (isinstance(params, xr.DataArray) and isinstance(outputs, xr.DataArray)):
            raise TypeError("pretrain=(params, outputs) takes two DataArrays with a 'sample' dim")
        if "sample" not in params.dims or "sample" not in outputs.dims:
            raise ValueError("pretrain=(params, outputs) takes two DataArrays with a 'sample' dim")
        P = np.asarray(params.transpose("sample", ...).values, float).reshape(params.sizes["sample"], -1)
        b = self.bounds.values
        if P.shape[1] != len(b):
            raise ValueError(f"pretrain params have {P.shape[1]} values per sample, bounds have {len(b)}")
        Y = self.surrogate.scale_y(self.surrogate._flat_obs(outputs.transpose("sample", ...)))
        if len(Y) != len(P):
            raise ValueError(f"pretrain params have {len(P)} samples, outputs {len(Y)}")
        return Y, np.clip((P - b[:, 0]) / (b[:, 1] - b[:, 0]), 0.0, 1.0)

    def _supervised(self, net):
        """Regress the reverse network on the pretraining pairs (no surrogate call)."""
        import torch
        from tqdm.auto import trange

        Y, P = (torch.as_tensor(v, dtype=torch.float32) for v in self.pretrain)
        gen = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        for _ in trange(self.pretrain_epochs, desc="TNNA pretrain", disable=not self.progress):
            perm = torch.randperm(len(Y), generator=gen)
            for k in range(0, len(Y), self.pretrain_batch):
                b = perm[k : k + self.pretrain_batch]
                opt.zero_grad()
                torch.nn.functional.mse_loss(net(Y[b]), P[b]).backward()
                opt.step()

    def _inputs(self, m):
        return self.transform(m) if self.transform is not None else m

    def fit(self, y_obs: xr.DataArray) -> xr.DataArray:
        """Train the reverse network on ``y_obs`` (surrogate output dims, optionally one extra
        dim such as ``scenario``) and return the estimate ``(..., param)``."""
        import torch
        from torch import nn
        from tqdm.auto import trange

        Y, lead, w = _prepare(self.surrogate, y_obs, self.sigma)
        n_param = self.bounds.sizes["param"]
        fwd = self.surrogate.torch_module()
        torch.manual_seed(self.seed)
        layers, d = [], Y.shape[1]
        for h in self.hidden:
            layers += [nn.Linear(d, h), nn.SiLU()]
            d = h
        net = nn.Sequential(*layers, nn.Linear(d, n_param), nn.Sigmoid())
        if self.pretrain is not None:
            self._supervised(net)
        lo = torch.as_tensor(self.bounds.values[:, 0], dtype=torch.float32)
        span = torch.as_tensor(self.bounds.values[:, 1] - self.bounds.values[:, 0], dtype=torch.float32)
        y = torch.as_tensor(Y, dtype=torch.float32)
        wt = torch.as_tensor(w, dtype=torch.float32)
        kn = tuple(torch.as_tensor(v, dtype=torch.float32) for v in self.known) if self.known is not None else None
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        hist, mis, par = [], [], []
        for _ in trange(self.epochs, desc="TNNA", disable=not self.progress):
            opt.zero_grad()
            m = lo + span * net(y)
            misfit = ((y - fwd(self._inputs(m))) ** 2 * wt).sum(1)  # one surrogate call per vector
            loss = misfit.mean()
            if kn is not None:
                loss = loss + self.known_weight * ((m @ kn[0].T - kn[1]) ** 2).mean()
            loss.backward()
            opt.step()
            hist.append(loss.item())
            mis.append(misfit.detach().numpy())
            par.append(m.detach().numpy().astype(float))
        with torch.no_grad():
            m = (lo + span * net(y)).numpy().astype(float)
        self.net, self.history, self.misfit_history, self.nfev = net, np.array(hist), np.array(mis), self.epochs
        self.param_history = np.array(par).reshape(self.epochs, len(Y), n_param)
        coords = {"param": self.bounds["param"].values}
        if lead:
            self.estimate = xr.DataArray(m, dims=(lead[0], "param"), coords={**coords, lead[0]: y_obs[lead[0]].values})
        else:
            self.estimate = xr.DataArray(m[0], dims=("param",), coords=coords)
        return self.estimate

    def adapt(self, simulator, y_obs: xr.DataArray, *, rounds=1, n_local=20, radius=0.05, finetune_epochs=100, seed=0):
        """Adaptive update (Chen et al., 2021): resample near the estimate, fine-tune, re-invert.

        Each round draws ``n_local`` Latin-hypercube samples in a box of half-width
        ``radius`` (fraction of each range) around the current estimate, runs ``simulator``
        on them (outputs as for :func:`training_set`, matching the surrogate outputs),
        fine-tunes the surrogate on them and retrains the reverse network.
        """
        import torch

        if not hasattr(self, "estimate") or self.estimate.ndim != 1:
            raise RuntimeError("adapt needs a fitted TNNA on a single observation vector")
        b = self.bounds.values
        for r in range(rounds):
            centre = self.estimate.values
            half = radius * (b[:, 1] - b[:, 0])
            local = np.stack([np.maximum(centre - half, b[:, 0]), np.minimum(centre + half, b[:, 1])], 1)
            design = latin_hypercube(xr.DataArray(local, dims=("param", "bound"), coords={"param": self.bounds.param.values}), n_local, seed=seed + r)
            sims = training_set(simulator, design, progress=False)
            self.n_simulations += n_local
            out = sims[next(v for v in sims.data_vars if v != "params")]
            y_new = xr.DataArray(
                out.values.reshape(n_local, *self.surrogate.y_template.shape),
                dims=("sample", *self.surrogate.y_template.dims),
            )
            with torch.no_grad():
                x = self._inputs(torch.as_tensor(design.values, dtype=torch.float32)).numpy()
            x_new = xr.DataArray(x.reshape(n_local, *self.surrogate.in_shape),
                                 dims=("sample", *self.surrogate.x_template.dims))
            self.surrogate.fine_tune(x_new, y_new, epochs=finetune_epochs)
            self.fit(y_obs)
        return self.estimate
