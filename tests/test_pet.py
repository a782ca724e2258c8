import numpy as np
import pandas as pd
import pytest
import xarray as xr

import basinsx
from basinsx.pet import extraterrestrial_radiation, hargreaves_kernel

from conftest import raise_if_dask_computes


@pytest.fixture(scope="module")
def camels(data_dir):
    return basinsx.read_camels_us(data_dir / "camels_us")


def test_extraterrestrial_radiation_fao56_example_8():
    # FAO-56 example 8: 20 deg S on 3 September (day 246): Ra = 32.2 MJ m-2 d-1
    assert extraterrestrial_radiation(-20.0, 246) == pytest.approx(32.2, abs=0.05)


def test_hargreaves_hand_computed():
    ra = extraterrestrial_radiation(45.0, 180)
    expected = 0.0023 * 0.408 * ra * (20 + 17.8) * np.sqrt(12.0)
    assert hargreaves_kernel(np.array([14.0]), np.array([26.0]), np.array([20.0]), 45.0, np.array([180]))[0] == \
        pytest.approx(expected)


def test_priestley_taylor_matches_camels_pet_climatology(camels):
    # CAMELS pet_mean is Priestley-Taylor from Daymet (Addor et al. 2017); 2000-2002 vs 1989-2009 means
    pet = camels.hydro.pet("priestley_taylor").mean("time")
    np.testing.assert_allclose(pet.values, camels.pet_mean.values, rtol=0.15)
    assert camels.hydro.pet("priestley_taylor").attrs["units"] == "mm d-1"


def test_hargreaves_in_a_plausible_range(camels):
    pet = camels.hydro.pet("hargreaves")
    assert pet.dims == ("basin", "time") and pet.dtype == np.float32
    assert (pet.fillna(0) >= 0).all() and 1.5 < float(pet.mean()) < 4.5
    assert float(pet.sel(time="2001-07").mean()) > 3 * float(pet.sel(time="2001-01").mean())


def test_lazy_equals_eager(camels, data_dir):
    lazy = basinsx.read_camels_us(data_dir / "camels_us", chunks=2)
    for method in ("priestley_taylor", "hargreaves", "oudin"):
        with raise_if_dask_computes():
            pet = lazy.hydro.pet(method)
        # identical, in the dtype declared: the blocks were float64 under a float32 label, so a calibration on
        # dask input took other PET values (2e-7 apart) than in memory, and HBV's fc moved by 105 mm
        computed = pet.compute()
        assert computed.dtype == pet.dtype == np.float32
        xr.testing.assert_identical(computed, camels.hydro.pet(method))


def test_bad_input(camels):
    with pytest.raises(KeyError, match=r"needs variables \['srad'\]"):
        camels.drop_vars("srad").hydro.pet("priestley_taylor")
    wrong = camels.assign(tmin=camels.tmin.assign_attrs(units="mm d-1"))
    with pytest.raises(ValueError, match="'tmin' is in 'mm d-1'; expected a temperature in degC"):
        wrong.hydro.pet("hargreaves")
    first = str(camels.basin.values[0])
    with pytest.raises(ValueError, match=rf"latitude 'gauge_lat' outside -90..90 degrees for \['{first}'\]"):
        camels.assign_coords(gauge_lat=camels.gauge_lat.where(camels.basin != first, 91.0)).hydro.pet()


def test_kelvin_is_converted_and_the_default_works_on_every_reader(camels):
    kelvin = camels.assign(tmin=(camels.tmin + 273.15).assign_attrs(units="K"),
                           tmax=(camels.tmax + 273.15).assign_attrs(units="kelvin"))
    xr.testing.assert_allclose(kelvin.hydro.pet("hargreaves"), camels.hydro.pet("hargreaves"), atol=1e-4)
    for ds in (camels, basinsx.open_dataset("sample")):  # the default (Oudin) needs only tmean and latitude
        assert ds.hydro.pet().attrs["long_name"] == "potential evapotranspiration (oudin)"
    with pytest.raises(ValueError, match="unknown PET method"):
        camels.hydro.pet("penman")


def test_oudin_hand_computed_and_on_caravan_data():
    from basinsx.pet import oudin_kernel

    ra = extraterrestrial_radiation(45.0, 180)
    out = oudin_kernel(np.array([20.0, -6.0]), 45.0, np.array([180, 180]))
    assert out[0] == pytest.approx(ra / 2.45 * 25 / 100) and out[1] == 0
    ds = basinsx.open_dataset("sample")
    pet = ds.hydro.pet("oudin")
    # annual means of Oudin PET sit near the CAMELS Priestley-Taylor climatology (pet_mean)
    np.testing.assert_allclose(pet.mean("time").values, ds.pet_mean.values, rtol=0.4)


def test_latitude_and_elevation_units_are_read(camels):
    ref = camels.hydro.pet("priestley_taylor")
    rad = camels.assign_coords(gauge_lat=np.deg2rad(camels.gauge_lat).assign_attrs(units="rad"))
    xr.testing.assert_allclose(rad.hydro.pet("priestley_taylor").drop_vars("gauge_lat"), ref.drop_vars("gauge_lat"),
                               rtol=1e-6)  # before: radians as degrees
    km = camels.assign(elev_mean=(camels.elev_mean / 1000).assign_attrs(units="km"))
    xr.testing.assert_allclose(km.hydro.pet("priestley_taylor"), ref, rtol=1e-6)  # before: km as m
    with pytest.raises(ValueError, match="'gauge_lat' is in 'm', which cannot be converted to degrees_north"):
        camels.assign_coords(gauge_lat=camels.gauge_lat.assign_attrs(units="m")).hydro.pet()


def test_the_time_axis_must_be_daily(camels):
    six_hourly = camels.isel(basin=[0]).isel(time=slice(0, 40)).assign_coords(
        time=pd.date_range("2000-01-01", periods=40, freq="6h"))
    with pytest.raises(ValueError, match="pet: time axis is not daily"):
        six_hourly.hydro.pet()  # before: daily values at every 6-hourly step
    with pytest.raises(ValueError, match="pet: the data have no 'time' coordinate"):
        camels.isel(basin=[0]).drop_vars("time").hydro.pet()  # before: a bare KeyError 'time'


def test_a_lazy_latitude_out_of_range_fails_only_its_basin():
    ds = basinsx.open_dataset("sample", basins=["01031500", "01440000"]).sel(time=slice("1990", "1991"))
    bad = ds.assign_coords(gauge_lat=ds.gauge_lat.where(ds.basin != "01440000", 123.0).chunk({"basin": 1}))
    pet = bad.hydro.pet().compute()  # lazy: checked in the kernel, where no basin is known
    assert np.isfinite(pet.sel(basin="01031500")).all() and np.isnan(pet.sel(basin="01440000")).all()
    cal = bad.hydro.calibrate(pet="oudin", period=("1991", "1991"), warmup=365, n_starts=1, maxiter=3, n_screen=0)
    msg = cal["message"].compute().values
    assert msg[1] == "failed: forcing 'pet' is NaN on 1990-01-01" and not msg[0].startswith("failed")  # before: all
    with pytest.raises(ValueError, match=r"latitude 'gauge_lat' outside -90..90 degrees for \['01440000'\]"):
        bad.compute().hydro.pet()  # in memory: named at once
    gap = ds.compute()
    gap["tmean"][0, 3] = np.nan
    assert np.isnan(gap.hydro.pet()[0, 3])  # before: 0 mm/d, as on a frosty day
