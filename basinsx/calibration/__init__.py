"""Calibration of conceptual models with exact gradients: losses, optimizers, ``calibrate``.

``simulate`` and ``sensitivity`` live in :mod:`basinsx.simulation`; their old paths here
(``basinsx.calibration.simulate``) still work and warn.
"""

import warnings

from .driver import calibrate
from .losses import LOSSES, Loss, Weighted, get_loss
from .multiobjective import pareto
from .uncertainty import posterior, predictive

__all__ = ["LOSSES", "Loss", "Weighted", "calibrate", "get_loss", "pareto", "posterior", "predictive"]


def __getattr__(name: str):
    if name in ("simulate", "sensitivity"):
        from .. import simulation

        warnings.warn(f"basinsx.calibration.{name} moved to basinsx.simulation.{name}; import it from there",
                      DeprecationWarning, stacklevel=2)
        return getattr(simulation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
