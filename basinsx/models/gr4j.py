"""Daily GR4J (Perrin et al. 2003) exactly as airGR computes it, with forward-mode sensitivities.

The kernel follows airGR's ``frun_GR4J.f90`` operation by operation (including the single
precision literal 0.9 of the unit-hydrograph split and the ``(9/4)^4`` percolation constant),
so it reproduces airGR/GRsuite to rounding. Every step is differentiated exactly: the
derivative of each state with respect to the parameters is carried along (forward mode), so
``J[t, j]`` is the derivative of the discrete map itself, not of an approximation. Clamps
(``WS <= 13``, stores >= 0, ``Q_D >= 0``) pass a zero derivative when active; the map has kinks
where a clamp switches and at integer values of ``x4``.
"""

from __future__ import annotations

from functools import partial

from ._grcore import INIT_LEVELS, NH, gr4j_many, gr4j_many_input, gr_batch, gr_run  # noqa: F401 (INIT_LEVELS: also read by gr4j_ode)
from .base import SNOW_CODES, ModelSpec, Parameter

#: x1..x4, shared by gr4j_ode, gr5j and gr6j
PARAMETERS = (
    Parameter("x1", "mm", (10.0, 3000.0), positive=True, description="production store capacity"),
    Parameter("x2", "mm d-1", (-10.0, 5.0), description="groundwater exchange coefficient"),
    Parameter("x3", "mm", (1.0, 1000.0), positive=True, description="routing store capacity"),
    Parameter("x4", "d", (0.5, 10.0), positive=True, description="unit-hydrograph time base"),
)


def gr4j_kernel(theta, forcing, warmup, sens, snow, x0=None):
    """Run GR4J (optionally with the degree-day snow module) and its Jacobian (see :func:`gr_run`)."""
    return gr_run(theta, forcing, warmup, sens, snow, 4, x0)


gr4j_kernel.batch = partial(gr_batch, variant=4)  # Model.run_batch: all basins in one call
gr4j_kernel.many = gr4j_many  # a calibration's screening: many parameter sets side by side, no snow
gr4j_kernel.many_input = gr4j_many_input  # the same behind CemaNeige, on each set's water input


# levels in [0, x1] and [0, x3], as airGR's fill rates; above x3 the exchange x2 (R/x3)^3.5 explodes
SPEC = ModelSpec("gr4j", PARAMETERS, ("production", "routing", "uh1", "uh2"), gr4j_kernel, snow=tuple(SNOW_CODES),
                 continuation=True, state_sizes={"uh1": NH, "uh2": 2 * NH},
                 capacities={"production": "x1", "routing": "x3"},
                 reference="Perrin et al. 2003")
