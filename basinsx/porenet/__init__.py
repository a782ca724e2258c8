"""Pore networks as labeled arrays: constructors, conductance models, a Stokes-flow
permeability solver with a discrete adjoint, a lattice-Boltzmann label generator and a
GNN that learns throat conductances from permeability (Zhao & Xiao 2025).

torch, openpnm and porespy are imported only inside the functions that need them.
"""

from .conductance import MODELS, conductance, cones_and_cylinders, hagen_poiseuille, spheres_and_cylinders
from .io import from_openpnm, from_porespy, from_statoil, to_openpnm
from .lbm import lbm_permeability
from .network import check_health, cubic, make_network, trim, trim_disconnected
from .solver import MILLIDARCY, permeability


def permeability_torch(net, g, axis="x", dp=1.0, mu=None, **kw):
    """Differentiable permeability (torch); see :func:`basinsx.porenet.torch_solver.permeability_torch`."""
    from .torch_solver import permeability_torch as _impl

    return _impl(net, g, axis=axis, dp=dp, mu=mu, **kw)


__all__ = ["MILLIDARCY", "MODELS", "check_health", "conductance", "cones_and_cylinders", "cubic",
           "from_openpnm", "from_porespy", "from_statoil", "hagen_poiseuille", "lbm_permeability",
           "make_network", "permeability", "permeability_torch", "spheres_and_cylinders", "to_openpnm", "trim",
           "trim_disconnected"]
