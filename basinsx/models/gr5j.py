"""Daily GR5J (Le Moine 2008; Pushpalatha et al. 2011) exactly as airGR computes it, with forward-mode sensitivities.

GR4J's production store and routing store with two changes (airGR's ``frun_GR5J.f90``): one
unit hydrograph of base ``2 x4`` takes all of the effective rainfall and its output is split
90/10 between the routing store and the direct branch, and the groundwater exchange
``x2 (R/x3 - x5)`` changes sign at the routing-store filling ``x5``. The kernel is airGR's,
operation by operation (:func:`basinsx.models._grcore.gr_kernel`), differentiated exactly like
GR4J's. Initial states as airGR: production store at 30 % of ``x1``, routing store at 50 % of
``x3``, unit hydrograph empty.
"""

from __future__ import annotations

from ._grcore import gr_kernel
from .gr4j import BOUNDS as _GR4J_BOUNDS
from .gr4j import UNITS as _GR4J_UNITS

NAME = "gr5j"
PARAMS = ("x1", "x2", "x3", "x4", "x5")
# x1..x4 as basinsx's GR4J; x5 airGR's search range (TransfoParam_GR5J: [0, 1])
BOUNDS = {**_GR4J_BOUNDS, "x5": (0.0, 1.0)}
UNITS = {**_GR4J_UNITS, "x5": "1"}
POSITIVE = ("x1", "x3", "x4")
STATES = ("production", "routing", "uh2")


def gr5j_kernel(theta, forcing, warmup, sens, snow):
    """Run GR5J (optionally with the degree-day snow module) and its Jacobian (see :func:`gr_kernel`)."""
    return gr_kernel(theta, forcing, warmup, sens, snow, 5)


KERNEL = gr5j_kernel
