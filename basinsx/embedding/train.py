"""Training loop shared by KGSSL and the forward LSTM: validation, early stopping, checkpoints.

The loop keeps everything needed to continue a run in one ``state`` dict (epoch, latest and
best weights, optimizer and random-generator states, history), so that a run resumed from a
checkpoint draws the same batches and ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import hashlib
import math
from pathlib import Path

import numpy as np

from .. import _serialization


def training_data(basins, dates, *arrays) -> dict:
    """What a run trained on (basins, first and last date, a hash of the values), which a resumed run must share."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return {"basins": [str(b) for b in basins], "period": [str(np.datetime64(dates[0], "D")),
                                                            str(np.datetime64(dates[-1], "D"))],
            "values": digest.hexdigest()}


def new_state() -> dict:
    """An empty training state."""
    return {"epoch": 0, "best_loss": math.inf, "best_weights": None, "latest_weights": None,
            "bad_epochs": 0, "stopped": False, "history": [], "optimizer": None, "rng": None, "torch_rng": None}


#: Options that change how a run is shown or where it runs, not what it computes: a run may resume with others.
RUN_ONLY = {"progress", "device"}


class Persistent:
    """``save``/``load`` of a fitted model as one file: format tag, config, normalisation statistics,
    weights and training state. Subclasses set ``FORMAT`` and ``_n_static`` (the size ``_build`` takes).

    Files hold plain data and tensors only and are read without running code from them
    (:mod:`basinsx._serialization`); files of an earlier format must be saved again.
    """

    FORMAT: str

    def _n_static(self) -> int:
        raise NotImplementedError

    def save(self, path, *, _weights=None) -> None:
        """Write one file holding the weights, configuration, normalisation and training state."""
        if self.net is None:
            raise RuntimeError(f"nothing to save: this {type(self).__name__} model is not fitted")
        weights = _weights if _weights is not None else self.net.state_dict()
        _serialization.save(path, self.FORMAT, {"config": self.config, "stats": self.stats, "weights": weights,
                                                "training": self.state})

    def _checkpointing(self, checkpoint, resume: bool, net, device, what: str = "configuration", same=None):
        """The training state to start from and the per-epoch callback that writes ``checkpoint``.

        An existing file at ``checkpoint`` that is not a checkpoint of this model class is never
        overwritten (ValueError). With ``resume`` an existing checkpoint must come from the same
        configuration (and pass ``same(saved)``, naming ``what`` differs otherwise) and the same training
        data (``stats["training_data"]``, from :func:`training_data`); its training state is continued.
        """
        if checkpoint is None:
            if resume:
                raise ValueError("resume=True needs the checkpoint to resume from (checkpoint=...)")
            return new_state(), None
        checkpoint = Path(checkpoint)
        name = type(self).__name__
        _serialization.check_destination(checkpoint, self.FORMAT, f"{name} checkpoint", "checkpoint")
        state = new_state()
        if resume and checkpoint.exists():
            saved = _serialization.load(checkpoint, self.FORMAT, kind=f"{name} model", map_location=device)
            keys = sorted((set(saved["config"]) | set(self.config)) - RUN_ONLY)
            changed = [f"{k} {saved['config'].get(k)!r}, now {self.config.get(k)!r}" for k in keys
                       if saved["config"].get(k) != self.config.get(k)]
            if changed or (same is not None and not same(saved)):
                raise ValueError(f"checkpoint {checkpoint} was written with another {what}"
                                 + (f": {'; '.join(changed)}" if changed else ""))
            data, recorded = self.stats["training_data"], saved["stats"].get("training_data") or {}
            differ = [k for k in data if recorded.get(k) != data[k]]
            if differ:  # another data set would continue weights that never saw it
                raise ValueError(f"checkpoint {checkpoint} was written for other training data: {', '.join(differ)} "
                                 f"differ (or, from an older basinsx, were not recorded)")
            state = saved["training"]

        def save(st):
            self.net, self.state = net, st
            self.save(checkpoint, _weights=st["best_weights"])

        return state, save

    @classmethod
    def load(cls, path, device: str | None = None):
        """Read a model written by :meth:`save` (or a checkpoint written during ``fit``)."""
        saved = _serialization.load(path, cls.FORMAT, kind=f"{cls.__name__} model", map_location=device or "cpu")
        config = dict(saved["config"])
        if device is not None:
            config["device"] = device
        model = cls(**config)
        model.stats, model.state = saved["stats"], saved["training"]
        model.net = model._build(model._n_static())
        model.net.load_state_dict(saved["weights"])
        model.net.eval()
        return model


def optimizer_step(optimizer, net, loss) -> float:
    """One Adam(W) step on ``loss`` with the gradient norm clipped at 1; returns the loss value."""
    import torch

    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def fit_loop(net, optimizer, run_epoch, validate, *, epochs: int, patience: int, rng: np.random.Generator,
             state: dict, save=None, progress: bool = True, desc: str = "train") -> dict:
    """Train ``net`` for up to ``epochs`` epochs with early stopping; returns the final state.

    Parameters
    ----------
    net, optimizer : torch module and optimizer.
    run_epoch : callable(rng) -> float
        One epoch of optimisation steps; returns the mean training loss.
    validate : callable() -> float or None
        Validation loss (called under ``torch.no_grad`` in eval mode); None when there is no
        validation data, in which case the training loss is monitored.
    epochs, patience : int
        Maximum number of epochs, and epochs without improvement before stopping.
    rng : numpy Generator used for batch sampling (its state is checkpointed).
    state : dict
        From :func:`new_state`, or a checkpointed state to resume from.
    save : callable(state) or None
        Called after every epoch (writes the checkpoint).
    """
    import torch
    from tqdm.auto import tqdm

    if state["latest_weights"] is not None:  # resuming
        net.load_state_dict(state["latest_weights"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
    start = state["epoch"]
    bar = tqdm(range(start, epochs), total=epochs, initial=start, desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        if state["stopped"]:
            break
        net.train()
        train_loss = float(run_epoch(rng))
        net.eval()
        with torch.no_grad():
            val_loss = validate()
        monitored = train_loss if val_loss is None else float(val_loss)
        if not math.isfinite(monitored):
            raise FloatingPointError(f"{desc}: loss became {monitored} at epoch {epoch + 1}; lower the learning rate")
        if monitored < state["best_loss"]:
            state["best_loss"] = monitored
            state["best_weights"] = copy.deepcopy(net.state_dict())
            state["bad_epochs"] = 0
        else:
            state["bad_epochs"] += 1
        state["history"].append({"epoch": epoch + 1, "train_loss": train_loss,
                                 "val_loss": None if val_loss is None else float(val_loss)})
        state["epoch"] = epoch + 1
        state["stopped"] = state["bad_epochs"] >= patience
        state["latest_weights"] = copy.deepcopy(net.state_dict())
        state["optimizer"] = copy.deepcopy(optimizer.state_dict())
        state["rng"] = copy.deepcopy(rng.bit_generator.state)
        state["torch_rng"] = torch.get_rng_state()
        bar.set_postfix(train=f"{train_loss:.4f}", val="-" if val_loss is None else f"{val_loss:.4f}")
        if save is not None:
            save(state)
    bar.close()
    if state["best_weights"] is not None:
        net.load_state_dict(state["best_weights"])
    return state
