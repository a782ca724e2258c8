"""KGSSL: knowledge-guided self-supervised basin embeddings (Ghosh et al., KDD 2022).

An encoder maps a driver-response window (meteorological inputs and streamflow) to a vector;
three losses shape it: the reconstruction of the window's response from the embedding and its
drivers, a contrastive loss that pulls windows of the same basin together, and an optional
regression of z-scored static attributes (only basins with known attributes contribute).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from .. import flags
from ..io.conventions import check_time
from . import data
from .readout import fit_ridge
from .train import Persistent, training_data

#: What the ``missing_forcing_days`` flag of :meth:`KGSSL.transform` says.
MISSING_FORCING = "missing forcing read as the training mean"

#: Default configuration; every key can be passed to :class:`KGSSL`.
DEFAULTS = {
    "inputs": ("prcp", "tmean", "pet", "streamflow"),
    "flow": "streamflow",
    "encoder_flow": True,
    "dim": 32,
    "hidden": 32,
    "cell": "lstm",
    "window": 365,
    "stride": 182,
    "contrastive": "ntxent",
    "temperature": 0.1,
    "margin": 0.5,
    "w_rec": 0.1,
    "w_con": 1.0,
    "w_sup": 30.0,
    "head_hidden": 0,
    "readout": "ridge",
    "dropout": 0.3,
    "lr": 2e-3,
    "weight_decay": 1e-5,
    "epochs": 150,
    "patience": 20,
    "basins_per_batch": 16,
    "windows_per_basin": 4,
    "steps_per_epoch": None,
    "val_fraction": 0.2,
    "val_basins": None,
    "min_observed": 0.5,
    "batch_size_inference": 256,
    "seed": 0,
    "device": "cpu",
    "progress": True,
}


class KGSSL(Persistent):
    """Knowledge-guided self-supervised basin embeddings.

    Parameters
    ----------
    **config
        Keyword options, listed below; unknown names raise ``TypeError``.

    Other Parameters
    ----------------
    inputs : sequence of str
        Dynamic variables ``(basin, time)`` of a window; must contain ``flow``.
    flow : str
        The response variable, transformed ``log10(q + 0.005)`` and reconstructed (masked where missing).
    encoder_flow : bool
        Whether the encoder reads the flow (default). ``False``: it reads the drivers and the
        season only; the flow is just what the decoder reconstructs in training, so
        ``transform`` needs no flow and embeds ungauged basins (every window counts; a flow
        variable, if present, is ignored).
    dim, hidden : int
        Embedding size and recurrent state size.
    cell : {"gru", "lstm"}
        Recurrent cell of encoder and decoder.
    window, stride : int
        Window length in days (leap days are dropped) and the stride of the windows that are
        averaged into a basin's embedding at inference. Training draws windows at random starts.
    contrastive : {"ntxent", "triplet"}
        Knowledge-guided loss: supervised NT-Xent (``temperature``) or batch-hard triplet (``margin``).
    w_rec, w_con, w_sup : float
        Loss weights of reconstruction, contrastive and attribute terms.
    head_hidden : int
        Hidden units of the attribute head; 0 (default) is a linear head.
    readout : {"ridge", "head"}
        How ``attributes_pred`` is made: a ridge regression fitted after training on the
        training basins' mean embeddings over the training period (penalty per attribute by
        leave-one-out error; default), or the trained head applied to the mean embedding.
        The head is trained either way: its loss shapes the embedding.
    dropout, lr, weight_decay : float
        Regularisation and AdamW settings.
    epochs, patience : int
        Maximum epochs and early-stopping patience (on the validation loss).
    basins_per_batch, windows_per_basin : int
        A batch holds ``windows_per_basin`` windows of each of ``basins_per_batch`` basins.
    steps_per_epoch : int or None
        Default: enough batches to draw each training day about once.
    val_fraction : float
        The last fraction of the training period (per basin) is held out for validation and
        early stopping; no validation when it is shorter than one window. Not used with ``val_basins``.
    val_basins : float, list or None
        Early stopping on basins held out of training, the criterion for basins never seen in
        training: a fraction of the basins with attributes (drawn with ``seed``) or a list of
        basin labels. Their windows take no gradient step and do not enter the input
        normalisation; the criterion is the z-scored attribute MSE of the readout on their
        mean embeddings (the ridge map refitted each epoch on the other basins, or the head).
        The whole period is used for training and the final ridge map is fitted on all basins,
        held-out ones included. Ignored without attributes (the period validation applies).
    min_observed : float
        Minimum fraction of days with observed flow for a window to be used.
    seed : int
        Seeds the weights, the batch sampling and dropout: two fits with the same seed agree.
    device : str
        torch device, ``"cpu"`` by default.
    progress : bool
        Show a tqdm progress bar.

    Examples
    --------
    >>> model = KGSSL(epochs=20).fit(ds, attributes=["p_mean", "aridity"], period=("1999", "2008"))  # doctest: +SKIP
    >>> out = model.transform(ds, period=("1989", "1998"))  # doctest: +SKIP
    >>> out.embedding.dims, out.attributes_pred.dims  # doctest: +SKIP
    (('basin', 'embedding_dim'), ('basin', 'attribute'))
    """

    FORMAT = "basinsx.KGSSL/2"

    def __init__(self, **config):
        unknown = sorted(set(config) - set(DEFAULTS))
        if unknown:
            raise TypeError(f"unknown KGSSL options {unknown}; valid: {sorted(DEFAULTS)}")
        self.config = {**DEFAULTS, **config}
        self.config["inputs"] = tuple(self.config["inputs"])
        if self.config["flow"] not in self.config["inputs"]:
            raise ValueError(f"the response {self.config['flow']!r} must be one of the inputs {self.config['inputs']}")
        if self.config["contrastive"] not in ("ntxent", "triplet"):
            raise ValueError(f"contrastive must be 'ntxent' or 'triplet', got {self.config['contrastive']!r}")
        if self.config["readout"] not in ("head", "ridge"):
            raise ValueError(f"readout must be 'head' or 'ridge', got {self.config['readout']!r}")
        self.net = None
        self.stats = None
        self.state = None

    # ------------------------------------------------------------------ helpers
    @property
    def attributes(self) -> tuple[str, ...]:
        """Names of the attributes the supervised head predicts (empty without a head)."""
        return tuple(self.stats["attributes"]) if self.stats else ()

    @property
    def history(self) -> list[dict]:
        """Per-epoch training and validation losses of the last fit."""
        return list(self.state["history"]) if self.state else []

    def _channel_layout(self):
        inputs = self.config["inputs"]
        flow_index = inputs.index(self.config["flow"])
        n_in = len(inputs)
        drivers = [i for i in range(n_in) if i != flow_index] + [n_in + 1, n_in + 2]
        return flow_index, n_in, drivers

    def _build(self, n_attributes: int):
        import torch

        from .model import KGSSLNet

        torch.manual_seed(self.config["seed"])
        _, n_in, drivers = self._channel_layout()
        n_channels = n_in + 3 if self.config["encoder_flow"] else len(drivers)
        return KGSSLNet(n_channels, len(drivers), self.config["dim"], self.config["hidden"], n_attributes,
                        cell=self.config["cell"], dropout=self.config["dropout"],
                        head_hidden=self.config["head_hidden"]).to(self.config["device"])

    # ------------------------------------------------------------------ fit
    def fit(self, ds: xr.Dataset, attributes=None, period=None, *, checkpoint=None, resume: bool = False) -> KGSSL:
        """Train on the windows of ``ds`` in ``period``.

        Parameters
        ----------
        ds : xr.Dataset
            Dynamic ``inputs (basin, time)`` and, if ``attributes`` is given, those static
            variables ``(basin,)``. NaN attributes are allowed: those basins only contribute
            to the self-supervised losses. The training period is loaded into memory.
        attributes : list of str, optional
            Static variables for the supervised head; None trains self-supervised only.
        period : slice or (start, end), optional
            Training period; the last ``val_fraction`` of it is the validation period.
        checkpoint : path, optional
            File written after every epoch (weights, config, normalisation, training state).
        resume : bool
            Continue from ``checkpoint`` if it exists (same data and configuration expected).

        Returns
        -------
        self
        """
        cfg = self.config
        if isinstance(attributes, str):
            raise TypeError("attributes must be a list of variable names, not a string")
        attributes = [] if attributes is None else list(attributes)
        da = data.stack_inputs(ds, cfg["inputs"], period)
        check_time(ds, "KGSSL.fit")  # windows must be consecutive days
        x = np.asarray(da.values)  # training needs the data in memory
        flow_index = self._channel_layout()[0]
        n_time = x.shape[-1]
        y, attr_mean, attr_std = _attribute_targets(ds, attributes, x.shape[0])
        held = np.zeros(0, dtype=np.int64)
        if attributes and cfg["val_basins"] is not None:
            has_window = [len(s) > 0 for s in data.valid_starts(np.isfinite(x[:, flow_index]), cfg["window"],
                                                                  cfg["min_observed"])]
            held = _held_out_basins(cfg["val_basins"], da["basin"].values, np.isfinite(y).any(axis=1) & has_window,
                                    cfg["seed"])
        fitted = np.setdiff1d(np.arange(x.shape[0]), held)
        n_val = 0 if len(held) else round(cfg["val_fraction"] * n_time)
        if n_val < cfg["window"]:
            n_val = 0
        n_train = n_time - n_val
        if n_train < cfg["window"]:
            raise ValueError(f"training period has {n_train} days (leap days dropped, validation removed); "
                             f"a window needs {cfg['window']}")
        mean, std = data.input_stats(data.transform_inputs(x[fitted][..., :n_train], flow_index))
        channels, observed = data.encoder_channels(x, mean, std, flow_index, da["time"].dt.dayofyear.values)
        self.stats = {"mean": mean, "std": std, "attributes": attributes,
                      "attr_mean": attr_mean.astype(np.float32), "attr_std": attr_std.astype(np.float32),
                      "val_basins": da["basin"].values[held].tolist(),
                      "training_data": training_data(da["basin"].values, da["time"].values, x, y)}

        train_starts = data.valid_starts(observed[:, :n_train], cfg["window"], cfg["min_observed"])
        eligible = np.array([i for i in fitted if len(train_starts[i])])
        if len(eligible) < 2:
            raise ValueError("need at least two basins with a window of observed flow in the training period "
                             f"(window {cfg['window']} days, min_observed {cfg['min_observed']})")
        val_batches = _validation_batches(observed, n_train, cfg) if n_val else []
        self._train(channels, observed, y, held, fitted, train_starts, eligible, val_batches, checkpoint, resume)
        return self

    def _train(self, channels, observed, y, held, fitted, train_starts, eligible, val_batches, checkpoint, resume):
        """The training loop of :meth:`fit` on prepared windows; sets ``net``, ``state`` and the ridge readout.

        ``channels`` are the encoder channels ``(basin, channel, time)``, ``observed`` the flow mask ``(basin, time)``;
        ``y`` the z-scored attributes; ``held`` and ``fitted`` the basins held out of and used in training;
        ``train_starts`` each basin's valid window starts, ``eligible`` the basins that have one;
        ``val_batches`` the ``(basin, start)`` batches of the period validation.
        """
        import torch

        from .model import masked_mse, ntxent_loss, triplet_loss
        from .train import fit_loop, optimizer_step

        cfg = self.config
        attributes = self.stats["attributes"]
        flow_index, n_in, drivers = self._channel_layout()
        device = cfg["device"]
        net = self._build(len(attributes))
        optimizer = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        y_t = torch.as_tensor(y, dtype=torch.float32, device=device)
        p = min(cfg["basins_per_batch"], len(eligible))
        k = cfg["windows_per_basin"]
        steps = cfg["steps_per_epoch"] or max(1, math.ceil(
            sum(len(s) for s in train_starts) / (cfg["window"] * p * k)))
        contrastive = ntxent_loss if cfg["contrastive"] == "ntxent" else triplet_loss
        con_arg = cfg["temperature"] if cfg["contrastive"] == "ntxent" else cfg["margin"]
        seen = _encoder_channels(cfg)

        def losses(basins, starts):
            xb = torch.as_tensor(data.gather_windows(channels, basins, starts, cfg["window"]), device=device)
            labels = torch.as_tensor(basins, device=device)
            z = net.encode(xb[..., seen])
            rec = net.decode(z, xb[..., drivers])
            loss = cfg["w_rec"] * masked_mse(rec, xb[..., flow_index], xb[..., n_in] > 0.5)
            loss = loss + cfg["w_con"] * contrastive(z, labels, con_arg)
            if attributes:
                target = y_t[labels]
                loss = loss + cfg["w_sup"] * masked_mse(net.predict_attributes(z), target, torch.isfinite(target))
            return loss

        def run_epoch(rng):
            total = 0.0
            for _ in range(steps):
                chosen = rng.choice(eligible, size=p, replace=False)
                basins = np.repeat(chosen, k)
                starts = np.concatenate([rng.choice(train_starts[b], size=k) for b in chosen])
                total += optimizer_step(optimizer, net, losses(basins, starts))
            return total / steps

        def validate():
            if len(held):  # attribute error on the held-out basins, readout fitted on the others
                emb = _mean_embeddings(net, channels, observed, cfg)
                ridge = fit_ridge(emb[fitted], y[fitted]) if cfg["readout"] == "ridge" else None
                return float(np.nanmean((_readout(net, emb[held], ridge, device) - y[held]) ** 2))
            if not val_batches:
                return None
            return float(np.mean([losses(b[:, 0], b[:, 1]).item() for b in val_batches]))

        state, save = self._checkpointing(checkpoint, resume, net, device, "configuration or attributes",
                                          lambda saved: list(saved["stats"]["attributes"]) == attributes)
        self.state = fit_loop(net, optimizer, run_epoch, validate, epochs=cfg["epochs"], patience=cfg["patience"],
                              rng=np.random.default_rng(cfg["seed"]), state=state, save=save,
                              progress=cfg["progress"], desc="KGSSL")
        self.net = net.eval()
        if attributes and cfg["readout"] == "ridge":  # one row per basin: its mean embedding over the period
            self.stats["ridge"] = fit_ridge(_mean_embeddings(net, channels, observed, cfg), y)

    # ------------------------------------------------------------------ transform
    def _require_fitted(self):
        if self.net is None:
            raise RuntimeError("this KGSSL model is not fitted; call fit() or KGSSL.load() first")

    def transform(self, ds: xr.Dataset, period=None, stride: int | None = None) -> xr.Dataset:
        """Embeddings (and attribute predictions) of every basin of ``ds`` in ``period``.

        A basin's embedding is the mean over its windows (every ``stride`` days) with at least
        ``min_observed`` of the flow observed; NaN when it has none. Dask input gives a lazy
        result with one task per basin chunk.

        Parameters
        ----------
        ds : xr.Dataset
            The model's ``inputs`` as ``(basin, time)`` variables.
        period : slice or (start, end), optional
            Period whose windows are embedded; the whole record by default.
        stride : int, optional
            Days between inference windows; the model's ``stride`` by default. The readout
            stays the one fitted at the model's stride.

        Returns
        -------
        xr.Dataset
            ``embedding(basin, embedding_dim)`` and, when fitted with attributes,
            ``attributes_pred(basin, attribute)`` in the attributes' own units; the flag
            ``missing_forcing_days(basin)`` counts the days whose forcing was missing and read as
            the training mean (warned once for in-memory input; :func:`basinsx.flags.warn` for a
            computed lazy result).
        """
        self._require_fitted()
        cfg = {**self.config, "stride": stride or self.config["stride"]}
        if not cfg["encoder_flow"] and cfg["flow"] not in ds:  # an ungauged basin: the encoder never reads it
            driver = next(v for v in cfg["inputs"] if v != cfg["flow"])
            ds = ds.assign({cfg["flow"]: xr.full_like(ds[driver], np.nan).assign_attrs(units="mm d-1")})
        da = data.stack_inputs(ds, cfg["inputs"], period)
        check_time(ds, "KGSSL.transform")
        if da.sizes["time"] < cfg["window"]:
            raise ValueError(f"period has {da.sizes['time']} days (leap days dropped); a window needs {cfg['window']}")
        if da.chunks is not None:
            da = da.chunk({"variable": -1, "time": -1})
        attributes = self.attributes
        model = self._portable()
        model["config"] = cfg
        kwargs = {"dayofyear": da["time"].dt.dayofyear.values, "model": model}
        out_dims = [["embedding_dim"]] + ([["attribute"]] if attributes else [])
        sizes = {"embedding_dim": cfg["dim"], "attribute": len(attributes)}
        result = xr.apply_ufunc(
            _transform_kernel, da, kwargs=kwargs, input_core_dims=[["variable", "time"]],
            output_core_dims=out_dims, dask="parallelized", output_dtypes=[np.float32] * len(out_dims),
            dask_gufunc_kwargs={"output_sizes": {k: sizes[k] for k in ("embedding_dim", "attribute")[:len(out_dims)]}},
        )
        result = result if isinstance(result, tuple) else (result,)
        emb = result[0].assign_coords(embedding_dim=np.arange(cfg["dim"]))
        emb.attrs = {"long_name": "KGSSL basin embedding (mean over windows)", "units": "1"}
        out = xr.Dataset({"embedding": emb})
        if attributes:
            pred = result[1].assign_coords(attribute=list(attributes))
            pred.attrs = {"long_name": "static attributes regressed from the embedding",
                          "units": "those of each attribute"}
            out["attributes_pred"] = pred
        drivers = [v for v in cfg["inputs"] if v != cfg["flow"]]
        missing = da.sel(variable=drivers).isnull().any("variable").sum("time").astype(np.int64)
        out["missing_forcing_days"] = missing.assign_attrs(
            long_name="days with a missing forcing, read as the training mean", units="d",
            flag=f"{MISSING_FORCING} (days)")
        for c in ("gauge_id", "gauge_name", "gauge_lat", "gauge_lon", "area"):
            if c in ds.coords and ds[c].dims == ("basin",):
                out = out.assign_coords({c: ds[c]})
        times = da["time"].values
        out.attrs = {"model": "KGSSL (Ghosh et al. 2022)", "inputs": ", ".join(cfg["inputs"]),
                     "period": f"{np.datetime_as_string(times[0], 'D')} .. {np.datetime_as_string(times[-1], 'D')}",
                     "window": cfg["window"], "stride": cfg["stride"]}
        if missing.chunks is None:  # computed now: summarise now, once
            flags.warn(out)
        return out

    def _portable(self) -> dict:
        """Plain, picklable description of the fitted model for the inference kernel."""
        return {"config": dict(self.config), "stats": dict(self.stats),
                "weights": {k: v.detach().cpu() for k, v in self.net.state_dict().items()}}

    # ------------------------------------------------------------------ persistence
    def _n_static(self) -> int:
        return len(self.stats["attributes"])


def _mean_embeddings(net, channels: np.ndarray, observed: np.ndarray, cfg: dict) -> np.ndarray:
    """``(basin, dim)`` mean embedding of each basin's windows every ``stride`` days (NaN without one)."""
    import torch

    seen = _encoder_channels(cfg)
    if not cfg["encoder_flow"]:  # the encoder reads no flow: every window counts, gauged or not
        observed = np.ones_like(observed)
    grid = data.strided_starts(channels.shape[-1], cfg["window"], cfg["stride"])
    ok = [np.intersect1d(grid, s) for s in data.valid_starts(observed, cfg["window"], cfg["min_observed"])]
    emb = np.full((channels.shape[0], cfg["dim"]), np.nan, dtype=np.float32)
    basins = np.concatenate([np.full(len(s), b) for b, s in enumerate(ok)]).astype(np.int64)
    starts = np.concatenate(ok).astype(np.int64)
    if not len(basins):
        return emb
    zs = []
    with torch.no_grad():
        for i in range(0, len(basins), cfg["batch_size_inference"]):
            sl = slice(i, i + cfg["batch_size_inference"])
            xb = torch.as_tensor(data.gather_windows(channels, basins[sl], starts[sl], cfg["window"]),
                                 device=cfg["device"])
            zs.append(net.encode(xb[..., seen]).cpu().numpy())
    z = np.concatenate(zs)
    for b in np.unique(basins):
        emb[b] = z[basins == b].mean(axis=0)
    return emb


