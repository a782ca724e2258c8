"""Prediction in ungauged basins: a parameter network trained through the exact sensitivities, and baselines.

:class:`ParameterLearner` maps static attributes and/or flow-free KGSSL embeddings to model
parameters and is trained across gauged basins by back-propagating the loss through the model
with its exact Jacobian (:func:`run_exact`). :func:`donor_params` and :func:`regression_params`
are the classical regionalisation baselines. torch is needed to fit or apply a learner, not to
import this module.
"""

from .baselines import donor_params, regression_params
from .learner import ExactRun, ParameterLearner, run_exact, to_physical

__all__ = ["ExactRun", "ParameterLearner", "donor_params", "regionalize", "regression_params", "run_exact",
           "to_physical"]


def regionalize(ds, learner_or_options, period=None, **kwargs):
    """Parameters ``(basin, param)`` for every basin of ``ds``, gauged or not; ``ds.hydro.regionalize`` calls this.

    Parameters
    ----------
    ds : xr.Dataset
        Basins with the learner's inputs; with options, also the forcings and the observed
        flow of the gauged ones (basins without flow in ``period`` are only predicted).
    learner_or_options : ParameterLearner or dict
        A fitted learner (its :meth:`~ParameterLearner.params` is returned), an unfitted one
        (fitted on ``ds`` first), or a dict of :class:`ParameterLearner` arguments.
    period : slice or (start, end), optional
        Training period for a fit; the embedding period of :meth:`~ParameterLearner.params`.
    **kwargs
        Passed to :meth:`~ParameterLearner.fit` (``pet``, ``warmup``, ``window``,
        ``batch_basins``, ``flow``); ``pet`` also to :meth:`~ParameterLearner.params`, which
        by default embeds the PET the learner was trained with.
    """
    if isinstance(learner_or_options, dict):
        learner_or_options = ParameterLearner(**learner_or_options)
    if not isinstance(learner_or_options, ParameterLearner):
        raise TypeError(f"regionalize needs a ParameterLearner or a dict of its options; got "
                        f"{type(learner_or_options).__name__}")
    learner = learner_or_options
    if learner.net is None:
        learner.fit(ds, period=period, **kwargs)
        return learner.params(ds, pet=kwargs.get("pet"))
    unknown = sorted(set(kwargs) - {"pet"})
    if unknown:
        raise TypeError(f"a fitted learner only takes pet=; got {unknown}")
    return learner.params(ds, period=period, pet=kwargs.get("pet"))
