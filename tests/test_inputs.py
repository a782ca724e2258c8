"""The model inputs' door: PET choice, time axis and period checks."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import basinsx
from basinsx.inputs import BiasedPETWarning, check_time, choose_pet, model_inputs, on_basins, period_slice


@pytest.fixture(scope="module")
def sample():
    return basinsx.open_dataset("sample", chunks=None).isel(basin=slice(0, 2), time=slice(0, 400))


def test_pet_choices(sample):
    ds, label = choose_pet(sample)
    assert ds is sample and label == "pet (the data set's variable)"
    ds, label = choose_pet(sample, "oudin")
    xr.testing.assert_equal(ds.pet, sample.hydro.pet("oudin"))
    assert label == "oudin (computed by basinsx.pet)"
    ds, label = choose_pet(sample.assign(pet_obs=sample.pet * 0.5), "pet_obs")
    xr.testing.assert_equal(ds.pet, sample.pet * 0.5)
    with pytest.raises(ValueError, match="'oudin' is both a variable of the dataset and a PET method"):
        choose_pet(sample.assign(oudin=sample.pet), "oudin")
    with pytest.raises(ValueError, match="pet='penman' is neither a variable"):
        choose_pet(sample, "penman")


def test_biased_pet_warns_only_when_not_chosen(sample):
    marked = sample.assign(pet=sample.pet.assign_attrs(known_bias="ERA5-Land PET is several times too large"))
    with pytest.warns(BiasedPETWarning, match="several times too large.*pet='oudin'"):
        choose_pet(marked, warn=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        choose_pet(marked, "pet", warn=True)


@pytest.mark.parametrize(("time", "match"), [
    (pd.date_range("2000-01-01", periods=5, freq="7D"), "not daily: 2000-01-01 is followed by 2000-01-08"),
    (pd.DatetimeIndex(["2000-01-01", "2000-01-02", "2000-01-02"]), "duplicate dates, e.g. 2000-01-02"),
    (pd.DatetimeIndex(["2000-01-02", "2000-01-01"]), "not daily: 2000-01-02 is followed by 2000-01-01"),
    (np.arange(4), "the time axis must hold dates"),
])
def test_time_axis_must_be_daily_dates(time, match):
    ds = xr.Dataset({"prcp": ("time", np.zeros(len(time)))}, coords={"time": time})
    with pytest.raises(ValueError, match=f"simulate: .*{match}"):
        check_time(ds, "simulate")


def test_period_as_tuple_or_slice():
    assert period_slice(("1982", "1995")) == slice("1982", "1995")
    assert period_slice(slice("1982", None)) == slice("1982", None)
    with pytest.raises(ValueError, match="period runs backwards: 1995 to 1982"):
        period_slice(("1995", "1982"))
    assert period_slice((1982, 1995)) == slice("1982", "1995")  # years as numbers (before: a bare TypeError later)
    assert period_slice(1990) == slice("1990", "1990") and period_slice(slice(1990, None)) == slice("1990", None)


def test_model_inputs_convert_and_record(sample):
    kelvin = sample.assign(tmean=(sample.tmean + 273.15).assign_attrs(units="K"))
    ds, attrs = model_inputs(kelvin, ("prcp", "pet", "tmean"), flow="streamflow", pet="oudin", where="calibrate")
    xr.testing.assert_allclose(ds.tmean, sample.tmean, atol=1e-4)
    assert attrs == {"pet": "oudin (computed by basinsx.pet)", "units_converted": "tmean converted from K to degC"}


def test_readers_mark_the_era5_land_pet_and_stores_keep_it(data_dir, tmp_path):
    caravan = basinsx.read_caravan(data_dir / "caravan", basins=["01031500"])
    assert "Clerc-Schwarzenbach et al. 2024" in caravan.pet.attrs["known_bias"]
    sample = basinsx.open_dataset("sample", basins=["01031500"])
    assert sample.pet.attrs["known_bias"] == caravan.pet.attrs["known_bias"]
    store = basinsx.to_zarr(sample, tmp_path / "s.zarr")
    assert basinsx.open_dataset(store).pet.attrs["known_bias"] == caravan.pet.attrs["known_bias"]


def _two_basins(n=60):
    rng = np.random.default_rng(0)
    time = pd.date_range("2000-01-01", periods=n, freq="D")
    data = {"prcp": (("basin", "time"), rng.gamma(0.5, 8.0, (2, n))), "pet": (("basin", "time"), np.full((2, n), 2.0))}
    return xr.Dataset(data, coords={"basin": ["a", "b"], "time": time})


def test_a_basin_given_twice_is_refused_not_taken_from_its_last_row():
    # before: on_basins kept the last row of a repeated basin label, silently
    ds = _two_basins()
    par = xr.DataArray([[350.0, 0.5, 90.0, 1.7], [800.0, -1.0, 200.0, 2.5], [525.0, 0.5, 90.0, 1.7]],
                       dims=("basin", "param"), coords={"basin": ["a", "b", "a"], "param": ["x1", "x2", "x3", "x4"]})
    with pytest.raises(ValueError, match=r"params has basin\(s\) \['a'\] more than once"):
        ds.hydro.simulate(par, model="gr4j")
    with pytest.raises(ValueError, match=r"params has basin\(s\) \['a'\] more than once"):
        ds.hydro.sensitivity(par, model="gr4j")
    ok = par.isel(basin=[0, 1])
    states = xr.DataArray([10.0, 20.0, 300.0], dims="basin", coords={"basin": ["a", "b", "a"]})
    with pytest.raises(ValueError, match=r"initial state 'production' has basin\(s\) \['a'\] more than once"):
        ds.hydro.simulate(ok, model="gr4j", initial_states={"production": states})
    one = {p: float(v) for p, v in zip(ok.param.values, ok.isel(basin=0).values)}
    with pytest.raises(ValueError, match=r"parameter 'x1' has basin\(s\) \['a'\] more than once"):
        ds.hydro.simulate({**one, "x1": states}, model="gr4j")
    # a repeated basin the forcing does not ask for is still a contradiction in the input
    extra = xr.concat([ok, ok.isel(basin=[1]).assign_coords(basin=["c"]), ok.isel(basin=[1]).assign_coords(
        basin=["c"])], "basin")
    with pytest.raises(ValueError, match=r"\['c'\] more than once"):
        ds.hydro.simulate(extra, model="gr4j")
    # unique labels in another order still match by label
    xr.testing.assert_identical(ds.hydro.simulate(ok.isel(basin=[1, 0]), model="gr4j"),
                                ds.hydro.simulate(ok, model="gr4j"))


def test_on_basins_names_every_repeated_label():
    data = xr.Dataset(coords={"basin": ["a", "b"]})
    value = xr.DataArray(np.arange(5.0), dims="basin", coords={"basin": ["a", "b", "b", "a", "c"]})
    with pytest.raises(ValueError, match=r"start has basin\(s\) \['a', 'b'\] more than once"):
        on_basins(value, data, "start")
