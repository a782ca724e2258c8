"""Calibration of conceptual models with exact gradients: losses, optimizers, ``calibrate``.

``simulate`` and ``sensitivity`` live in :mod:`basinsx.simulation` and are re-exported
here, so ``from basinsx.calibration import simulate, sensitivity, calibrate`` gives the
three xarray-level functions behind ``ds.hydro``.
"""

from ..simulation import sensitivity, simulate
from .driver import calibrate
from .losses import LOSSES, Loss, Weighted, get_loss
from .posterior import posterior, predictive

__all__ = ["LOSSES", "Loss", "Weighted", "calibrate", "get_loss", "posterior", "predictive", "sensitivity", "simulate"]
