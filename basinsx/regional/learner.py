"""A parameter network trained across gauged basins through the model's exact sensitivities.

Differentiable parameter learning (Tsai et al. 2021; Feng et al. 2022): one network maps basin
descriptors to model parameters and is trained on many basins at once by back-propagating the
streamflow loss through the hydrological model. Here the backward pass through the model is
``J^T dL/dq`` with the exact Jacobian ``J`` of :meth:`basinsx.models.Model.run`
(:class:`ExactRun`), not autograd through a time loop.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from .. import _serialization, models
from ..calibration.optimize import log_scaled, to_search
from ..embedding.data import attribute_units, static_features
from ..inputs import check_time, choose_pet, model_inputs, period_slice
from ..models.base import NegativePETWarning, forcing_message, snow_attr

# static_features and attribute_units live in basinsx.embedding.data, which ForwardLSTM shares
__all__ = ["ExactRun", "ParameterLearner", "run_exact", "to_physical", "window_loss"]

#: Options of :class:`ParameterLearner` besides those it names, with their defaults.
OPTIONS = {"layers": 2, "lr": 3e-3, "weight_decay": 1e-4, "steps_per_epoch": None, "log_scale": True,
           "progress": False}
LOSSES = ("nse", "kge")


def _torch():
    import torch

    return torch


def _exact_run_class():
    torch = _torch()

    class _ExactRun(torch.autograd.Function):
        """Flow of a batch of basins from the numba model; backward ``J^T grad_q`` with its exact Jacobian."""

        @staticmethod
        def forward(ctx, theta, model, forcing, warmup):
            th = theta.detach().cpu().double().numpy()
            sens = bool(ctx.needs_input_grad[0])
            q, jac = model.run_batch(th, forcing, warmup=warmup, sensitivities=sens)
            if sens:
                ctx.save_for_backward(torch.as_tensor(jac, dtype=theta.dtype, device=theta.device))
            return torch.as_tensor(q, dtype=theta.dtype, device=theta.device)

        @staticmethod
        def backward(ctx, grad_q):
            (jac,) = ctx.saved_tensors
            return torch.bmm(grad_q.unsqueeze(1), jac).squeeze(1), None, None, None

    return _ExactRun


_EXACT = []


def ExactRun():  # noqa: N802 (a class, built on first use so that importing basinsx needs no torch)
    """The ``torch.autograd.Function`` of :func:`run_exact`."""
    if not _EXACT:
        _EXACT.append(_exact_run_class())
    return _EXACT[0]


def run_exact(theta, model: models.Model, forcing: np.ndarray, warmup: int = 0):
    """Simulated flow ``(basin, T - warmup)`` as a differentiable function of ``theta (basin, d)``.

    Parameters
    ----------
    theta : torch.Tensor (basin, d)
        Parameters in physical units (any device and float dtype; the model runs on the CPU).
    model : Model
        From :func:`basinsx.models.get`.
    forcing : ndarray (basin, len(model.forcings), T)
        Checked forcing (PET >= 0), float64.
    warmup : int
        Leading days run but not returned.

    Returns
    -------
    torch.Tensor (basin, T - warmup)
        The flow; its gradient is ``J^T grad_q`` per basin with the model's exact Jacobian.
    """
    return ExactRun().apply(theta, model, forcing, int(warmup))


def to_physical(u, model: models.Model, log_scale: bool = True):
    """Parameters in physical units from ``u`` in the unit cube (torch), log-scaled like calibration.

    Parameters whose transform is ``"log"`` (``model.transforms``; by default those whose bounds span
    two decades or more, GR4J's ``x1``, ``x3``) are mapped on a log scale, the others linearly:
    ``theta = lo + u (hi - lo)``.
    """
    torch = _torch()
    lo = np.array([model.bounds[p][0] for p in model.params], dtype=np.float64)
    hi = np.array([model.bounds[p][1] for p in model.params], dtype=np.float64)
    log = log_scaled(model, log_scale)
    a = torch.as_tensor(to_search(lo, log), dtype=u.dtype, device=u.device)
    b = torch.as_tensor(to_search(hi, log), dtype=u.dtype, device=u.device)
    x = a + u * (b - a)
    log = torch.as_tensor(log, device=u.device)
    # exp of the log-scaled entries only: a linear one beyond exp's range (hbv's fc, 1000) gives inf there,
    # and the discarded branch's zero weight times inf a NaN gradient
    return torch.where(log, torch.exp(torch.where(log, x, torch.zeros_like(x))), x)


def _network(n_in: int, n_out: int, hidden: int, layers: int):
    nn = _torch().nn
    sizes = [n_in] + [hidden] * layers
    body = [m for a, b in zip(sizes[:-1], sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
    return nn.Sequential(*body, nn.Linear(sizes[-1], n_out), nn.Sigmoid())


def window_loss(q, obs, scale, kind: str = "nse", mean=None):
    """Mean over basins of ``1 - NSE`` or ``1 - KGE`` of a window, on the basins' training-period scales.

    ``"nse"``: squared error over ``scale``, the basin's flow variance. ``"kge"``:
    ``sqrt((r - 1)^2 + ((s_q - s_o) / sqrt(scale))^2 + ((m_q - m_o) / mean)^2)`` with the window's
    correlation ``r``, standard deviations ``s`` and means ``m``, and the basin's ``mean`` flow: this
    is ``1 - KGE`` of the window where its observed mean and deviation are the basin's, and stays
    bounded in a dry window, where KGE's ratios ``s_q / s_o``, ``m_q / m_o`` divide by about zero.
    ``obs`` NaN days are masked; basins without an observed day in the window do not count.
    """
    torch = _torch()
    if kind == "kge" and mean is None:
        raise ValueError("the KGE loss needs mean=, the basins' mean flow over the training period")
    mask = torch.isfinite(obs)
    n = mask.sum(1)
    has = n > 1
    y = torch.where(mask, obs, q.detach())  # NaN never enters the graph
    if kind == "nse":
        per = ((q - y) ** 2 * mask).sum(1) / (n.clamp(min=1) * torch.where(has, scale, torch.ones_like(scale)))
    else:
        w = mask.to(q.dtype) / n.clamp(min=1)[:, None]
        mq, my = (q * w).sum(1), (y * w).sum(1)
        dq, dy = (q - mq[:, None]) * mask, (y - my[:, None]) * mask
        sq, sy = torch.sqrt((dq * dq * w).sum(1) + 1e-12), torch.sqrt((dy * dy * w).sum(1) + 1e-12)
        r = (dq * dy * w).sum(1) / (sq * sy)
        per = torch.sqrt((r - 1) ** 2 + ((sq - sy) / torch.sqrt(scale)) ** 2 + ((mq - my) / mean) ** 2)
    return per[has].mean() if has.any() else q.sum() * 0.0


def _mlp_kernel(x: np.ndarray, *, portable: dict) -> np.ndarray:
    """Parameters ``(basin, param)`` from raw features ``(basin, feature)``: z-score, NaN -> mean, network."""
    torch = _torch()
    cfg, stats = portable["config"], portable["stats"]
    m = models.get(cfg["model"], snow=cfg["snow"])
    net = _network(x.shape[-1], len(m.params), cfg["hidden"], cfg["layers"])
    net.load_state_dict(portable["weights"])
    z = np.nan_to_num((np.asarray(x, dtype=np.float64) - stats["mean"]) / stats["std"], nan=0.0)
    with torch.no_grad():
        u = net(torch.as_tensor(z, dtype=torch.float32))
        return to_physical(u.double(), m, cfg["log_scale"]).numpy()


class ParameterLearner:
    """One network mapping basin descriptors to model parameters, trained on gauged basins.

    The network's inputs are z-scored static attributes (a missing value is the training mean,
    i.e. zero) and/or embeddings of a KGSSL encoder that reads forcings only
    (``encoder_flow=False``), so that ungauged basins get parameters too. A sigmoid output in
    the unit cube is mapped into the model's bounds (log scale for ``x1``, ``x3`` as in
    calibration). Training draws mini-batches of basins and time windows (each after a
    warm-up run of ``warmup`` days) and back-propagates the loss through the model with its
    exact Jacobian (:func:`run_exact`).

    Parameters
    ----------
    model : str
        A model of :func:`basinsx.models.available`.
    snow : bool
        Add the degree-day snow module (needs ``tmean``).
    attributes : list of str, optional
        Static variables ``(basin,)`` fed to the network.
    embedding : None, "kgssl", dict or KGSSL
        Embedding inputs: ``"kgssl"`` or a dict of :class:`~basinsx.embedding.KGSSL` options
        (plus ``"attributes"``, the attributes its head is trained on) fits a flow-free KGSSL
        on the training basins during :meth:`fit`; a fitted ``KGSSL(encoder_flow=False)`` is
        used as is.
    hidden : int
        Hidden units per layer (``layers`` hidden layers, ReLU).
    loss : {"nse", "kge"}
        Training loss per basin and window: squared error over the basin's flow variance in
        the training period (``1 - NSE``), or ``1 - KGE`` of the window.
    epochs : int
        Passes over the training basin-days (``steps_per_epoch`` batches each).
    seed : int
        Seeds the weights and the batches: two fits with the same seed agree.
    device : str
        torch device of the network; the model runs on the CPU.
    **options
        ``layers`` (2), ``lr`` (3e-3), ``weight_decay`` (1e-4), ``steps_per_epoch`` (default:
        enough batches to draw every training basin-day about once), ``log_scale`` (True),
        ``progress`` (False).

    Examples
    --------
    >>> learner = ParameterLearner("gr4j", snow=True, attributes=["p_mean", "aridity"], epochs=20)  # doctest: +SKIP
    >>> learner.fit(gauged, period=("1982", "1995"), pet="oudin")  # doctest: +SKIP
    >>> q = ungauged.hydro.simulate(learner.params(ungauged), pet="oudin")  # doctest: +SKIP
    """

    FORMAT = "basinsx.ParameterLearner/1"

    def __init__(self, model="gr4j", snow: bool = False, attributes=None, embedding=None, hidden: int = 64,
                 loss: str = "nse", epochs: int = 50, seed: int = 0, device: str = "cpu", **options):
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(f"unknown ParameterLearner options {unknown}; valid: {sorted(OPTIONS)}")
        if isinstance(attributes, str):
            raise TypeError("attributes must be a list of variable names, not a string")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}")
        m = models.get(model, snow=snow)
        self.config = {"model": m.name, "snow": snow, "attributes": list(attributes or []), "hidden": int(hidden),
                       "loss": loss, "epochs": int(epochs), "seed": int(seed), "device": device, **OPTIONS, **options}
        self.kgssl, self._embedding_options = _embedding_spec(embedding)
        if not self.config["attributes"] and self.kgssl is None and self._embedding_options is None:
            raise ValueError("the network needs inputs: attributes=[...], embedding=... or both")
        self.net = None
        self.stats = None
        self.history = []

    @property
    def model(self) -> models.Model:
        """The hydrological model."""
        return models.get(self.config["model"], snow=self.config["snow"])

    # ------------------------------------------------------------------ inputs
    def _features(self, ds: xr.Dataset, period, units: dict | None) -> xr.DataArray:
        """Raw network inputs ``(basin, feature)``: attributes (in ``units``), then embedding dimensions; lazy for
        dask input."""
        parts = []
        if self.config["attributes"]:
            parts.append(static_features(ds, self.config["attributes"], units))
        if self.kgssl is not None:
            emb = self.kgssl.transform(ds, period=period)["embedding"].astype(np.float64)
            names = np.array([f"embedding_{i}" for i in range(emb.sizes["embedding_dim"])])
            parts.append(emb.rename(embedding_dim="feature").assign_coords(feature=names).reset_coords(drop=True))
        return xr.concat(parts, dim="feature") if len(parts) > 1 else parts[0]

    # ------------------------------------------------------------------ fit
    def fit(self, ds: xr.Dataset, period=None, *, flow: str = "streamflow", pet=None, warmup: int = 365,
            window: int = 365, batch_basins: int = 32) -> ParameterLearner:
        """Train the network on the basins of ``ds`` with observed ``flow`` in ``period``.

        Parameters
        ----------
        ds : xr.Dataset
            Forcings of the model, observed ``flow`` and the attributes, dims ``(basin, time)``
            and ``(basin,)``. Basins without observed flow in ``period`` are left out (they
            can still be predicted by :meth:`params`); missing days are masked. The training
            period is loaded into memory.
        period : slice, (start, end) or None
            Training period; the warm-up of the first window runs on the days before it.
        flow : str
            Observed streamflow variable.
        pet : None, str or xr.DataArray
            The PET (see :func:`basinsx.inputs.choose_pet`); it also feeds the embedding.
        warmup, window : int
            Days of each training window's spin-up run, and days scored in it.
        batch_basins : int
            Basins per batch (one window each).

        Returns
        -------
        self

        Raises
        ------
        FloatingPointError
            A training step with a non-finite loss or gradient, naming its epoch, step, window and
            basins (it would make every later weight and parameter NaN).
        """
        torch = _torch()
        cfg = self.config
        m = self.model
        warmup, window, batch_basins = int(warmup), int(window), int(batch_basins)
        if warmup < 0 or window < 1 or batch_basins < 1:
            raise ValueError(f"need warmup >= 0, window >= 1, batch_basins >= 1; got {warmup}, {window}, "
                             f"{batch_basins}")
        ds, input_attrs = model_inputs(ds, m.forcings, flow=flow, pet=pet, where="ParameterLearner.fit")
        if flow not in ds:
            raise KeyError(f"ParameterLearner.fit needs observed flow {flow!r}; the dataset has {sorted(ds.data_vars)}")
        sub, obs, spin = _training_window(ds, period_slice(period), flow, warmup, window)
        basins = sub["basin"].values
        forcing = _checked_forcing(sub, m)
        if self._embedding_options is not None:
            from ..embedding import KGSSL

            opts = dict(self._embedding_options)
            head = opts.pop("attributes", None)
            opts = {"progress": cfg["progress"], "seed": cfg["seed"], "device": cfg["device"], **opts}
            self.kgssl = KGSSL(**opts, encoder_flow=False).fit(
                sub.isel(time=slice(spin, None)), attributes=head)
        raw = np.asarray(self._features(sub, _period_of(sub.isel(time=slice(spin, None))), None).values)
        mean, std = np.nanmean(raw, axis=0), np.nanstd(raw, axis=0)
        empty = ~np.isfinite(mean)
        if empty.any():
            raise ValueError(f"network inputs {np.flatnonzero(empty).tolist()} are NaN for every training basin")
        std = np.where(std > 0, std, 1.0)
        x = torch.as_tensor(np.nan_to_num((raw - mean) / std, nan=0.0), dtype=torch.float32, device=cfg["device"])
        size = min(batch_basins, len(basins))
        self._train(x, forcing, obs, warmup=warmup, window=window, spin=spin, size=size, names=basins,
                    dates=sub.indexes["time"])
        self.stats = {"mean": mean, "std": std, "basins": [str(b) for b in basins],
                      "period": [str(sub.indexes["time"][spin].date()), str(sub.indexes["time"][-1].date())],
                      "warmup": warmup, "window": window, "batch_basins": size, "flow": flow,
                      "pet": input_attrs.get("pet", ""),
                      "attribute_units": attribute_units(sub, self.config["attributes"])}
        return self

    def _train(self, x, forcing: np.ndarray, obs: np.ndarray, *, warmup: int, window: int, spin: int, size: int,
               names, dates):
        """The training loop of :meth:`fit`: sets ``net`` and ``history``.

        ``x`` are the normalised network inputs ``(basin, feature)``, ``forcing`` and ``obs`` the basins'
        forcing ``(basin, forcing, time)`` and observed flow ``(basin, time)`` with ``spin`` days of warm-up
        (not scored), ``names`` the basins and ``dates`` the days; each step runs ``size`` basins on one random
        window of ``warmup + window`` days. A non-finite loss or gradient raises ``FloatingPointError``: one such
        step would turn every weight, and so every parameter, NaN.
        """
        torch = _torch()
        cfg = self.config
        m = self.model
        scale = torch.as_tensor(np.nanvar(obs, axis=1) + 1e-3, dtype=torch.float32, device=cfg["device"])
        mean = torch.as_tensor(np.maximum(np.nanmean(obs, axis=1), 1e-3), dtype=torch.float64, device=cfg["device"])
        torch.manual_seed(cfg["seed"])
        net = _network(x.shape[1], len(m.params), cfg["hidden"], cfg["layers"]).to(cfg["device"])
        optimizer = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        rng = np.random.default_rng(cfg["seed"])
        n_basins, n_days = obs.shape[0], obs.shape[1] - warmup
        steps = cfg["steps_per_epoch"] or math.ceil(n_basins / size) * math.ceil((obs.shape[1] - spin) / window)
        self.history = []
        from tqdm.auto import tqdm

        for epoch in tqdm(range(cfg["epochs"]), disable=not cfg["progress"], desc="ParameterLearner", unit="epoch"):
            total = 0.0
            for step in range(steps):
                b = rng.choice(n_basins, size=size, replace=False)
                s = rng.integers(warmup, warmup + n_days - window + 1, size=size)
                days = s[:, None] + np.arange(-warmup, window)[None, :]
                theta = to_physical(net(x[b]).double(), m, cfg["log_scale"])
                q = run_exact(theta, m, forcing[b[:, None], :, days].transpose(0, 2, 1), warmup)
                target = torch.as_tensor(obs[b[:, None], days[:, warmup:]], dtype=q.dtype, device=q.device)
                loss = window_loss(q, target, scale[b].double(), cfg["loss"], mean=mean[b])
                optimizer.zero_grad()
                loss.backward()
                if not (torch.isfinite(loss) and all(torch.isfinite(w.grad).all() for w in net.parameters())):
                    raise FloatingPointError(
                        f"ParameterLearner.fit: non-finite loss ({float(loss)}) or gradient at epoch {epoch + 1}, "
                        f"step {step + 1} of {steps} (scored windows within {dates[s.min()].date()} .. "
                        f"{dates[s.max() + window - 1].date()}), basins {[str(v) for v in names[b]]}")
                optimizer.step()
                total += float(loss.detach())
            self.history.append(total / steps)
        self.net = net.eval()

    # ------------------------------------------------------------------ predict
    def _require_fitted(self):
        if self.net is None:
            raise RuntimeError("this ParameterLearner is not fitted; call fit() or ParameterLearner.load() first")

    def params(self, ds: xr.Dataset, period=None, *, pet=None) -> xr.DataArray:
        """Parameters ``(basin, param)`` in physical units for every basin of ``ds``, gauged or not.

        Parameters
        ----------
        ds : xr.Dataset
            The attributes ``(basin,)`` and, with an embedding, the forcings ``(basin, time)``
            its encoder reads (no flow needed). Dask input gives a lazy result.
        period : slice or (start, end), optional
            Period whose forcings are embedded; the training period by default.
        pet : None, str or xr.DataArray
            The PET fed to the embedding: None (default) is the one the learner was trained with
            (``stats["pet"]``), computed again or taken from ``ds`` as in :meth:`fit`; a PET given
            must be that same choice (a DataArray where it was trained on one), else ValueError
            naming both. Not used without an embedding.

        Returns
        -------
        xr.DataArray
            ``params(basin, param)`` with coordinate ``param_units`` and attrs ``model`` and
            ``snow`` (read by :func:`basinsx.simulation.simulate`, so they need not be repeated).
        """
        self._require_fitted()
        m = self.model
        if self.kgssl is not None:  # the embedding's windows must be consecutive days
            check_time(ds, "ParameterLearner.params")
            ds = _pet_as_trained(ds, pet, self.stats.get("pet"))
            period = period if period is not None else tuple(self.stats["period"])
        features = self._features(ds, period, self.stats.get("attribute_units"))  # older files: none recorded
        if features.chunks is not None:
            features = features.chunk({"feature": -1})
        portable = {"config": dict(self.config), "stats": self.stats,
                    "weights": {k: v.detach().cpu() for k, v in self.net.state_dict().items()}}
        out = xr.apply_ufunc(_mlp_kernel, features, input_core_dims=[["feature"]], output_core_dims=[["param"]],
                             dask="parallelized", output_dtypes=[np.float64],
                             dask_gufunc_kwargs={"output_sizes": {"param": len(m.params)}},
                             kwargs={"portable": portable})
        out = out.assign_coords(param=list(m.params), param_units=("param", [m.units[p] for p in m.params]))
        inputs = self.config["attributes"] + (["KGSSL embedding (forcings only)"] if self.kgssl is not None else [])
        out.attrs = {"long_name": f"{m.name} parameters from a regional network (units: param_units)",
                     "model": m.name, "snow": snow_attr(self.config["snow"]), "inputs": ", ".join(inputs),
                     "trained_on": f"{len(self.stats['basins'])} basins, {' .. '.join(self.stats['period'])}"}
        return out.rename("params")

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the network, its configuration, input statistics and the embedding encoder to one file.

        The file holds plain data and tensors only (:mod:`basinsx._serialization`).
        """
        self._require_fitted()
        content = {"config": self.config, "stats": self.stats, "weights": self.net.state_dict(),
                   "history": self.history, "kgssl": None}
        if self.kgssl is not None:
            k = self.kgssl
            content["kgssl"] = {"config": k.config, "stats": k.stats, "weights": k.net.state_dict(),
                                "training": k.state}
        _serialization.save(path, self.FORMAT, content)

    @classmethod
    def load(cls, path, device: str | None = None) -> ParameterLearner:
        """Read a learner written by :meth:`save`; no code in the file runs."""
        saved = _serialization.load(path, cls.FORMAT, kind="ParameterLearner", map_location=device or "cpu")
        cfg = dict(saved["config"])
        if device is not None:
            cfg["device"] = device
        learner = cls.__new__(cls)
        learner.config, learner.stats, learner.history = cfg, saved["stats"], list(saved["history"])
        learner._embedding_options = None
        learner.kgssl = None
        if saved["kgssl"] is not None:
            from ..embedding import KGSSL

            k = saved["kgssl"]
            kgssl = KGSSL(**{**k["config"], "device": cfg["device"]})
            kgssl.stats, kgssl.state = k["stats"], k["training"]
            kgssl.net = kgssl._build(kgssl._n_static())
            kgssl.net.load_state_dict(k["weights"])
            kgssl.net.eval()
            learner.kgssl = kgssl
        m = learner.model
        learner.net = _network(len(saved["stats"]["mean"]), len(m.params), cfg["hidden"], cfg["layers"])
        learner.net.load_state_dict(saved["weights"])
        learner.net = learner.net.to(cfg["device"]).eval()
        return learner


