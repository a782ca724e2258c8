"""``.hydro``: one-line methods; those that need a Dataset are not offered on DataArrays (as cf_xarray splits them)."""

import numpy as np
import pytest
import xarray as xr

import basinsx
from basinsx.metrics import metrics
from basinsx.signatures import signatures

DATASET_ONLY = ("calibrate", "embed", "pet", "posterior", "regionalize", "sensitivity", "simulate")
BOTH = ("metrics", "plot", "signatures")


@pytest.fixture(scope="module")
def ds():
    return basinsx.open_dataset("sample", basins=["01031500", "03346000"], chunks=None).sel(time=slice("1990", "1991"))


@pytest.mark.parametrize("name", DATASET_ONLY)
def test_dataset_methods_are_not_offered_on_a_dataarray(ds, name):
    assert callable(getattr(ds.hydro, name))
    with pytest.raises(AttributeError, match=name):
        getattr(ds.streamflow.hydro, name)
    assert name not in dir(ds.streamflow.hydro)


def test_both_kinds_share_the_array_methods(ds):
    for name in BOTH:
        assert name in dir(ds.hydro) and name in dir(ds.streamflow.hydro)
    flow = ds.streamflow
    xr.testing.assert_identical(flow.hydro.signatures(), signatures(flow))
    xr.testing.assert_identical(ds.hydro.signatures(), signatures(ds))
    sim = flow * 0.9
    xr.testing.assert_identical(flow.hydro.metrics(sim, flow), metrics(sim, flow))
    xr.testing.assert_identical(ds.assign(sim=sim).hydro.metrics("sim"), metrics(sim, flow))
    assert np.isclose(float(ds.assign(sim=flow).hydro.metrics("sim").nse.min()), 1.0)


def test_a_variable_name_on_a_dataarray_says_what_to_pass(ds):
    with pytest.raises(TypeError, match="a variable name .'sim'. needs a Dataset; pass a DataArray"):
        ds.streamflow.hydro.metrics("sim")
    with pytest.raises(KeyError, match="variable 'nope' not in the dataset"):
        ds.hydro.metrics("nope")


def test_dataset_methods_delegate_to_the_functions(ds):
    from basinsx.pet import pet
    from basinsx.simulation import simulate

    xr.testing.assert_identical(ds.hydro.pet("oudin"), pet(ds, method="oudin"))
    params = {"x1": 300.0, "x2": 0.5, "x3": 80.0, "x4": 1.7}
    xr.testing.assert_identical(ds.hydro.simulate(params, model="gr4j", pet="oudin", warmup=30),
                                simulate(ds, params, model="gr4j", pet="oudin", warmup=30))
