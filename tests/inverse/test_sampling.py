"""basinsx.inverse.sampling: bounds, Latin hypercube samples and training sets."""

import numpy as np
import pytest
from inverse_cases import BOUNDS, decay

from basinsx.inverse import as_bounds, latin_hypercube, training_set


def test_latin_hypercube_strata():
    X = latin_hypercube(BOUNDS, 50, seed=0)
    assert X.dims == ("sample", "param") and list(X.param.values) == ["a", "b", "c"]
    for name, (lo, hi) in BOUNDS.items():
        strata = np.floor((X.sel(param=name).values - lo) / (hi - lo) * 50).astype(int)
        assert sorted(strata) == list(range(50))  # one sample per stratum


def test_training_set_threads_and_processes_agree():
    X = latin_hypercube(BOUNDS, 10, seed=3)
    a = training_set(decay, X, batch_size=3, progress=False)
    b = training_set(decay, X, batch_size=4, scheduler="synchronous", progress=False)
    assert a.output.dims == ("sample", "obs") and a.params.dims == ("sample", "param")
    np.testing.assert_array_equal(a.output.values, b.output.values)
    np.testing.assert_allclose(a.output.values[4], decay(X.values[4]))


@pytest.mark.parametrize(
    "bounds, match",
    [({"a": (1.0, 0.0)}, "lower bound"), ([[0, 1, 2]], "pairs"), ({"a": (0.0, np.inf)}, "finite")],
)
def test_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match):
        as_bounds(bounds)
