"""LSTM rainfall-runoff model fed a static vector per basin (true, corrupted attributes or embeddings).

Plain LSTM with the static vector appended to the dynamic inputs at every step (Kratzert et
al. 2019, "LSTM with static inputs"), trained with the basin-normalised squared error NSE*
(Kratzert et al. 2019): errors are divided by (sigma_b + 0.1)^2 where sigma_b is the basin's
flow standard deviation, so that wet basins do not dominate the loss.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from ..io.conventions import check_time
from ..units import dataset_to_canonical
from . import data
from .train import Persistent, training_data

#: Default configuration; every key can be passed to :class:`ForwardLSTM`.
DEFAULTS = {
    "inputs": ("prcp", "tmean", "pet"),
    "target": "streamflow",
    "hidden": 64,
    "seq_length": 365,
    "warmup": 180,
    "dropout": 0.2,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "epochs": 30,
    "patience": 5,
    "batch_size": 64,
    "steps_per_epoch": None,
    "val_fraction": 0.2,
    "seed": 0,
    "device": "cpu",
    "progress": True,
}

#: Added to the basin standard deviation in the NSE* loss (normalised units).
NSE_STAR_EPS = 0.1


class ForwardLSTM(Persistent):
    """Streamflow LSTM with dynamic inputs and an optional static vector per basin.

    Parameters
    ----------
    **config
        Keyword options, listed below; unknown names raise ``TypeError``.

    Other Parameters
    ----------------
    inputs : sequence of str
        Dynamic inputs ``(basin, time)``.
    target : str
        Simulated variable (observed flow in ``ds``), mm/d.
    hidden : int
        LSTM state size.
    seq_length, warmup : int
        Training sequence length in days; the loss skips the first ``warmup`` days of each.
    dropout, lr, weight_decay : float
    epochs, patience, batch_size : int
    steps_per_epoch : int or None
        Default: enough sequences to cover each training day about once.
    val_fraction : float
        Last fraction of the training period used for validation and early stopping.
    seed : int
    device : str
    progress : bool

    Notes
    -----
    ``static`` (in :meth:`fit` and :meth:`predict`) is None, a list of static variables of the
    Dataset, or a DataArray ``(basin, feature)`` such as ``KGSSL.transform(ds).embedding``.
    It is z-scored with the training basins' statistics; NaN becomes 0 (the mean). Features are
    matched by name (a DataArray's feature labels), in any order; other or missing ones are a
    ValueError naming them. Static variables are converted into the units they had at fit.

    The time axis must be daily and increasing. Dynamic inputs and the target with ``units`` are
    converted to canonical ones (K -> degC, m3 s-1 -> mm d-1 with the ``area`` coordinate, ...).
    An existing file at ``checkpoint`` other than a ForwardLSTM checkpoint is not overwritten.
    """

    FORMAT = "basinsx.ForwardLSTM/2"

    def __init__(self, **config):
        unknown = sorted(set(config) - set(DEFAULTS))
        if unknown:
            raise TypeError(f"unknown ForwardLSTM options {unknown}; valid: {sorted(DEFAULTS)}")
        self.config = {**DEFAULTS, **config}
        self.config["inputs"] = tuple(self.config["inputs"])
        if not 0 <= self.config["warmup"] < self.config["seq_length"]:
            raise ValueError("warmup must be in [0, seq_length)")
        self.net = None
        self.stats = None
        self.state = None

    @property
    def history(self) -> list[dict]:
        """Per-epoch training and validation losses of the last fit."""
        return list(self.state["history"]) if self.state else []

    def _static(self, ds: xr.Dataset, static, units: dict | None = None) -> xr.DataArray | None:
        """The static vector ``(basin, feature)`` of ``ds``'s basins, features labelled by name (None without one).

        Static variables with units are converted into ``units`` (those recorded at fit).
        """
        if static is None:
            return None
        if isinstance(static, xr.DataArray):
            other = [d for d in static.dims if d != "basin"]
            if "basin" not in static.dims or len(other) != 1:
                raise ValueError(f"a static DataArray must have dims (basin, feature), it has {static.dims}")
            missing = np.setdiff1d(ds["basin"].values, static["basin"].values)
            if len(missing):
                raise KeyError(f"static vector missing for basins {list(missing[:5])}")
            out = static.sel(basin=ds["basin"]).rename({other[0]: "feature"}).transpose("basin", "feature")
            out = out.assign_coords(feature=out["feature"].values.astype(str))  # labels, or positions without any
        else:
            out = data.static_features(ds, [static] if isinstance(static, str) else list(static), units)
        if out.indexes["feature"].has_duplicates:
            raise ValueError(f"static features must have distinct names; got {list(out['feature'].values)}")
        return out

    def _fitted_static(self, s_da: xr.DataArray | None) -> xr.DataArray | None:
        """``s_da`` with the features the model was fitted with, in their order; ValueError naming any difference."""
        names = self.stats.get("static_names")
        got = [] if s_da is None else [str(f) for f in s_da["feature"].values]
        if names is None:  # a file from before names were recorded: only the count can be checked
            if len(got) != self.stats["n_static"]:
                raise ValueError(f"the model was fitted with {self.stats['n_static']} static features, got {len(got)}")
            return s_da
        lack, add = [n for n in names if n not in got], [n for n in got if n not in names]
        if lack or add:
            differ = " and ".join(([f"lack {lack}"] if lack else []) + ([f"add {add}"] if add else []))
            raise ValueError(f"the model was fitted with static features {list(names)}; got {got}, which {differ}")
        return None if s_da is None else s_da.sel(feature=list(names))

    def _build(self, n_static: int):
        import torch

        from .model import ForwardNet

        torch.manual_seed(self.config["seed"])
        return ForwardNet(len(self.config["inputs"]), n_static, self.config["hidden"],
                          self.config["dropout"]).to(self.config["device"])

    def fit(self, ds: xr.Dataset, static=None, period=None, *, checkpoint=None, resume: bool = False) -> ForwardLSTM:
        """Train on ``ds`` in ``period`` (loaded into memory); returns self."""
        cfg = self.config
        check_time(ds, "ForwardLSTM.fit")  # sequences must be consecutive days
        if cfg["target"] not in ds:
            raise KeyError(f"target {cfg['target']!r} not in the dataset")
        sub = data.select_period(_canonical(ds, cfg["inputs"], cfg["target"]), period)
        x = np.asarray(sub[list(cfg["inputs"])].to_dataarray("variable").transpose("basin", "variable", "time")
                       .astype(np.float32).values)
        q = np.asarray(sub[cfg["target"]].transpose("basin", "time").astype(np.float32).values)
        s_da = self._static(sub, static)
        names = [] if s_da is None else [str(f) for f in s_da["feature"].values]
        s = np.zeros((x.shape[0], 0), np.float32) if s_da is None else np.asarray(s_da.values, dtype=np.float64)

        n_time = x.shape[-1]
        n_val = round(cfg["val_fraction"] * n_time)
        if n_val < cfg["seq_length"]:
            n_val = 0
        n_train = n_time - n_val
        if n_train < cfg["seq_length"]:
            raise ValueError(f"training period has {n_train} days; a sequence needs {cfg['seq_length']}")
        mean, std = data.input_stats(x[..., :n_train])
        q_mean = float(np.nanmean(q[:, :n_train]))
        q_std = float(np.nanstd(q[:, :n_train]))
        s_mean = np.nanmean(s, axis=0) if s.shape[1] else np.zeros(0)
        s_std = np.nanstd(s, axis=0) if s.shape[1] else np.zeros(0)
        s_mean = np.nan_to_num(s_mean)
        s_std = np.where(s_std > 0, s_std, 1.0)
        self.stats = {"mean": mean, "std": std, "q_mean": q_mean, "q_std": q_std,
                      "s_mean": s_mean.astype(np.float32), "s_std": s_std.astype(np.float32), "n_static": s.shape[1],
                      "static_names": names,  # a DataArray's values are taken as they are: one units attr for all
                      "static_units": {} if isinstance(static, xr.DataArray) else data.attribute_units(sub, names),
                      "training_data": training_data(sub["basin"].values, sub["time"].values, x, q, s)}
        xz = np.nan_to_num((x - mean[None, :, None]) / std[None, :, None]).transpose(0, 2, 1).copy()
        qz = (q - q_mean) / q_std
        sz = np.nan_to_num((s - s_mean) / s_std).astype(np.float32)
        sigma = np.nanstd(qz[:, :n_train], axis=1)
        weight = (1.0 / (np.nan_to_num(sigma, nan=1.0) + NSE_STAR_EPS) ** 2).astype(np.float32)

        L, W = cfg["seq_length"], cfg["warmup"]
        observed = np.isfinite(qz)
        train_starts = data.valid_starts(observed[:, W:n_train], L - W, 1e-9)
        pairs = np.array([(b, s_) for b, st in enumerate(train_starts) for s_ in st])
        if not len(pairs):
            raise ValueError("no training sequence has an observed target")
        val_pairs = []
        if n_val:
            grid = n_train - W + data.strided_starts(n_val, L - W, L - W)
            val_pairs = [(b, s_) for b in range(x.shape[0]) for s_ in grid if observed[b, s_ + W:s_ + L].any()]
        n_target = int(observed[:, :n_train].sum())
        self._train(xz, qz, sz, weight, pairs, val_pairs, n_target, checkpoint, resume)
        return self

    def _train(self, xz, qz, sz, weight, pairs, val_pairs, n_target: int, checkpoint, resume: bool):
        """The training loop of :meth:`fit` on normalised data; sets ``net`` and ``state``.

        ``xz (basin, time, input)``, ``qz (basin, time)`` and ``sz (basin, static)`` are the z-scored
        inputs, target and static features, ``weight`` each basin's NSE* weight; ``pairs`` and
        ``val_pairs`` the ``(basin, start)`` sequences of training and validation; ``n_target`` the
        observed target days of the training period (they size an epoch).
        """
        import torch

        from .model import masked_mse
        from .train import fit_loop, optimizer_step

        cfg = self.config
        L, W = cfg["seq_length"], cfg["warmup"]
        device = cfg["device"]
        net = self._build(sz.shape[1])
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        steps = cfg["steps_per_epoch"] or max(1, math.ceil(n_target / ((L - W) * cfg["batch_size"])))
        idx = np.arange(L)

        def loss_of(batch):
            b, st = batch[:, 0], batch[:, 1]
            xb = torch.as_tensor(xz[b[:, None], st[:, None] + idx], device=device)
            yb = torch.as_tensor(qz[b[:, None], st[:, None] + idx][:, W:], device=device)
            sb = torch.as_tensor(sz[b], device=device)
            wb = torch.as_tensor(weight[b], device=device)[:, None]
            pred = net(xb, sb)[:, W:]
            mask = torch.isfinite(yb)
            return masked_mse(pred * wb.sqrt(), torch.nan_to_num(yb) * wb.sqrt(), mask)

        def run_epoch(rng):
            total = 0.0
            for _ in range(steps):
                batch = pairs[rng.integers(0, len(pairs), cfg["batch_size"])]
                total += optimizer_step(optimizer, net, loss_of(batch))
            return total / steps

        def validate():
            if not val_pairs:
                return None
            vp = np.array(val_pairs)
            return float(np.mean([loss_of(vp[i:i + 256]).item() for i in range(0, len(vp), 256)]))

        state, save = self._checkpointing(checkpoint, resume, net, device)
        self.state = fit_loop(net, optimizer, run_epoch, validate, epochs=cfg["epochs"], patience=cfg["patience"],
                              rng=np.random.default_rng(cfg["seed"]), state=state, save=save,
                              progress=cfg["progress"], desc="ForwardLSTM")
        self.net = net.eval()

    def predict(self, ds: xr.Dataset, static=None, period=None, warmup_days: int | None = None) -> xr.DataArray:
        """Simulated flow ``(basin, time)`` in mm/d over ``period``.

        The network runs from ``warmup_days`` (default ``seq_length``) before the period's start
        when ``ds`` has them, and those spin-up days are dropped. Lazy on dask input.
        """
        if self.net is None:
            raise RuntimeError("this ForwardLSTM is not fitted; call fit() or ForwardLSTM.load() first")
        cfg = self.config
        warmup_days = cfg["seq_length"] if warmup_days is None else warmup_days
        check_time(ds, "ForwardLSTM.predict")
        ds = _canonical(ds, cfg["inputs"])
        target = data.select_period(ds, period)
        start, end = target["time"].values[0], target["time"].values[-1]
        sub = ds.sel(time=slice(pd.Timestamp(start) - pd.Timedelta(days=warmup_days), end))
        x = sub[list(cfg["inputs"])].to_dataarray("variable").transpose("basin", "variable", "time").astype(np.float32)
        if x.chunks is not None:
            x = x.chunk({"variable": -1, "time": -1})
        s_da = self._fitted_static(self._static(sub, static, self.stats.get("static_units")))
        if s_da is None:
            s_da = xr.DataArray(np.zeros((sub.sizes["basin"], 0), np.float32), dims=("basin", "feature"),
                                coords={"basin": sub["basin"]})
        elif s_da.chunks is not None:  # one variable per chunk: the kernel needs every feature of a basin
            s_da = s_da.chunk({"feature": -1})
        model = {"config": dict(cfg), "stats": dict(self.stats),
                 "weights": {k: v.detach().cpu() for k, v in self.net.state_dict().items()}}
        sim = xr.apply_ufunc(_forward_kernel, x, s_da.astype(np.float32), kwargs={"model": model},
                             input_core_dims=[["variable", "time"], ["feature"]], output_core_dims=[["time"]],
                             dask="parallelized", output_dtypes=[np.float32])
        sim = sim.sel(time=slice(start, end))
        sim.name = f"{cfg['target']}_sim"
        sim.attrs = {"long_name": f"{cfg['target']} simulated by the forward LSTM", "units": "mm d-1"}
        return sim

    def _n_static(self) -> int:
        return self.stats["n_static"]


def _canonical(ds: xr.Dataset, inputs, target: str | None = None) -> xr.Dataset:
    """``ds`` with the dynamic ``inputs`` and the ``target`` (a flow) in canonical units (K -> degC, ...)."""
    roles = {v: v for v in inputs if v in ds}  # names basinsx does not know are taken as they are
    if target is not None:
        roles[target] = "streamflow"
    return dataset_to_canonical(ds, roles)[0]


def _forward_kernel(x: np.ndarray, static: np.ndarray, *, model: dict) -> np.ndarray:
    """Simulated flow ``(basin, time)`` in mm/d from raw inputs ``(basin, variable, time)``."""
    import torch

    cfg, st = model["config"], model["stats"]
    device = cfg["device"]
    net = ForwardLSTM(**{**cfg, "progress": False})._build(st["n_static"])
    net.load_state_dict(model["weights"])
    net.eval()
    xz = np.nan_to_num((x - st["mean"][None, :, None]) / st["std"][None, :, None]).transpose(0, 2, 1)
    sz = np.nan_to_num((static - st["s_mean"]) / st["s_std"]).astype(np.float32)
    with torch.no_grad():
        out = net(torch.as_tensor(np.ascontiguousarray(xz, dtype=np.float32), device=device),
                  torch.as_tensor(sz, device=device)).cpu().numpy()
    return np.clip(out * st["q_std"] + st["q_mean"], 0.0, None).astype(np.float32)
