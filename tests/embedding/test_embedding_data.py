"""basinsx.embedding.data: the inputs of the embedding models (leap days, units)."""

import pytest
import xarray as xr
from embedding_cases import synthetic

torch = pytest.importorskip("torch")

# imported after the importorskip: basinsx.embedding needs torch
from basinsx.embedding import data  # noqa: E402


@pytest.fixture(scope="module")
def ds():
    return synthetic()


def test_leap_days_dropped(ds):
    da = data.stack_inputs(ds, ["prcp"])
    assert da.sizes["time"] == ds.sizes["time"] - 1
    assert not ((da.time.dt.month == 2) & (da.time.dt.day == 29)).any()


def test_inputs_are_checked_for_units(ds):
    kelvin = ds.assign(tmean=(ds.tmean + 273.15).assign_attrs(units="K"))
    metres = ds.assign(prcp=(ds.prcp / 1000).assign_attrs(units="m d-1"))
    xr.testing.assert_allclose(data.stack_inputs(metres, ["prcp"]), data.stack_inputs(ds, ["prcp"]), rtol=1e-6)
    xr.testing.assert_allclose(data.stack_inputs(kelvin, ["tmean"]), data.stack_inputs(ds, ["tmean"]), atol=1e-4)
    with pytest.raises(ValueError, match="'prcp' is in 'degC', which cannot be converted to mm d-1"):
        data.stack_inputs(ds.assign(prcp=ds.prcp.assign_attrs(units="degC")), ["prcp"])