def _attribute_targets(ds: xr.Dataset, attributes: list, n_basins: int):
    """Z-scored static ``attributes`` ``(basin, attribute)`` with their means and spreads (NaN allowed).

    Without attributes, an empty ``(basin, 0)`` array. A spread of zero is taken as one.
    """
    if not attributes:
        return np.full((n_basins, 0), np.nan), np.zeros(0), np.zeros(0)
    raw = data.static_array(ds, attributes)
    attr_mean = np.nanmean(raw, axis=0)
    attr_std = np.nanstd(raw, axis=0)
    if not np.all(np.isfinite(attr_mean)):
        bad = [a for a, m in zip(attributes, attr_mean) if not np.isfinite(m)]
        raise ValueError(f"attributes {bad} are NaN for every basin")
    attr_std = np.where(attr_std > 0, attr_std, 1.0)
    return (raw - attr_mean) / attr_std, attr_mean, attr_std


def _validation_batches(observed: np.ndarray, n_train: int, cfg: dict) -> list:
    """``(basin, start)`` batches of the strided windows after day ``n_train`` (the validation period).

    A basin's windows stay together; empty when fewer than two basins have a window.
    """
    n_val = observed.shape[1] - n_train
    grid = data.strided_starts(n_val, cfg["window"], cfg["stride"])
    val_index = [(b, n_train + s) for b, starts in enumerate(
        data.valid_starts(observed[:, n_train:], cfg["window"], cfg["min_observed"]))
        for s in np.intersect1d(grid, starts)]
    if len({b for b, _ in val_index}) < 2:
        return []
    val_index = np.array(val_index)
    size = cfg["basins_per_batch"] * cfg["windows_per_basin"]
    order = np.argsort(val_index[:, 0], kind="stable")
    return [val_index[order[i:i + size]] for i in range(0, len(order), size)]


