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

from functools import partial

from ._grcore import NH, gr_batch, gr_run
from .base import SNOW_CODES, ModelSpec, Parameter
from .gr4j import PARAMETERS as GR4J_PARAMETERS


def gr5j_kernel(theta, forcing, warmup, sens, snow, x0=None):
    """Run GR5J (optionally with the degree-day snow module) and its Jacobian (see :func:`gr_run`)."""
    return gr_run(theta, forcing, warmup, sens, snow, 5, x0)


gr5j_kernel.batch = partial(gr_batch, variant=5)  # Model.run_batch: all basins in one call


# x1..x4 as basinsx's GR4J; x5 airGR's search range (TransfoParam_GR5J: [0, 1])
SPEC = ModelSpec("gr5j", GR4J_PARAMETERS + (Parameter("x5", "1", (0.0, 1.0), description="exchange threshold"),),
                 ("production", "routing", "uh2"), gr5j_kernel, snow=tuple(SNOW_CODES),
                 continuation=True, state_sizes={"uh2": 2 * NH}, capacities={"production": "x1", "routing": "x3"},
                 reference="Le Moine 2008; Pushpalatha et al. 2011")
