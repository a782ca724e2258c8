"""The test problem the tests of basinsx.inverse share: y(t) = a exp(-b t) + c t at 12 times.

Not a test module (pytest collects ``test_*.py`` only); the test files in this folder import it.
"""

import numpy as np
import xarray as xr

from basinsx.inverse import Surrogate, latin_hypercube, training_set

T = np.linspace(0.0, 1.0, 12)
BOUNDS = {"a": (0.5, 2.0), "b": (0.5, 3.0), "c": (-1.0, 1.0)}
REVERSED = dict(reversed(BOUNDS.items()))  # {"c": ..., "b": ..., "a": ...}
TRUTH = np.array([1.3, 1.7, 0.4])
OBS = [f"t{k}" for k in range(len(T))]


def decay(theta):
    a, b, c = theta
    return a * np.exp(-b * T) + c * T


def y_labeled(theta=TRUTH):
    return xr.DataArray(decay(theta), dims="obs", coords={"obs": OBS})


def decay_sets():
    """Training (200 samples) and test (40) sets of the decay problem."""
    train = training_set(decay, latin_hypercube(BOUNDS, 200, seed=1), progress=False)
    test = training_set(decay, latin_hypercube(BOUNDS, 40, seed=2), progress=False)
    return train, test


def kernel_fit(train, obs=None):
    """A kernel surrogate of the training set; ``obs`` labels its outputs."""
    output = train.output if obs is None else train.output.assign_coords(obs=obs)
    return Surrogate("kernel", alpha=1e-5, gamma=0.1).fit(train.params, output)