def _encoder_channels(cfg: dict) -> slice | list[int]:
    """Channels of :func:`data.encoder_channels` the encoder reads: all, or without the flow and its flag."""
    if cfg["encoder_flow"]:
        return slice(None)
    n_in, flow_index = len(cfg["inputs"]), cfg["inputs"].index(cfg["flow"])
    return [i for i in range(n_in) if i != flow_index] + [n_in + 1, n_in + 2]


def _transform_kernel(x: np.ndarray, *, dayofyear: np.ndarray, model: dict):
    """Embeddings ``(basin, dim)`` (and z-scored-then-restored attributes) of raw inputs ``(basin, variable, time)``."""
    cfg, stats = model["config"], model["stats"]
    net = KGSSL(**{**cfg, "progress": False})._build(len(stats["attributes"]))
    net.load_state_dict(model["weights"])
    net.eval()
    flow_index = cfg["inputs"].index(cfg["flow"])
    channels, observed = data.encoder_channels(x, stats["mean"], stats["std"], flow_index, dayofyear)
    emb = _mean_embeddings(net, channels, observed, cfg)
    if not stats["attributes"]:
        return emb
    pred = _readout(net, emb, stats["ridge"] if cfg["readout"] == "ridge" else None, cfg["device"])
    return emb, (pred * stats["attr_std"] + stats["attr_mean"]).astype(np.float32)


