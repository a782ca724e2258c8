"""The learner tells its user when negative PET is clipped: one warning per fit, naming the basins."""

import warnings

import numpy as np
import pytest

pytest.importorskip("torch")

import basinsx  # noqa: E402
from basinsx.models import NegativePETWarning  # noqa: E402
from basinsx.regional import ParameterLearner  # noqa: E402

FIT = {"period": ("2000", "2001"), "warmup": 120, "window": 120, "batch_basins": 3}


def test_fit_warns_once_naming_basins_with_negative_pet():
    ds = basinsx.open_dataset("sample", chunks=None).isel(basin=slice(0, 3)).sel(time=slice("1999-07", "2001")).load()
    pet = ds.hydro.pet("oudin")
    pet[1, 100:104] = -0.3  # in the warm-up before the period (days 64..183): run, so clipped
    learner = ParameterLearner("gr4j", snow=True, attributes=["p_mean", "aridity"], hidden=4, epochs=2, seed=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        learner.fit(ds, pet=pet, **FIT)
    negative = [str(w.message) for w in record if w.category is NegativePETWarning]
    assert negative == [f"negative PET treated as zero in basins {ds.basin.values[1]} (4 d)"]
    clean = ParameterLearner("gr4j", snow=True, attributes=["p_mean", "aridity"], hidden=4, epochs=2, seed=0)
    np.testing.assert_array_equal(clean.fit(ds, pet=pet.clip(min=0), **FIT).params(ds), learner.params(ds))
