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

from ._design import design_range, warn_beyond_design
from ._labels import align, labeled, order, paired, shown, where
from .sampling import as_bounds, latin_hypercube, training_set

__all__ = ["TNNA", "local_refine", "objective"]


def _prepare(surrogate, y_obs, sigma, clip=False, mask_nan=False):
    """Scaled observations ``(S, n_obs)`` aligned by label to the surrogate outputs (clipped to
    [0, 1] with ``clip``), their leading dims and the weights ``(S, n_obs)``: ``1 / sigma``, and
    zero where an observation is NaN with ``mask_nan``."""
    if not isinstance(y_obs, xr.DataArray):
        raise TypeError("y_obs must be a DataArray labeled like the surrogate outputs")
    y_obs = align(y_obs, surrogate.y_template, "y_obs")
    lead = list(y_obs.dims[: y_obs.ndim - surrogate.y_template.ndim])
    if len(lead) > 1:
        raise ValueError(f"y_obs may have at most one extra dim (e.g. scenario), got {lead}")
    raw = np.ascontiguousarray(y_obs.values, float)  # a transposed layout would change the float32 round-off
    if np.isinf(raw).any():
        raise ValueError(f"y_obs is inf at {where(y_obs, np.isinf(raw))}")
    if np.isnan(raw).any() and not mask_nan:
        raise ValueError(f"y_obs is NaN at {where(y_obs, np.isnan(raw))}; pass mask_nan=True to leave "
                         "them out of the misfit")
    empty = y_obs.isnull().all(surrogate.y_template.dims)
    if empty.any():
        raise ValueError("y_obs has no finite observation" + (f" at {where(empty, empty.values)}" if lead else ""))
    Y = surrogate.scale_y(raw.reshape(-1, int(np.prod(surrogate.y_template.shape))))
    seen = np.isfinite(Y)
    Y = np.where(seen, Y, 0.0)
    if clip:
        Y = np.clip(Y, 0.0, 1.0)
    if isinstance(sigma, xr.DataArray):
        if lead and lead[0] in sigma.indexes and lead[0] in y_obs.indexes:  # per scenario, by its labels
            sigma = sigma.isel({lead[0]: order(sigma.indexes[lead[0]], y_obs.indexes[lead[0]],
                                               f"sigma {lead[0]!r}", "y_obs's")})
        sigma = surrogate.flat_outputs(sigma, "sigma")
    w = np.ones(Y.shape) if sigma is None else 1.0 / np.broadcast_to(np.asarray(sigma, float), Y.shape)
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("sigma must be positive and finite")
    return Y, lead, np.where(seen, w, 0.0)


def _input_labels(surrogate):
    """The labels of the surrogate's inputs when they are one labeled dim (its parameters), else None."""
    t = surrogate.x_template
    return t.indexes[t.dims[0]].tolist() if t.ndim == 1 and t.dims[0] in t.indexes else None


def _param_bounds(surrogate, bounds, transform):
    """Bounds of the estimated parameters, and the order ``bounds`` listed them in where it differs.

    Without a transform the parameters are the surrogate's inputs: labeled bounds are put in the
    order of its input labels (an error names missing or unknown ones); unlabeled bounds are
    taken in that order and get its labels. With a transform they stay as given.
    """
    b = as_bounds(bounds)
    t = surrogate.x_template
    if transform is not None or t.ndim != 1:
        return b, None
    if b.sizes["param"] != t.size:
        raise ValueError(f"bounds give {b.sizes['param']} parameters, the surrogate takes {t.size} inputs {t.dims}")
    names = _input_labels(surrogate)
    if names is None:
        return b, None
    if not labeled(bounds):
        return b.assign_coords(param=names), None
    idx = order(b.indexes["param"], names, "bounds 'param'", "the surrogate's inputs")
    return b.isel(param=idx), (None if np.array_equal(idx, np.arange(len(idx))) else list(b["param"].values))


