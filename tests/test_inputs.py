"""The model inputs' door: PET choice, time axis and period checks."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import basinsx
from basinsx.inputs import BiasedPETWarning, check_time, choose_pet, model_inputs, period_slice


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
