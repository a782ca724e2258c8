"""Units at the boundary: equivalent spellings pass, convertible units convert, the rest fail by name."""

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from basinsx.units import UnitsError, dataset_to_canonical, parse, to_canonical

from conftest import raise_if_dask_computes


def series(values, units=None, name="prcp", **coords):
    attrs = {} if units is None else {"units": units}
    return xr.DataArray(np.asarray(values, dtype="float32"), dims="time", name=name, attrs=attrs, coords=coords)


@pytest.mark.parametrize("units", ["mm d-1", "mm/d", "mm day-1", "mm/day", "mm.d-1", "mm d^-1", "millimeter day-1",
                                   "kg m-2 d-1"])
def test_equivalent_depth_rates_pass_unchanged(units):
    x = series([1.0, 2.0], units)
    out, note = to_canonical(x, "prcp")
    assert out is x and note is None


@pytest.mark.parametrize("units", ["degC", "degree_Celsius", "celsius", "°C", "deg_C"])
def test_equivalent_celsius_spellings(units):
    out, note = to_canonical(series([1.5], units, "tmean"), "tmean")
    assert note is None and out.item() == pytest.approx(1.5)


@pytest.mark.parametrize(("units", "values", "expected"), [
    ("K", [273.15, 283.15], [0.0, 10.0]),
    ("kelvin", [263.15], [-10.0]),
    ("degF", [32.0, 212.0], [0.0, 100.0]),
])
def test_temperatures_convert_to_celsius(units, values, expected):
    out, note = to_canonical(series(values, units, "tmean"), "tmean")
    np.testing.assert_allclose(out.values, expected, atol=1e-4)
    assert out.attrs["units"] == "degC" and f"from {units} to degC" in out.attrs["units_note"] == note


@pytest.mark.parametrize(("units", "factor"), [("m d-1", 1000.0), ("m/day", 1000.0), ("cm d-1", 10.0),
                                               ("mm h-1", 24.0), ("kg m-2 s-1", 86400.0), ("in/d", 25.4)])
def test_depth_rates_convert(units, factor):
    out, note = to_canonical(series([0.5, 2.0], units), "prcp")
    np.testing.assert_allclose(out.values, [0.5 * factor, 2.0 * factor], rtol=1e-6)
    assert out.dtype == np.float32 and note and out.attrs["units"] == "mm d-1"


def test_discharge_needs_the_area_and_then_converts():
    q = series([10.0], "m3 s-1", "streamflow")
    with pytest.raises(UnitsError, match="'streamflow' is a discharge in 'm3 s-1'.*'area' coordinate in km2"):
        to_canonical(q, "streamflow")
    area = xr.DataArray(864.0, attrs={"units": "km2"})
    out, note = to_canonical(q, "streamflow", area=area)
    assert out.item() == pytest.approx(10 * 86.4 / 864.0) and "with the basin area" in note
    cfs = series([100.0], "ft3 s-1", "streamflow", area=2.0)  # the area coordinate is found on the array itself
    out, _ = to_canonical(cfs, "streamflow")
    assert out.item() == pytest.approx(100 * 0.3048**3 * 86.4 / 2.0, rel=1e-6)


@pytest.mark.parametrize(("name", "units", "match"), [
    ("prcp", "degC", "'prcp' is in 'degC', which cannot be converted to mm d-1"),
    ("tmean", "mm d-1", "'tmean' is in 'mm d-1'; expected a temperature in degC"),
    ("prcp", "furlongs", "'prcp' has units 'furlongs': unknown unit 'furlongs'"),
    ("prcp", "mm", "'prcp' is in 'mm', which cannot be converted to mm d-1"),
])
def test_wrong_units_are_errors_naming_the_variable(name, units, match):
    with pytest.raises(UnitsError, match=match):
        to_canonical(series([1.0], units, name), name)


def test_missing_units_are_taken_as_canonical():
    x = series([3.0])
    assert to_canonical(x, "prcp") == (x, None)


def test_parse_products_of_powers():
    assert parse("m^3 s^-1") == parse("m3/s") == (1.0, {"L": 3, "T": -1})
    factor, dims = parse("W m**-2")
    assert factor == 1.0 and dims == {"M": 1, "T": -3}
    assert parse("cfs")[1] == {"L": 3, "T": -1}


@pytest.mark.parametrize(("units", "factor"), [
    ("um", 1e-6), ("\u00b5m", 1e-6), ("\u03bcm", 1e-6), ("micrometre", 1e-6), ("micrometers", 1e-6), ("micron", 1e-6),
    ("nm", 1e-9), ("centimetre", 1e-2), ("kilometers", 1e3), ("um3", 1e-18), ("\u00b5m^3", 1e-18)])
def test_small_lengths_parse(units, factor):
    # pore networks come in micrometres: before, every spelling of them was an unknown unit
    scale, dims = parse(units)
    assert scale == pytest.approx(factor, rel=1e-12) and set(dims) == {"L"}


def test_dataset_conversion_stays_lazy_and_uses_roles():
    ds = xr.Dataset({"t": (("basin", "time"), da.full((2, 3), 280.0, chunks=1), {"units": "K"}),
                     "q": (("basin", "time"), da.ones((2, 3), chunks=1), {"units": "m3 s-1"})},
                    coords={"area": ("basin", [86.4, 43.2], {"units": "km2"})})
    with raise_if_dask_computes():
        out, notes = dataset_to_canonical(ds, {"t": "tmean", "q": "streamflow"})
    assert notes == ["t converted from K to degC", "q converted from m3 s-1 to mm d-1 with the basin area"]
    np.testing.assert_allclose(out.t.values, 280 - 273.15, rtol=1e-6)
    np.testing.assert_allclose(out.q.values[:, 0], [1.0, 2.0], rtol=1e-6)