def _positional(what, given, bounds, hint=""):
    """A plain per-parameter array is in the estimate's order; bounds listed in another order make it ambiguous."""
    if given is not None:
        raise ValueError(f"{what} as a plain array is taken in the surrogate's order "
                         f"{shown(bounds['param'].values)}, but bounds list the parameters as {shown(given)}; "
                         f"give bounds in the surrogate's order{hint}")


def _known(known, n_param):
    if known is None:
        return None
    A, b = (np.asarray(v, float) for v in known)
    A = A.reshape(-1, n_param) if A.ndim == 1 else A
    if A.shape[1] != n_param or A.shape[0] != b.size:
        raise ValueError(f"known=(A, b) needs A of shape (k, {n_param}) and b of length k; got {A.shape}, {b.shape}")
    return A, b.ravel()


def _prior(prior, n_param):
    """``prior=(mean, std)`` as two arrays of ``n_param`` values, checked; None stays None."""
    if prior is None:
        return None
    try:
        prior = tuple(np.array(np.broadcast_to(np.asarray(v, float), (n_param,))) for v in prior)
    except ValueError:
        raise ValueError(f"prior=(mean, std) takes scalars or {n_param} values each") from None
    if not (np.all(np.isfinite(prior[0])) and np.all(np.isfinite(prior[1])) and np.all(prior[1] > 0)):
        raise ValueError("prior=(mean, std) needs finite means and positive standard deviations")
    return prior


def _penalty(known, known_weight, prior, prior_weight, n_param):
    """The known-value and Gaussian-prior terms of the loss as a torch function
    ``m (batch, n_param) -> (batch,)``, or None without either; checks the arguments."""
    import torch

    kn = _known(known, n_param)
    prior = _prior(prior, n_param)
    if kn is None and prior is None:
        return None

    def penalty(m):
        def t(v):
            return torch.as_tensor(v, dtype=m.dtype, device=m.device)

        p = torch.zeros(m.shape[0], dtype=m.dtype, device=m.device)
        if kn is not None:
            p = p + known_weight * ((m @ t(kn[0]).T - t(kn[1])) ** 2).mean(1)
        if prior is not None:
            p = p + prior_weight * (((m - t(prior[0])) / t(prior[1])) ** 2).sum(1)
        return p

    return penalty


def objective(surrogate, y_obs, *, transform=None, sigma=None, known=None, known_weight=1.0, prior=None,
              prior_weight=1.0, clip=False, mask_nan=False):
    """Vectorised misfit ``f(M) -> (pop,)`` of parameter vectors for one observation vector.

    The same weighted least squares as TNNA's loss (plus the same known-value and prior
    terms, the same ``clip`` and ``mask_nan``), evaluated by the surrogate on a whole population
    at once, for :func:`basinsx.inverse.minimize`. ``y_obs`` (and ``sigma`` given as a DataArray)
    are matched to the surrogate outputs by label.

    Returns
    -------
    callable
        ``f(M)`` on plain arrays ``M (pop, n_param)``, columns in the surrogate's input order.
        Its attribute ``param`` holds those labels (None with a ``transform`` or unlabeled
        inputs); :func:`minimize` puts labeled bounds in that order.
    """
    import torch

    Y, _, w = _prepare(surrogate, y_obs, sigma, clip, mask_nan)
    if Y.shape[0] != 1:
        raise ValueError("objective takes one observation vector; loop over scenarios")
    fwd = surrogate.torch_module()
    dev = surrogate.device
    y = torch.as_tensor(Y[0], dtype=torch.float32, device=dev)
    wt = torch.as_tensor(w[0], dtype=torch.float32, device=dev)
    pen = {}  # built on the first call, which tells the number of parameters

    def fun(M):
        m = torch.as_tensor(np.asarray(M), dtype=torch.float32, device=dev)
        if not pen:
            pen["f"] = _penalty(known, known_weight, prior, prior_weight, m.shape[1])
        with torch.no_grad():
            x = transform(m) if transform is not None else m
            f = ((y - fwd(x)) ** 2 * wt).sum(1)
            if pen["f"] is not None:
                f = f + pen["f"](m)
        return f.cpu().numpy().astype(float)

    fun.param = None if transform is not None else _input_labels(surrogate)
    fun.design = design_range(surrogate, transform)  # minimize warns where its bounds reach beyond it
    return fun