def _readout(net, emb: np.ndarray, ridge: dict | None, device) -> np.ndarray:
    """z-scored attributes of mean embeddings ``(basin, dim)``: the ridge map, or the head without one.

    Rows of basins without an embedding are NaN.
    """
    import torch

    if ridge is not None:
        pred = np.nan_to_num(emb) @ ridge["coef"] + ridge["intercept"]
    else:
        with torch.no_grad():
            pred = net.predict_attributes(torch.as_tensor(np.nan_to_num(emb), device=device)).cpu().numpy()
    pred[~np.isfinite(emb[:, 0])] = np.nan
    return pred


def _held_out_basins(spec, labels: np.ndarray, candidates: np.ndarray, seed: int) -> np.ndarray:
    """Sorted indices of the validation basins: a fraction of ``candidates`` drawn with ``seed``, or listed labels.

    ``candidates`` marks the basins with a known attribute and a training window; at least two
    must be held out and three left for the readout.
    """
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if not 0 < spec < 1:
            raise ValueError(f"val_basins as a fraction must lie in (0, 1), got {spec}")
        pool = np.flatnonzero(candidates)
        held = np.sort(np.random.default_rng([seed, 1]).permutation(pool)[:round(spec * len(pool))])
    else:
        index = {str(b): i for i, b in enumerate(labels)}
        unknown = [b for b in spec if str(b) not in index]
        if unknown:
            raise KeyError(f"val_basins {unknown} are not basins of the dataset")
        held = np.unique([index[str(b)] for b in spec]).astype(np.int64)
        unusable = [str(labels[i]) for i in held if not candidates[i]]
        if unusable:
            raise ValueError(f"val_basins {unusable} have no known attribute or no training window")
    if len(held) < 2 or candidates.sum() - len(held) < 3:
        raise ValueError(f"val_basins holds out {len(held)} of {int(candidates.sum())} basins with attributes and "
                         "a training window; at least 2 must be held out and 3 left for training")
    return held


