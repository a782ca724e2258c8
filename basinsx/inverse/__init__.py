"""Inverse modelling: parameterisations, surrogates, tandem networks and metaheuristics.

torch and scikit-learn are imported inside the classes that need them, so importing this
package stays light.
"""

from .channels import channel_fields
from .generative import VAEReducer
from .kle import KLE
from .metaheuristics import OptimizeResult, minimize
from .sampling import as_bounds, latin_hypercube, training_set
from .surrogate import Surrogate
from .tnna import TNNA, local_refine, objective
from .zones import zone_map, zoned_field

__all__ = [
    "KLE",
    "TNNA",
    "OptimizeResult",
    "Surrogate",
    "VAEReducer",
    "as_bounds",
    "channel_fields",
    "latin_hypercube",
    "local_refine",
    "minimize",
    "objective",
    "training_set",
    "zone_map",
    "zoned_field",
]
