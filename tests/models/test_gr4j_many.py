"""``_grcore.gr4j_many``: plain GR4J runs of many parameter sets side by side, bit-equal to one run at a time."""

import numpy as np

import basinsx
from basinsx.models._grcore import N_STATES, gr4j_many, gr_kernel


def test_gr4j_many_equals_the_kernel_bit_for_bit():
    ds = basinsx.open_dataset("sample", basins=["09510200"], chunks=None).isel(basin=0).sel(time=slice("1990", "1993"))
    forcing = np.vstack([ds["prcp"].values, ds.hydro.pet("oudin").values]).astype(float)
    rng = np.random.default_rng(3)
    lo, hi = np.array([10.0, -10.0, 1.0, 0.5]), np.array([3000.0, 5.0, 1000.0, 10.0])
    # random sets, the bounds' corners and x4 on integers and half-integers (the unit hydrographs' lengths)
    steps = [[350.0, 0.5, 90.0, x4] for x4 in (1.0, 2.5, 7.0)]
    theta = np.vstack([lo + rng.random((20, 4)) * (hi - lo), lo, hi, steps])
    q = gr4j_many(theta, forcing, 365)
    x0 = np.full(N_STATES, np.nan)
    for b in range(len(theta)):
        np.testing.assert_array_equal(q[b], gr_kernel(theta[b], forcing, 365, False, 0, 4, x0)[0])
    assert q.shape == (len(theta), forcing.shape[1] - 365) and q.max() > 1.0
