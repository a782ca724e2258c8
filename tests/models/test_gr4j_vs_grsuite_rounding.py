"""GR4J's flow within rounding of GRsuite's (airGR port): the kernel multiplies by reciprocals where airGR divides."""

import numpy as np
import pytest

import basinsx
import basinsx.models as bm

#: Mid-range sets and the bounds' corners (smallest stores: the largest relative steps per day).
THETA = [[350.0, 0.5, 90.0, 1.7], [700.0, -2.0, 150.0, 4.2], [10.0, 5.0, 1.0, 0.5], [3000.0, -10.0, 1000.0, 10.0]]


@pytest.mark.parametrize("basin", ["01031500", "09510200"])
def test_gr4j_flow_equals_grsuite_to_1e_10_relative(basin):
    grsuite = pytest.importorskip("grsuite")
    ds = basinsx.open_dataset("sample", basins=[basin], chunks=None).isel(basin=0)
    ds = ds.assign(pet=ds.hydro.pet("oudin"))
    dates = ds["time"].values.astype("datetime64[D]")
    p, e = ds["prcp"].values.astype(float), ds["pet"].values.astype(float)
    im = grsuite.InputsModel(dates, precip=p, pot_evap=e)
    ro = grsuite.RunOptions(im, "GR4J", ind_period_run=np.arange(365, len(p)), ind_period_warmup=np.arange(365))
    for theta in THETA:
        ref = grsuite.run_model(im, ro, theta)["Qsim"]
        q, jac = bm.get("gr4j").run(theta, np.vstack([p, e]), warmup=365)
        np.testing.assert_allclose(q, ref, rtol=1e-10, atol=1e-300)
        assert ref.max() > 0.1 and np.isfinite(jac).all()