def _embedding_spec(embedding):
    """(fitted KGSSL or None, KGSSL options to fit or None) from the ``embedding`` argument."""
    if embedding is None:
        return None, None
    if isinstance(embedding, str):
        if embedding != "kgssl":
            raise ValueError(f"embedding must be None, 'kgssl', a dict of KGSSL options or a fitted KGSSL; "
                             f"got {embedding!r}")
        return None, {}
    if isinstance(embedding, dict):
        return None, dict(embedding)
    if getattr(embedding, "net", None) is None or not hasattr(embedding, "transform"):
        raise TypeError(f"embedding must be None, 'kgssl', a dict of KGSSL options or a fitted KGSSL; "
                        f"got {type(embedding).__name__}")
    if embedding.config.get("encoder_flow", True):
        raise ValueError("the KGSSL embedding's encoder reads streamflow, which ungauged basins lack: fit it with "
                         "KGSSL(encoder_flow=False)")
    return embedding, None


def _pet_as_trained(ds: xr.Dataset, pet, trained: str | None) -> xr.Dataset:
    """``ds`` with the PET the learner was trained with as ``pet``; ``trained`` is what :meth:`~ParameterLearner.fit`
    recorded (the description of :func:`basinsx.inputs.choose_pet`).

    ``pet=None`` chooses again what the description names (a variable of ``ds`` or a PET method); a DataArray
    cannot be chosen again and must be given. A PET given must be the same choice: another would feed the
    embedding other inputs than those it was trained on.
    """
    if not trained:  # not recorded by older basinsx: the PET as given
        return choose_pet(ds, pet)[0]
    from_array = trained.startswith("a DataArray")
    if pet is None:
        if from_array:
            raise ValueError(f"the learner was trained with PET {trained}; pass that PET as pet=")
        pet = trained.rpartition(" (")[0]  # "oudin (computed by basinsx.pet)", "pet (the data set's variable)"
    out, chosen = choose_pet(ds, pet)
    if chosen != trained and not (from_array and chosen.startswith("a DataArray")):
        raise ValueError(f"the learner was trained with PET {trained}; the PET given is {chosen}: its embedding "
                         f"would read another PET than it was trained on")
    return out