def embed(ds: xr.Dataset, inputs=("prcp", "tmean", "pet", "streamflow"), attributes=None, period=None,
          dim: int = 32, epochs: int = DEFAULTS["epochs"], seed=0, **config) -> xr.Dataset:
    """Fit :class:`KGSSL` on ``ds`` and return the embeddings of the same basins and period.

    ``ds.hydro.embed(...)`` calls this. Extra keyword arguments go to :class:`KGSSL`.

    Parameters
    ----------
    seed : int or sequence of int
        One seed, or several for a seed ensemble: one model per seed, and ``attributes_pred``
        is the mean of their predictions (a standard variance reduction for deep models).
        Embeddings of different seeds live in unrelated coordinate systems, so they are not
        averaged but stacked along a ``seed`` dimension.

    Returns
    -------
    xr.Dataset
        ``embedding(basin, embedding_dim)`` (``(seed, basin, embedding_dim)`` for a sequence of
        seeds) and, with ``attributes``, ``attributes_pred(basin, attribute)``; the flag
        ``missing_forcing_days(basin)`` as :meth:`KGSSL.transform`.
    """
    if np.ndim(seed) == 0:
        model = KGSSL(inputs=inputs, dim=dim, epochs=epochs, seed=seed, **config)
        return model.fit(ds, attributes=attributes, period=period).transform(ds, period=period)
    seeds = [int(s) for s in seed]
    if not seeds:
        raise ValueError("seed must be an int or a non-empty sequence of ints")
    with warnings.catch_warnings():  # the flag is the same for every seed: summarised once, below
        warnings.filterwarnings("ignore", message=f"{MISSING_FORCING} in ")
        runs = [embed(ds, inputs, attributes, period, dim, epochs, s, **config) for s in seeds]
    out = xr.concat([r.drop_vars("missing_forcing_days") for r in runs],
                    dim=xr.DataArray(seeds, dims="seed", name="seed"), data_vars="all",
                    coords="minimal", compat="override", combine_attrs="override")
    out["missing_forcing_days"] = runs[0]["missing_forcing_days"]
    if out["missing_forcing_days"].chunks is None:
        flags.warn(out)
    if "attributes_pred" in out:
        out["attributes_pred"] = out["attributes_pred"].mean("seed", keep_attrs=True)
        out["attributes_pred"].attrs["long_name"] += f" (mean of {len(seeds)} seeds)"
    return out


