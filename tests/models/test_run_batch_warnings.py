"""``Model.run_batch`` tells what ``Model.run`` tells: negative PET clipped (one warning per call, naming basins)."""

import warnings

import numpy as np
import pytest
from test_run_batch import _inputs

import basinsx.models as bm
from basinsx.models import NegativePETWarning


@pytest.mark.parametrize("name,snow", [("gr4j", True), ("hymod", None)])  # the batched kernel and the per-basin path
def test_run_batch_warns_once_naming_the_basins_with_negative_pet(name, snow):
    m = bm.get(name, snow=snow)
    theta, forcing = _inputs(m, n_basins=4)
    pet = m.forcings.index("pet")
    forcing[1, pet, [3, 9]] = -0.2
    forcing[3, pet, 50] = -0.1
    with pytest.warns(NegativePETWarning) as record:
        q, jac = m.run_batch(theta, forcing, warmup=10)
    assert len([w for w in record if w.category is NegativePETWarning]) == 1
    assert "3 negative PET values" in str(record[0].message) and "basins [1, 3]" in str(record[0].message)
    assert forcing[1, pet, 3] == -0.2  # the caller's array is not clipped
    for b in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NegativePETWarning)
            qb, jb = m.run(theta[b], forcing[b], warmup=10)
        np.testing.assert_array_equal(q[b], qb)
        np.testing.assert_array_equal(jac[b], jb)


def test_run_batch_without_negative_pet_is_silent():
    m = bm.get("gr4j", snow=True)
    theta, forcing = _inputs(m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.run_batch(theta, forcing)


def test_run_batch_raises_what_run_raises_for_bad_inputs():
    """Each bad input gives run's error type and message, prefixed with the basin, on both paths."""
    for name, snow in (("gr4j", True), ("hymod", None)):
        m = bm.get(name, snow=snow)
        theta, forcing = _inputs(m)
        cases = []
        bad = theta.copy()
        bad[2, 1] = np.inf
        cases.append((bad, forcing))
        neg = forcing.copy()
        neg[1, m.forcings.index("prcp"), 7] = -1.0
        cases.append((theta, neg))
        inf = forcing.copy()
        inf[0, m.forcings.index("pet"), 11] = np.inf
        cases.append((theta, inf))
        for th, f in cases:
            b = int(np.flatnonzero(~np.isfinite(th).all(1) | ~np.isfinite(f).all((1, 2))
                                   | (f[:, m.forcings.index("prcp")] < 0).any(1))[0])
            with pytest.raises(ValueError) as single:
                m.run(th[b], f[b])
            with pytest.raises(ValueError) as batch:
                m.run_batch(th, f)
            assert str(batch.value) == f"basin {b}: {single.value}"
        with pytest.raises(ValueError, match=r"warmup must lie in \[0, 400\)"):
            m.run_batch(theta, forcing, warmup=400)