def _period_of(ds: xr.Dataset) -> tuple[str, str]:
    time = ds.indexes["time"]
    return str(time[0].date()), str(time[-1].date())


def _training_window(ds: xr.Dataset, period, flow: str, warmup: int, window: int):
    """The gauged basins of ``ds`` over ``period`` and up to ``warmup`` days before it, for training.

    Returns ``(sub, obs, spin)``: the selection, its observed ``flow (basin, time)`` with the
    ``spin`` warm-up days masked, and the warm-up days it has. Basins with fewer than two
    observed days are left out; fewer than two such basins are an error.
    """
    time = ds.indexes["time"]
    sel = ds.sel(time=period) if period is not None else ds
    if sel.sizes["time"] == 0:
        raise ValueError(f"period {period} selects no day of the record {time[0].date()} to {time[-1].date()}")
    first, last = time.get_loc(sel.indexes["time"][0]), time.get_loc(sel.indexes["time"][-1])
    spin = min(warmup, first)
    sub = ds.isel(time=slice(first - spin, last + 1))
    if sub.sizes["time"] < warmup + window:
        raise ValueError(f"the training data hold {sub.sizes['time']} days (with {spin} of warm-up before the "
                         f"period); a window needs warmup + window = {warmup + window}")
    obs = np.asarray(sub[flow].transpose("basin", "time").values, dtype=np.float64)
    obs[:, :spin] = np.nan  # warm-up days are not scored
    gauged = np.flatnonzero(np.isfinite(obs).sum(1) > 1)
    if len(gauged) < 2:
        raise ValueError(f"need at least two basins with observed {flow!r} in the training period; got "
                         f"{len(gauged)}")
    return sub.isel(basin=gauged), obs[gauged], spin


def _checked_forcing(ds: xr.Dataset, m: models.Model) -> np.ndarray:
    """``(basin, forcing, time)`` float64 forcing with negative PET clipped (warned once); NaN is an error."""
    forcing = np.stack([np.asarray(ds[v].transpose("basin", "time").values, dtype=np.float64)
                        for v in m.forcings], axis=1)
    for b, f in enumerate(forcing):
        problem = forcing_message(f, m.forcings, ds["time"].values, ds["basin"].values[b])
        if problem:
            raise ValueError(problem)
    pet = forcing[:, m.forcings.index("pet")]
    negative = (pet < 0).sum(1)
    if negative.any():
        from ..flags import user_stacklevel

        named = [f"{ds['basin'].values[b]} ({negative[b]} d)" for b in np.flatnonzero(negative)]
        warnings.warn(f"negative PET treated as zero in basins {', '.join(named[:10])}"
                      f"{' ...' if len(named) > 10 else ''}", NegativePETWarning, stacklevel=user_stacklevel())
        np.maximum(pet, 0.0, out=pet)
    return forcing
