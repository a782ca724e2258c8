"""Basin embeddings: KGSSL (Ghosh et al. 2022) and an LSTM forward model fed static vectors.

torch is an optional dependency (``pip install basinsx[ml]``); it is imported by the methods
that train or run a network, not by ``import basinsx.embedding``.
"""

from .forward import ForwardLSTM
from .kgssl import KGSSL, embed, evaluate

__all__ = ["KGSSL", "ForwardLSTM", "embed", "evaluate"]