class TNNA:
    """Tandem-network inversion of a fitted :class:`~basinsx.inverse.Surrogate`.

    Parameters
    ----------
    surrogate : Surrogate
        Fitted forward surrogate; it stays frozen.
    bounds : mapping, array or DataArray
        Bounds of the estimated parameters (see :func:`as_bounds`); estimates stay inside
        (sigmoid output layer mapped onto the box). Without a ``transform`` the parameters are
        the surrogate's inputs: labeled bounds are matched to them by label (the estimate comes
        in the surrogate's order), a plain ``(n, 2)`` array is taken in the surrogate's order.
        Plain arrays of ``init``, ``prior`` and ``known`` are in that order too; with bounds
        listed in another order they are an error, not a guess.
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
    prior : (mean, std), optional
        Gaussian prior of the parameters (scalars or one value per parameter), added as
        ``prior_weight * sum(((m - mean) / std)^2)``; e.g. ``(0, 1)`` for KLE coefficients, so
        that directions the data do not constrain stay at the prior mean. Not in the paper.
    clip : bool
        Clip the scaled observations to [0, 1], the range of the surrogate's training outputs.
        An observation outside it (say an early arrival at a far well that no training run
        produced: scaled by a range of 1e-5 it becomes 100 or more) cannot be matched by a
        sigmoid-output surrogate; unclipped, its residual dominates the misfit and its
        gradient whatever the other observations say. Not in the paper.
    mask_nan : bool
        Leave NaN observations out of the misfit (weight zero). By default they are an error
        naming their labels; inf is always one.
    pretrain : (params, outputs), optional
        Training pairs for the supervised initialisation: ``params (sample, param)`` inside
        ``bounds`` and ``outputs (sample, ...)`` labeled like the surrogate outputs (usually
        the surrogate's training set). No surrogate call is made.
    pretrain_epochs, pretrain_batch : int
        Epochs and batch size of that regression (Adam at ``lr``, mean squared error of the
        parameters scaled to [0, 1]).
    starts : int
        Reverse networks trained side by side from different starts (one batched surrogate call
        per epoch for all of them: ``nfev = starts * epochs``); the estimate is the start with the
        lowest final misfit, all are kept in ``estimates``. On a multimodal misfit (a generative
        reducer's latent) one start can stall on a plateau or in a poor basin; the spread of the
        starts also shows what the data leave undetermined. Not in the paper.
    init : {"uniform"}, array_like (param,) or (starts, param), or DataArray, optional
        Starting estimates inside ``bounds``: each output layer's bias is set so that the
        untrained network returns (nearly) its start. ``"uniform"`` draws one start per network
        uniformly in the bounds (from ``seed``). By default each network starts near the centre
        of the box, which can be a plateau of the misfit (the centre of a generative decoder's
        latent decodes to a featureless field). Not with ``pretrain``. Not in the paper.
    seed : int
    progress : bool

    Attributes
    ----------
    history : ndarray (epochs,)
        Loss per epoch (mean over observation vectors).
    misfit_history : ndarray (epochs, S)
        Data misfit of each observation vector per epoch (of the start chosen for it).
    param_history : ndarray (epochs, S, n_param)
        The estimate evaluated by each epoch's surrogate call (``misfit_history`` is its misfit),
        i.e. the estimate after ``k`` updates and ``k + 1`` calls is ``param_history[k]``.
    estimates : DataArray (start, ..., param)
        The final estimate of every start; ``estimate`` is one of them per observation vector.
    start_misfit : ndarray (starts, S)
        The last evaluated misfit of every start, which picks the estimate.
    nfev : int
        Surrogate calls per observation vector (= starts x epochs).
    n_simulations : int
        Simulator runs made by :meth:`adapt` and :meth:`refine`.
    refine_history, refine_runs, refine_objective : ndarray
        Set by :meth:`refine`: the estimate before it and after each accepted iteration
        ``(k + 1, n_param)``, the simulator runs made by then and the objective there.
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
        prior=None,
        prior_weight=1.0,
        clip=False,
        mask_nan=False,
        pretrain=None,
        pretrain_epochs=200,
        pretrain_batch=64,
        starts=1,
        init=None,
        seed=0,
        progress=False,
    ):
        surrogate.check_fitted()
        self.surrogate = surrogate
        self.bounds, given = _param_bounds(surrogate, bounds, transform)
        warn_beyond_design(self.bounds, design_range(surrogate, transform))
        # labels of unlabeled bounds (p0, p1, ...) are made up: pretraining params then go by position
        self._named = labeled(bounds) or (transform is None and _input_labels(surrogate) is not None)
        self.transform = transform
        self.hidden, self.epochs, self.lr, self.weight_decay = tuple(hidden), int(epochs), lr, weight_decay
        self.sigma, self.known_weight, self.seed, self.progress = sigma, known_weight, seed, progress
        self.clip, self.mask_nan = bool(clip), bool(mask_nan)
        if known is not None:
            _positional("known", given, self.bounds)
        if prior is not None and any(np.ndim(v) for v in prior):
            _positional("prior", given, self.bounds)
        if init is not None and not isinstance(init, str) and "param" not in getattr(init, "indexes", {}):
            _positional("init", given, self.bounds, " or init as a DataArray with a 'param' coord")
        n_param = self.bounds.sizes["param"]
        self.penalty = _penalty(known, known_weight, prior, prior_weight, n_param)
        # the same terms as arrays, for refine's normal equations
        self._known, self._prior, self.prior_weight = _known(known, n_param), _prior(prior, n_param), prior_weight
        self.pretrain = None if pretrain is None else self._pairs(*pretrain)
        self.pretrain_epochs, self.pretrain_batch = int(pretrain_epochs), int(pretrain_batch)
        self.starts = int(starts)
        if self.starts < 1:
            raise ValueError(f"starts must be a positive integer, got {starts}")
        self.init = None if init is None else self._start(init)
        if self.init is not None and self.pretrain is not None:
            raise ValueError("init and pretrain both set the starting network; pass one")
        self.n_simulations, self.local = 0, None

    def _pairs(self, params, outputs):
        """Pretraining pairs as arrays: scaled outputs ``(n, n_obs)``, parameters scaled to [0, 1]."""
        if not (isinstance(params, xr.DataArray) and isinstance(outputs, xr.DataArray)):
            raise TypeError("pretrain=(params, outputs) takes two DataArrays with a 'sample' dim")
        if "sample" not in params.dims or "sample" not in outputs.dims:
            raise ValueError("pretrain=(params, outputs) takes two DataArrays with a 'sample' dim")
        if self._named and "param" in params.indexes:
            params = params.isel(param=order(params.indexes["param"], self.bounds.indexes["param"],
                                             "pretrain params 'param'", "the bounds"))
        P = np.asarray(params.transpose("sample", ...).values, float).reshape(params.sizes["sample"], -1)
        b = self.bounds.values
        if P.shape[1] != len(b):
            raise ValueError(f"pretrain params have {P.shape[1]} values per sample, bounds have {len(b)}")
        outputs = paired(params, outputs, "pretrain outputs", "the params'")
        Y = self.surrogate.scale_y(self.surrogate.output_samples(outputs, "pretrain outputs"))
        if len(Y) != len(P):
            raise ValueError(f"pretrain params have {len(P)} samples, outputs {len(Y)}")
        if not (np.isfinite(P).all() and np.isfinite(Y).all()):
            raise ValueError("pretrain=(params, outputs) contain NaN or inf")
        outside = (P < b[:, 0]) | (P > b[:, 1])
        if outside.any():  # a design from other bounds: TNNA would learn clipped pairs
            at = where(params.transpose("sample", ...), outside.reshape(params.transpose("sample", ...).shape))
            raise ValueError(f"pretrain params lie outside the bounds at {at}")
        return Y, (P - b[:, 0]) / (b[:, 1] - b[:, 0])

    def _start(self, init):
        """Starting estimates ``(starts, n_param)`` scaled to [0, 1] inside the bounds."""
        b = self.bounds
        lim, n = b.values, b.sizes["param"]
        if isinstance(init, str):
            if init != "uniform":
                raise ValueError(f"init takes 'uniform', an array or a DataArray, got {init!r}")
            return np.random.default_rng(self.seed).random((self.starts, n))
        if isinstance(init, xr.DataArray):
            if init.dims not in (("param",), ("start", "param")):
                raise ValueError(f"init must have dims ('param',) or ('start', 'param'), got {init.dims}")
            if "param" in init.indexes:
                init = init.isel(param=order(init.indexes["param"], b.indexes["param"], "init 'param'", "the bounds"))
        u = np.asarray(init, float)
        if u.shape not in ((n,), (self.starts, n)):
            raise ValueError(f"init needs shape ({n},) or (starts={self.starts}, {n}), got {u.shape}")
        if not np.all((u >= lim[:, 0]) & (u <= lim[:, 1])):
            raise ValueError("init must lie inside the bounds")
        return np.broadcast_to((u - lim[:, 0]) / (lim[:, 1] - lim[:, 0]), (self.starts, n))

    def _supervised(self, net):
        """Regress the reverse network on the pretraining pairs (no surrogate call)."""
        import torch
        from tqdm.auto import trange

        dev = self.surrogate.device
        Y, P = (torch.as_tensor(v, dtype=torch.float32, device=dev) for v in self.pretrain)
        gen = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        for _ in trange(self.pretrain_epochs, desc="TNNA pretrain", disable=not self.progress):
            perm = torch.randperm(len(Y), generator=gen).to(dev)
            for k in range(0, len(Y), self.pretrain_batch):
                b = perm[k : k + self.pretrain_batch]
                opt.zero_grad()
                torch.nn.functional.mse_loss(net(Y[b]), P[b]).backward()
                opt.step()

    def _network(self, n_obs, n_param):
        from torch import nn

        layers, d = [], n_obs
        for h in self.hidden:
            layers += [nn.Linear(d, h), nn.SiLU()]
            d = h
        return nn.Sequential(*layers, nn.Linear(d, n_param), nn.Sigmoid())

    def _inputs(self, m):
        return self.transform(m) if self.transform is not None else m

    def fit(self, y_obs: xr.DataArray) -> xr.DataArray:
        """Train the reverse network on ``y_obs`` (surrogate output dims, optionally one extra
        dim such as ``scenario``; matched to the surrogate outputs by label) and return the
        estimate ``(..., param)``."""
        import torch
        from torch import nn
        from tqdm.auto import trange

        Y, lead, w = _prepare(self.surrogate, y_obs, self.sigma, self.clip, self.mask_nan)
        n_param = self.bounds.sizes["param"]
        fwd = self.surrogate.torch_module()
        torch.manual_seed(self.seed)
        dev = self.surrogate.device
        nets = nn.ModuleList([self._network(Y.shape[1], n_param) for _ in range(self.starts)]).to(dev)
        for k, net in enumerate(nets):
            if self.pretrain is not None:
                self._supervised(net)
            if self.init is not None:  # sigmoid(bias) at the start; the weights add little at initialisation
                u = np.clip(self.init[k], 1e-4, 1 - 1e-4)
                with torch.no_grad():
                    net[-2].bias.copy_(torch.as_tensor(np.log(u / (1 - u)), dtype=torch.float32))

        def tensor(v):
            return torch.as_tensor(v, dtype=torch.float32, device=dev)

        lo, span = tensor(self.bounds.values[:, 0]), tensor(self.bounds.values[:, 1] - self.bounds.values[:, 0])
        y, wt = tensor(Y), tensor(w).repeat(self.starts, 1)

        def estimates():  # (starts * S, n_param), start-major
            return lo + span * torch.cat([net(y) for net in nets])

        y_all = y.repeat(self.starts, 1)
        opt = torch.optim.Adam(nets.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        hist, mis, par = [], [], []
        for _ in trange(self.epochs, desc="TNNA", disable=not self.progress):
            opt.zero_grad()
            m = estimates()
            misfit = ((y_all - fwd(self._inputs(m))) ** 2 * wt).sum(1)  # one batched surrogate call
            loss = misfit.mean()
            if self.penalty is not None:
                loss = loss + self.penalty(m).mean()
            loss.backward()
            opt.step()
            hist.append(loss.item())
            mis.append(misfit.detach().cpu().numpy().reshape(self.starts, len(Y)))
            par.append(m.detach().cpu().numpy().astype(float).reshape(self.starts, len(Y), n_param))
        with torch.no_grad():
            m = estimates().cpu().numpy().astype(float).reshape(self.starts, len(Y), n_param)
        mis, par = np.array(mis), np.array(par)
        self.start_misfit = mis[-1]
        best, cols = np.argmin(self.start_misfit, 0), np.arange(len(Y))  # a start per observation vector
        self.nets, self.history, self.nfev = nets, np.array(hist), self.starts * self.epochs
        self.misfit_history, self.param_history = mis[:, best, cols], par[:, best, cols]
        coords = {"param": self.bounds["param"].values, **({lead[0]: y_obs[lead[0]].values} if lead else {})}
        self.estimates = xr.DataArray(m if lead else m[:, 0], dims=("start", *lead, "param"), coords=coords)
        m = m[best, cols]
        self.estimate = xr.DataArray(m if lead else m[0], dims=(*lead, "param"), coords=coords)
        return self.estimate

    def adapt(self, simulator, y_obs: xr.DataArray, *, rounds=1, n_local=20, radius=0.05, finetune_epochs=100, seed=0,
              scheduler=None):
        """Adaptive update (Chen et al., 2021): simulate near the estimate, fine-tune, re-invert.

        Each round is one :func:`local_refine` around the current estimate (``n_local``
        simulator runs with the dask ``scheduler``, the surrogate fine-tuned on all local runs
        so far, in place), then the reverse network is retrained on ``y_obs``. Sets ``local``
        (every local run), ``adapt_history`` (ndarray ``(rounds + 1, n_param)``: the estimate
        before the first round and after each) and adds the runs to ``n_simulations``.
        """
        if not hasattr(self, "estimate") or self.estimate.ndim != 1:
            raise RuntimeError("adapt needs a fitted TNNA on a single observation vector")
        history = [self.estimate.values]
        for r in range(rounds):
            self.local = local_refine(self.surrogate, simulator, self.estimate.values, self.bounds, n_local=n_local,
                                      radius=radius, finetune_epochs=finetune_epochs, transform=self.transform,
                                      local=self.local, seed=seed + r, scheduler=scheduler)
            self.n_simulations += n_local
            history.append(self.fit(y_obs).values)
        self.adapt_history = np.array(history)
        return self.estimate


    def refine(self, simulator, y_obs: xr.DataArray, *, iterations=3, prior_weight=None, step=1e-4, damping=1e-3,
               max_tries=8, scheduler=None):
        """Refine the estimate on the simulator itself: TNNA refined on the solver in its last steps.

        Levenberg-Marquardt iterations on TNNA's own objective (the weighted misfit of the scaled
        observations plus the known-value and prior terms) with the simulator in place of the
        surrogate, starting from the current estimate. Each iteration takes a one-sided
        finite-difference Jacobian (``n_param`` runs, batched with the dask ``scheduler``) and
        one run at the trial step, which the next iteration reuses; a step that does not lower
        the objective is retried with 10x the damping (one run each). No surrogate call is made.

        A surrogate's error passes into its estimate (through the inversion's gain), and the prior
        weight that keeps a rough surrogate from fitting its own errors holds the estimate back
        once the exact simulator is used: ``prior_weight`` replaces TNNA's for these iterations.
        Matched to the data, about the noise variance of the scaled observations with unit
        ``sigma``, the data decide every direction they resolve. Not in the paper.

        Parameters
        ----------
        simulator : callable
            ``simulator(params) -> outputs`` as for :func:`training_set`, parameters in the order
            of the estimate, outputs matching the surrogate's (raw, unscaled).
        y_obs : DataArray
            The observations :meth:`fit` was given (one observation vector).
        iterations : int
            Levenberg-Marquardt iterations (each ``n_param + 1`` runs when its first step is taken).
        prior_weight : float, optional
            Weight of the prior term in these iterations; default TNNA's ``prior_weight``. Needs
            a ``prior``.
        step : float
            Finite-difference step as a fraction of each parameter range (backward at the upper bound).
        damping : float
            Initial Marquardt damping (relative to the diagonal of the Gauss-Newton matrix);
            divided by 10 after each accepted step.
        max_tries : int
            Damped retries per iteration before the refinement stops (no lower objective found).
        scheduler : str, optional
            dask scheduler of the runs, as for :func:`training_set`.

        Returns
        -------
        DataArray (param,)
            The refined estimate (also ``estimate``), inside the bounds. Adds the runs to
            ``n_simulations``; sets ``refine_history``, ``refine_runs`` and ``refine_objective``.
        """
        if not hasattr(self, "estimate") or self.estimate.ndim != 1:
            raise RuntimeError("refine needs a fitted TNNA on a single observation vector")
        if int(iterations) < 1:
            raise ValueError(f"iterations must be a positive integer, got {iterations}")
        if prior_weight is not None and self._prior is None:
            raise ValueError("prior_weight re-weights TNNA's prior term, but this TNNA has no prior")
        pw = self.prior_weight if prior_weight is None else float(prior_weight)
        Y, _, w = _prepare(self.surrogate, y_obs, self.sigma, self.clip, self.mask_nan)
        y, w = Y[0], w[0]
        names, lim = self.bounds["param"].values, self.bounds.values
        lo, hi = lim[:, 0], lim[:, 1]
        n = len(names)
        A = np.zeros((0, n)) if self._known is None else self._known[0]
        b = np.zeros(0) if self._known is None else self._known[1]
        kw = self.known_weight / max(len(b), 1)
        pm, ps = self._prior if self._prior is not None else (np.zeros(n), np.ones(n))
        prec = np.zeros(n) if self._prior is None else pw / ps**2

        def run(M):
            design = xr.DataArray(M, dims=("sample", "param"), coords={"param": names})
            sims = training_set(simulator, design, progress=False, scheduler=scheduler)
            return self.surrogate.scale_y(self.surrogate.simulated(sims).values.reshape(len(M), -1))

        def objective_(m, f):
            return float((w * (y - f) ** 2).sum() + kw * ((A @ m - b) ** 2).sum() + (prec * (m - pm) ** 2).sum())

        m = self.estimate.values.astype(float)
        f = run(m[None])[0]
        runs, lam, value = 1, float(damping), objective_(m, f)
        history, run_count, values = [m], [runs], [value]
        h = step * (hi - lo)
        for _ in range(int(iterations)):
            hs = np.where(m + h <= hi, h, -h)
            J = ((run(m + np.diag(hs)) - f) / hs[:, None]).T  # (n_obs, n_param)
            runs += n
            N = J.T @ (w[:, None] * J) + kw * A.T @ A + np.diag(prec)
            g = J.T @ (w * (y - f)) - kw * A.T @ (A @ m - b) - prec * (m - pm)
            d = np.maximum(np.diag(N), 1e-12 * np.diag(N).max())
            for _ in range(int(max_tries)):
                m_new = np.clip(m + np.linalg.solve(N + lam * np.diag(d), g), lo, hi)
                f_new = run(m_new[None])[0]
                runs += 1
                new = objective_(m_new, f_new)
                if new < value:
                    m, f, value, lam = m_new, f_new, new, lam / 10
                    break
                lam *= 10
            else:  # no damped step lowers the objective: converged as far as this Jacobian goes
                break
            history.append(m)
            run_count.append(runs)
            values.append(value)
        self.n_simulations += runs
        self.refine_history, self.refine_runs = np.array(history), np.array(run_count)
        self.refine_objective = np.array(values)
        self.estimate = xr.DataArray(m, dims="param", coords={"param": names})
        return self.estimate

def local_refine(surrogate, simulator, centre, bounds, *, n_local=20, radius=0.05, finetune_epochs=100, transform=None,
                 local=None, seed=0, scheduler=None):
    """One adaptive round around an estimate: simulate near it and fine-tune the surrogate.

    Runs ``simulator`` on ``centre`` and on ``n_local - 1`` Latin-hypercube samples in a box
    of half-width ``radius`` (fraction of each range of ``bounds``) around it, then fine-tunes
    ``surrogate`` in place on these runs and the earlier ones in ``local``. The surrogate
    becomes accurate near the estimate, usually at the cost of accuracy elsewhere. Works for
    any inversion method (TNNA uses it in :meth:`TNNA.adapt`).

    Parameters
    ----------
    surrogate : Surrogate
        Fitted surrogate of ``simulator`` (through ``transform``), changed in place.
    simulator : callable
        ``simulator(params) -> outputs`` as for :func:`training_set`, matching the surrogate outputs.
    centre : DataArray (param,) or array_like (n_param,)
        The current estimate; a plain array is in the surrogate's order (as for :class:`TNNA`).
    bounds : mapping, array or DataArray
        Parameter bounds (see :func:`as_bounds`), matched to the surrogate's inputs as for
        :class:`TNNA`; the local box is clipped to them and the simulator gets the parameters
        in the surrogate's order.
    n_local : int
        Simulator runs per round, the centre included (at least 2).
    radius : float
        Half-width of the local box as a fraction of each parameter range.
    finetune_epochs : int
        Epochs of :meth:`Surrogate.fine_tune`.
    transform : callable, optional
        torch map from parameters to surrogate inputs (as for :class:`TNNA`).
    local : xarray.Dataset, optional
        Local runs of earlier rounds (this function's return value).
    seed : int
    scheduler : str, optional
        dask scheduler of the runs, as for :func:`training_set`.

    Returns
    -------
    xarray.Dataset
        ``params (sample, param)`` and ``output (sample, ...)`` of all local runs, ``local``
        first; the first run of each round is at its centre.
    """
    import torch

    b, given = _param_bounds(surrogate, bounds, transform)
    names, lim = b["param"].values, b.values
    if isinstance(centre, xr.DataArray) and "param" in centre.indexes:
        centre = centre.isel(param=order(centre.indexes["param"], b.indexes["param"], "centre 'param'", "the bounds"))
    else:
        _positional("centre", given, b, " or centre as a DataArray with a 'param' coord")
    centre = np.asarray(centre, float)
    if centre.shape != (len(names),):
        raise ValueError(f"centre needs {len(names)} values, got shape {centre.shape}")
    if n_local < 2:
        raise ValueError("n_local must be at least 2: the centre and one sample around it")
    half = radius * (lim[:, 1] - lim[:, 0])
    box = xr.DataArray(np.stack([np.maximum(centre - half, lim[:, 0]), np.minimum(centre + half, lim[:, 1])], 1),
                       dims=("param", "bound"), coords={"param": names})
    design = np.vstack([centre, latin_hypercube(box, n_local - 1, seed=seed).values])
    sims = training_set(simulator, xr.DataArray(design, dims=("sample", "param"), coords={"param": names}),
                        progress=False, scheduler=scheduler)
    output = surrogate.simulated(sims).drop_vars("sample")
    runs = xr.Dataset({"params": (("sample", "param"), design), "output": output}, coords={"param": names})
    merged = runs if local is None else xr.concat([local, runs], "sample")
    # kernel ridge keeps every sample it is fine-tuned on; the networks see all local runs again
    tune = runs if surrogate.kind == "kernel" else merged
    with torch.no_grad():
        m = torch.as_tensor(tune.params.values, dtype=torch.float32, device=surrogate.device)
        x = (transform(m) if transform is not None else m).cpu().numpy()
    x = xr.DataArray(x.reshape(len(x), *surrogate.in_shape), dims=("sample", *surrogate.x_template.dims))
    surrogate.fine_tune(x, tune.output, epochs=finetune_epochs)
    return merged
