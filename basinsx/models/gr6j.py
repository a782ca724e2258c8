"""Daily GR6J (Pushpalatha et al. 2011) exactly as airGR computes it, with forward-mode sensitivities.

GR4J plus an exponential store (airGR's ``frun_GR6J.f90``): 40 % of UH1's output feeds a store
that can go negative and drains as ``x6 log(1 + exp(R_exp / x6))``, the other 60 % the routing
store; the groundwater exchange ``x2 (R/x3 - x5)`` (threshold ``x5``) acts on both stores and
the direct branch. The kernel is airGR's, operation by operation
(:func:`basinsx.models._grcore.gr_kernel`), differentiated exactly like GR4J's. Initial states
as airGR: production store at 30 % of ``x1``, routing store at 50 % of ``x3``, exponential store
and unit hydrographs empty.
"""

from __future__ import annotations

from functools import partial

from ._grcore import NH, gr_batch, gr_run
from .base import SNOW_CODES, ModelSpec, Parameter
from .gr4j import PARAMETERS as GR4J_PARAMETERS


def gr6j_kernel(theta, forcing, warmup, sens, snow, x0=None):
    """Run GR6J (optionally with the degree-day snow module) and its Jacobian (see :func:`gr_run`)."""
    return gr_run(theta, forcing, warmup, sens, snow, 6, x0)


gr6j_kernel.batch = partial(gr_batch, variant=6)  # Model.run_batch: all basins in one call


# x1..x4 as basinsx's GR4J; x5 airGR's search range (TransfoParam_GR6J: x5 = t/5, t in [-9.99, 9.99]);
# x6 airGR's log range exp([-9.99, 9.99]) cut to where the store is neither a threshold nor inert
SPEC = ModelSpec(
    "gr6j",
    GR4J_PARAMETERS + (Parameter("x5", "1", (-1.998, 1.998), description="exchange threshold"),
                       Parameter("x6", "mm", (0.01, 1000.0), positive=True, description="exponential-store scale")),
    ("production", "routing", "exponential", "uh1", "uh2"), gr6j_kernel, snow=tuple(SNOW_CODES),
    continuation=True, state_sizes={"uh1": NH, "uh2": 2 * NH}, signed_states=("exponential",),
    capacities={"production": "x1", "routing": "x3"},  # the exponential store has none
    reference="Pushpalatha et al. 2011",
)
