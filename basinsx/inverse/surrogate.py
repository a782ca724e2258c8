"""Surrogates of forward models on labeled arrays: kernel ridge (MSVR, epsilon = 0), MLP, LeNet, ResNet.

All kinds learn the map from inputs ``x (sample, ...)`` to outputs ``y (sample, ...)`` on
min-max-scaled data (each input and output component to [0, 1]), as in Chen et al. (2025).
Neural kinds end in a sigmoid, are trained with the L1 loss, Adam and weight decay.
Inputs with one feature dim are vectors (a fully connected layer reshapes them to a 16 x 16
image for the CNNs); inputs with two feature dims are images fed to the CNNs directly.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._labels import align, paired, where

__all__ = ["Surrogate"]

KINDS = ("kernel", "mlp", "lenet", "resnet")


def _flat(da: xr.DataArray, name: str) -> np.ndarray:
    if not isinstance(da, xr.DataArray) or "sample" not in da.dims:
        raise ValueError(f"{name} must be a DataArray with a 'sample' dim")
    return np.asarray(da.transpose("sample", ...).values, dtype=np.float64)


class Surrogate:
    """A data-driven surrogate ``y = F(x)`` on labeled arrays.

    Inputs and outputs given later (``predict``, ``score``, ``fine_tune``, observations of an
    inversion) meet the training arrays by their labels: a dim (``param``, ``obs``, ``y``, ...)
    labeled on both sides is reordered to the training labels, and missing or unknown labels
    are an error naming them. A dim without labels (a plain array, a DataArray without that
    coordinate) is taken by position, in the order of the training arrays.

    Parameters
    ----------
    kind : {"kernel", "mlp", "lenet", "resnet"}
        ``kernel``: multi-output RBF kernel ridge regression from scikit-learn, the MSVR of
        Chen et al. (2025) with epsilon = 0 (independent regularised kernel least squares per
        output); ``alpha`` and ``gamma`` are chosen by 3-fold cross-validation unless given.
        ``mlp``: fully connected, Swish hidden layers of ``width`` units. ``lenet``: two
        convolution + max-pooling blocks, then 1024 and 512 units. ``resnet``: four stages of
        basic residual units (the first without down-sampling).
    hidden_layers, width : int
        MLP depth and width.
    epochs, batch_size, lr, weight_decay : training settings of the neural kinds (Adam, L1 loss).
    alpha, gamma : float, optional
        Kernel ridge regularisation and RBF width (in scaled input units).
    seed : int
        Seed of torch and of the batch shuffling.
    progress : bool
        Show a tqdm bar over epochs.
    output_scale : float, array or DataArray, optional
        The scale of each output in its units (a DataArray labeled like the outputs is matched
        by label). An output that varies in training by less than 1e-6 of its scale, e.g. the
        concentration at a well the plume never reaches, is taken as constant and gets its
        scale as span, so that a later deviation is not blown up. By default the scale is the
        largest training range of all outputs (a span of 1 for those taken as constant), which
        assumes one unit for all: outputs in other units (heads in Pa beside concentrations in
        kg/L) need ``output_scale``. ``fit`` warns naming the outputs it takes as constant
        although they vary, away from zero, relative to their own values (it cannot tell a
        quantity in small units that starts at zero from the tail of a plume).
    device : str or torch.device
        Where the neural kinds train and predict (``"cpu"``, ``"cuda"``, ...); inputs and
        outputs stay numpy arrays. :func:`torch_module` lives there too, so the tensors given
        to it (and a TNNA transform) must be on it.
    """

    def __init__(
        self,
        kind="mlp",
        *,
        hidden_layers=3,
        width=512,
        epochs=500,
        batch_size=50,
        lr=1e-3,
        weight_decay=0.0,
        alpha=None,
        gamma=None,
        seed=0,
        progress=False,
        output_scale=None,
        device="cpu",
    ):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.hidden_layers, self.width = hidden_layers, width
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.alpha, self.gamma, self.seed, self.progress = alpha, gamma, seed, progress
        self.output_scale, self.device = output_scale, device
        self.model = None
        self.loss_history = []

    # ---------------------------------------------------------------- scaling
    def _scale_x(self, X):
        return (X - self.x_lo) / self.x_span

    def scale_y(self, y):
        """Min-max scale outputs ``(..., n_out)`` (or a DataArray like the training ``y``) to [0, 1]."""
        if isinstance(y, xr.DataArray):
            y = self.flat_outputs(y)
        return (np.asarray(y, float) - self.y_lo) / self.y_span

    def unscale_y(self, z):
        return np.asarray(z) * self.y_span + self.y_lo

    def flat_outputs(self, y: xr.DataArray, name="observations") -> np.ndarray:
        """Outputs ``(..., n_out)`` of ``y`` aligned by label to the training outputs; other dims lead."""
        y = align(y, self.y_template, name)
        arr = np.ascontiguousarray(y.values, float)
        return arr.reshape(*arr.shape[: y.ndim - self.y_template.ndim], -1)

    def _samples(self, da, template, name) -> np.ndarray:
        """``(sample, n_features)`` of ``da (sample, ...)`` aligned by label to a training template."""
        if not isinstance(da, xr.DataArray) or "sample" not in da.dims:
            raise ValueError(f"{name} must be a DataArray with a 'sample' dim")
        extra = [d for d in da.dims if d != "sample" and d not in template.dims]
        if extra:
            raise ValueError(f"{name} has dims {extra} that the surrogate's {list(template.dims)} lack")
        da = align(da, template, name)
        return np.ascontiguousarray(da.values, float).reshape(da.sizes["sample"], -1)

    def output_samples(self, y: xr.DataArray, name="y") -> np.ndarray:
        """``(sample, n_out)`` of outputs ``y (sample, ...)`` aligned by label to the training outputs."""
        return self._samples(y, self.y_template, name)

    def simulated(self, runs: xr.Dataset) -> xr.DataArray:
        """The outputs in ``runs`` (a :func:`training_set`) that the surrogate models, ``(sample, ...)`` in the
        order and labels of its training outputs: the variable of the training ``y``'s name, or the only one."""
        names = [v for v in runs.data_vars if v != "params"]
        fitted = getattr(self, "y_name", None)  # not recorded by older basinsx
        name = fitted if fitted in names else names[0] if len(names) == 1 else None
        if name is None:
            raise ValueError(f"the simulator returns {names}; the surrogate was fitted on {fitted!r}"
                             + ("" if fitted else " (an unnamed y): fit it on a named output"))
        out = align(runs[name].transpose("sample", ...), self.y_template, "the simulator's outputs")
        return out.assign_coords({d: self.y_template[d] for d in self.y_template.dims if d in self.y_template.coords})

    # ---------------------------------------------------------------- fit
    def fit(self, x: xr.DataArray, y: xr.DataArray) -> Surrogate:
        """Fit on inputs ``x (sample, ...)`` and outputs ``y (sample, ...)``, paired by their sample labels."""
        y = paired(x, y)
        X, Y = _flat(x, "x"), _flat(y, "y")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"x has {X.shape[0]} samples, y has {Y.shape[0]}")
        if X.shape[0] < 4:
            raise ValueError("need at least 4 training samples")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
            raise ValueError("training data contain NaN or inf")
        self.x_template = x.isel(sample=0, drop=True)
        self.y_template = y.transpose("sample", ...).isel(sample=0, drop=True)
        self.y_name = y.name
        self.in_shape = X.shape[1:]
        if len(self.in_shape) > 2:
            raise ValueError("inputs need one (param) or two (y, x) feature dims")
        if len(self.in_shape) == 2 and self.kind in ("lenet", "resnet") and min(self.in_shape) < 8:
            raise ValueError("image inputs for the CNN surrogates need at least 8 x 8 cells")
        Xf, Yf = X.reshape(len(X), -1), Y.reshape(len(Y), -1)
        self.x_lo, self.x_span = Xf.min(0), np.where(np.ptp(Xf, 0) > 0, np.ptp(Xf, 0), 1.0)
        self.x_hi = Xf.max(0)  # with x_lo the training design, beyond which predictions extrapolate
        self.y_lo, self.y_span = Yf.min(0), self._output_span(Yf)
        Xs, Ys = self._scale_x(Xf), (Yf - self.y_lo) / self.y_span
        if self.kind == "kernel":
            self._fit_kernel(Xs, Ys)
        else:
            self._build()
            self._train(Xs, Ys, self.epochs)
        return self

    def _output_span(self, Y) -> np.ndarray:
        """Per output the training range, or its scale where it (almost) never varies: a 1e-30 span
        would blow up any later deviation."""
        ptp = np.ptp(Y, 0)
        scale = getattr(self, "output_scale", None)  # a surrogate pickled by an older basinsx has none
        if scale is not None:
            scale = align(scale, self.y_template, "output_scale") if isinstance(scale, xr.DataArray) else scale
            scale = np.broadcast_to(np.asarray(scale, float), self.y_template.shape).ravel()
            if not np.all(np.isfinite(scale) & (scale > 0)):
                raise ValueError("output_scale must be positive and finite")
            return np.where(ptp > 1e-6 * scale, ptp, scale)
        flat = ptp <= 1e-6 * ptp.max()
        # away from zero and not constant to round-off: a quantity in other units, not the tail of a plume
        varying = flat & (ptp > 1e-3 * np.abs(Y).max(0)) & (np.abs(Y).min(0) > 0.1 * ptp)
        if varying.any():
            import warnings

            warnings.warn(f"outputs at {where(self.y_template, varying.reshape(self.y_template.shape))} vary in "
                          f"training by under 1e-6 of the largest output range ({ptp.max():.3g}) and are taken as "
                          "constant (span 1): outputs in other units than the rest need output_scale=",
                          UserWarning, stacklevel=3)
        return np.where(flat, 1.0, ptp)

    def _fit_kernel(self, Xs, Ys):
        from sklearn.kernel_ridge import KernelRidge
        from sklearn.model_selection import GridSearchCV

        d = Xs.shape[1]
        if self.alpha is None or self.gamma is None:
            grid = {
                "alpha": [self.alpha] if self.alpha is not None else [1e-5, 1e-4, 1e-3, 1e-2],
                "gamma": [self.gamma] if self.gamma is not None else list(np.array([0.1, 0.3, 1.0, 3.0]) / d),
            }
            cv = GridSearchCV(KernelRidge(kernel="rbf"), grid, cv=3, scoring="neg_mean_squared_error")
            cv.fit(Xs, Ys)
            self.alpha, self.gamma = cv.best_params_["alpha"], cv.best_params_["gamma"]
        self.model = KernelRidge(kernel="rbf", alpha=self.alpha, gamma=self.gamma).fit(Xs, Ys)
        self.train_x = Xs

    def _build(self):
        import torch

        from . import _nets

        torch.manual_seed(self.seed)
        n_out = int(np.prod(self.y_template.shape)) or 1
        n_in = int(np.prod(self.in_shape))
        if self.kind == "mlp":
            self.model = _nets.mlp(n_in, n_out, self.hidden_layers, self.width)
        else:
            build = getattr(_nets, self.kind)
            self.model = build(tuple(self.in_shape) if len(self.in_shape) == 2 else (n_in,), n_out)
        self.model = self.model.float().to(self.device)

    def _train(self, Xs, Ys, epochs):
        import torch
        from tqdm.auto import trange

        gen = torch.Generator().manual_seed(self.seed)
        X = torch.as_tensor(Xs, dtype=torch.float32, device=self.device)
        Y = torch.as_tensor(Ys, dtype=torch.float32, device=self.device)
        for p in self.model.parameters():  # torch_module() may have frozen them
            p.requires_grad_(True)
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.model.train()
        for _ in trange(epochs, desc=f"training {self.kind}", disable=not self.progress):
            perm = torch.randperm(len(X), generator=gen).to(self.device)
            total = 0.0
            for k in range(0, len(X), self.batch_size):
                b = perm[k : k + self.batch_size]
                if len(b) < 2 and self.kind == "resnet":  # batch norm needs two samples
                    continue
                opt.zero_grad()
                loss = torch.nn.functional.l1_loss(self.model(X[b]), Y[b])
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            self.loss_history.append(total / len(X))
        self.model.eval()

    def fine_tune(self, x: xr.DataArray, y: xr.DataArray, epochs=100) -> Surrogate:
        """Continue training on new samples with the original scaling (refit for ``kernel``)."""
        self.check_fitted()
        Xs = self._scale_x(self._samples(x, self.x_template, "x"))
        Ys = self.scale_y(self._samples(paired(x, y), self.y_template, "y"))
        if self.kind == "kernel":
            from sklearn.kernel_ridge import KernelRidge

            Xa = np.concatenate([self.train_x, Xs])
            Ya = np.concatenate([self.model.predict(self.train_x), Ys])
            self.model = KernelRidge(kernel="rbf", alpha=self.alpha, gamma=self.gamma).fit(Xa, Ya)
            self.train_x = Xa
        else:
            self._train(Xs, Ys, epochs)
        return self

    # ---------------------------------------------------------------- predict
    def check_fitted(self):
        """Raise a RuntimeError unless :meth:`fit` has run."""
        if self.model is None:
            raise RuntimeError("the surrogate is not fitted; call fit(x, y) first")

    def predict_scaled(self, X) -> np.ndarray:
        """Scaled outputs ``(n, n_out)`` for raw inputs ``X (n, ...)`` (numpy, no labels)."""
        self.check_fitted()
        Xs = self._scale_x(np.asarray(X, float).reshape(len(X), -1))
        if self.kind == "kernel":
            return self.model.predict(Xs)
        import torch

        with torch.no_grad():
            return self.model(torch.as_tensor(Xs, dtype=torch.float32, device=self.device)).cpu().numpy().astype(float)

    def predict(self, x: xr.DataArray) -> xr.DataArray:
        """Outputs in physical units, labeled like the training ``y``, for inputs ``x (sample, ...)``
        (matched to the training inputs by label, see the class notes)."""
        self.check_fitted()
        X = self._samples(x, self.x_template, "x")
        Y = self.unscale_y(self.predict_scaled(X)).reshape(len(X), *self.y_template.shape)
        return xr.DataArray(
            Y, dims=("sample", *self.y_template.dims), coords={**self.y_template.coords, "sample": x["sample"].values}
        )

    def score(self, x: xr.DataArray, y: xr.DataArray) -> xr.Dataset:
        """RMSE and R^2 of the scaled outputs (the paper's normalised metrics), over all outputs."""
        self.check_fitted()
        pred = self.predict_scaled(self._samples(x, self.x_template, "x"))
        obs = self.scale_y(self._samples(paired(x, y), self.y_template, "y"))
        rmse = float(np.sqrt(np.mean((pred - obs) ** 2)))
        r2 = float(1 - np.sum((pred - obs) ** 2) / np.sum((obs - obs.mean()) ** 2))
        return xr.Dataset({"rmse": rmse, "r2": r2})

    def torch_module(self):
        """A frozen float32 torch module: raw inputs ``(batch, ...)`` to scaled outputs ``(batch, n_out)``."""
        from . import _nets

        self.check_fitted()
        if self.kind == "kernel":
            net = _nets.KernelNet(self.train_x, self.model.dual_coef_.reshape(len(self.train_x), -1), self.gamma)
        else:
            net = self.model
        mod = _nets.Scaled(net, self.x_lo, self.x_span).float().to(self.device)
        for p in mod.parameters():
            p.requires_grad_(False)
        mod.eval()
        return mod

    def __repr__(self):
        return f"Surrogate(kind={self.kind!r}, fitted={self.model is not None})"