def evaluate(pred, truth, dim: str = "basin") -> xr.Dataset:
    """Per-attribute Pearson r and RMSE in z-units of predicted against true attributes.

    Parameters
    ----------
    pred : xr.DataArray or xr.Dataset
        ``attributes_pred(basin, attribute)`` (a Dataset from :meth:`KGSSL.transform` works).
    truth : xr.Dataset or xr.DataArray
        True attributes: a Dataset with one ``(basin,)`` variable per attribute, or a
        DataArray ``(basin, attribute)``.
    dim : str
        Dimension over which r and RMSE are computed.

    Returns
    -------
    xr.Dataset
        ``r(attribute)``, ``rmse(attribute)`` (RMSE divided by the standard deviation of the
        truth over ``dim``) and ``n(attribute)``; basins where either side is NaN are skipped.
    """
    if isinstance(pred, xr.Dataset):
        if "attributes_pred" not in pred:
            raise KeyError("pred has no 'attributes_pred'; fit KGSSL with attributes=[...]")
        pred = pred["attributes_pred"]
    if "attribute" not in pred.dims or dim not in pred.dims:
        raise ValueError(f"pred must have dims ({dim!r}, 'attribute'), it has {pred.dims}")
    names = [str(a) for a in pred["attribute"].values]
    if isinstance(truth, xr.Dataset):
        missing = [a for a in names if a not in truth]
        if missing:
            raise KeyError(f"truth lacks attributes {missing}")
        truth = truth[names].to_dataarray("attribute")
    truth = truth.sel(attribute=names)
    pred, truth = xr.align(pred, truth, join="inner")
    both = pred.notnull() & truth.notnull()
    p, t = pred.where(both), truth.where(both)
    r = xr.corr(p, t, dim=dim)
    rmse = np.sqrt((((p - t) / t.std(dim)) ** 2).mean(dim))
    out = xr.Dataset({"r": r, "rmse": rmse, "n": both.sum(dim)})
    out["r"].attrs = {"long_name": "Pearson correlation of predicted and true attribute", "units": "1"}
    out["rmse"].attrs = {"long_name": "root-mean-square error in units of the true attribute's standard deviation",
                         "units": "1"}
    out["n"].attrs = {"long_name": "number of basins with both values", "units": "1"}
    return out
