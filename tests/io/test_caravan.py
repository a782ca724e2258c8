import pickle
import shutil
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import basinsx
from basinsx.cli import main
from basinsx.io.readers import FileFormatError

from conftest import raise_if_dask_computes


@pytest.fixture(scope="module")
def caravan(data_dir):
    return data_dir / "caravan"


@pytest.fixture
def mini(caravan, tmp_path):
    """A writable three-basin Caravan copy (netcdf and csv) to break on purpose."""
    root = tmp_path / "caravan"
    ids = ["01031500", "01055000", "01078000"]
    for fmt, ext in (("netcdf", "nc"), ("csv", "csv")):
        (root / "timeseries" / fmt / "camels").mkdir(parents=True)
        for b in ids:
            src = caravan / "timeseries" / fmt / "camels" / f"camels_{b}.{ext}"
            if src.exists():
                shutil.copy(src, root / "timeseries" / fmt / "camels" / src.name)
    shutil.copytree(caravan / "attributes", root / "attributes")
    return root


def test_values_match_the_raw_netcdf(caravan):
    ds = basinsx.read_caravan(caravan, basins=["01055000", "01031500"])
    assert list(ds.basin.values) == ["01055000", "01031500"]
    assert ds.gauge_id.values.tolist() == ["camels_01055000", "camels_01031500"]
    raw = xr.open_dataset(caravan / "timeseries/netcdf/camels/camels_01031500.nc")
    for ours, theirs in basinsx.io.caravan.RENAME.items():
        np.testing.assert_array_equal(ds[theirs].sel(basin="01031500").values, raw[ours].values)
    assert ds.prcp.dtype == np.float32 and ds.prcp.dims == ("basin", "time")
    assert ds.prcp.attrs["units"] == "mm d-1" and ds.tmean.attrs["units"] == "degC"
    assert ds.streamflow.attrs["units"] == "mm d-1" and "long_name" in ds.pet.attrs
    assert ds.sizes["time"] == 12418 and (ds.time.diff("time") == np.timedelta64(1, "D")).all()
    assert ds.attrs["license"] == "CC-BY-4.0" and "Kratzert" in ds.attrs["citation"]
    for coord in ("gauge_name", "gauge_lat", "gauge_lon", "area"):
        assert coord in ds.coords
    assert ds.gauge_name.sel(basin="01031500").item().startswith("Piscataquis")


def test_all_attribute_tables_are_merged(caravan):
    ds = basinsx.read_caravan(caravan, basins=["01031500"])
    table = pd.read_csv(caravan / "attributes/camels/attributes_caravan_camels.csv", index_col="gauge_id")
    assert ds.aridity.item() == pytest.approx(table.loc["camels_01031500", "aridity"])
    assert "ele_mt_sav" in ds  # a HydroATLAS column
    assert ds.country.item() == "United States of America"


def test_csv_copy_equals_netcdf(caravan):
    csv_ids = [p.stem.split("_")[1] for p in sorted((caravan / "timeseries/csv/camels").glob("*.csv"))][:3]
    a = basinsx.read_caravan(caravan, basins=csv_ids, format="csv")
    b = basinsx.read_caravan(caravan, basins=csv_ids)
    xr.testing.assert_allclose(a[["prcp", "tmean", "pet", "streamflow"]], b[["prcp", "tmean", "pet", "streamflow"]],
                               rtol=1e-6)


def test_lazy_with_chunks(caravan):
    with raise_if_dask_computes():
        ds = basinsx.read_caravan(caravan, basins=["01031500", "01055000", "01078000"], chunks=2)
    assert isinstance(ds.prcp.data, da.Array) and ds.prcp.chunks == ((2, 1), (12418,))
    eager = basinsx.read_caravan(caravan, basins=["01031500", "01055000", "01078000"])
    xr.testing.assert_identical(ds.compute(), eager)


def test_unknown_basin_lists_close_matches(caravan):
    with pytest.raises(KeyError, match="close matches: 01031500"):
        basinsx.read_caravan(caravan, basins=["01031501"])


def test_missing_folder_names_the_layout(tmp_path, caravan):
    with pytest.raises(FileNotFoundError, match="timeseries/"):
        basinsx.read_caravan(tmp_path)
    with pytest.raises(FileNotFoundError, match="Caravan layout"):
        basinsx.read_caravan(caravan, subset="camelsgb")


def test_non_daily_axis_is_an_error(mini):
    path = mini / "timeseries/csv/camels/camels_01031500.csv"
    if not path.exists():
        pytest.skip("no csv copy of this basin")
    frame = pd.read_csv(path)
    frame.drop(index=10).to_csv(path, index=False)
    with pytest.raises(ValueError, match="not daily"):
        basinsx.read_caravan(mini, basins=["01031500"], format="csv")


def test_duplicate_attribute_rows_are_an_error(mini):
    table = mini / "attributes/camels/attributes_other_camels.csv"
    frame = pd.read_csv(table)
    pd.concat([frame, frame.iloc[:1]]).to_csv(table, index=False)
    with pytest.raises(ValueError, match=r"duplicate gauge \(attributes_other_camels.csv\) ids"):
        basinsx.read_caravan(mini)


def test_basin_without_flow_is_kept_and_flagged(mini):
    path = mini / "timeseries/netcdf/camels/camels_01055000.nc"
    raw = xr.load_dataset(path)
    raw["streamflow"][:] = np.nan
    raw.to_netcdf(path)
    with pytest.warns(UserWarning, match="no valid streamflow.*01055000"):
        ds = basinsx.read_caravan(mini)
    assert "01055000" in ds.basin.values
    assert ds.streamflow_valid_days.sel(basin="01055000").item() == 0
    assert ds.streamflow_valid_days.sel(basin="01031500").item() > 12000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lazy = basinsx.read_caravan(mini, chunks=1)  # lazy: no data read, so no warning yet
    assert lazy.streamflow_valid_days.sel(basin="01055000").compute().item() == 0


def _drop_csv_column(path, column):
    pd.read_csv(path).drop(columns=[column]).to_csv(path, index=False)


@pytest.mark.parametrize("fmt", ["netcdf", "csv"])
@pytest.mark.parametrize("basin", ["01031500", "01078000"])  # the first file sets nothing; a later one is checked
def test_a_file_without_a_variable_is_an_error_naming_it(mini, fmt, basin):
    if fmt == "netcdf":
        path = mini / f"timeseries/netcdf/camels/camels_{basin}.nc"
        xr.load_dataset(path).drop_vars("streamflow").to_netcdf(path)
    else:
        path = mini / f"timeseries/csv/camels/camels_{basin}.csv"
        _drop_csv_column(path, "streamflow")
    for chunks in (None, 1):
        with pytest.raises(FileFormatError, match=f"camels_{basin}.*no variable streamflow"):
            basinsx.read_caravan(mini, format=fmt, chunks=chunks)


def test_the_lazy_read_checks_the_file_again(mini):
    ds = basinsx.read_caravan(mini, chunks=1)
    path = mini / "timeseries/netcdf/camels/camels_01055000.nc"
    xr.load_dataset(path).drop_vars("potential_evaporation_sum").to_netcdf(path)
    with pytest.raises(ValueError, match="camels_01055000.nc: no variable pet"):
        ds.pet.compute()


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble(path):  # overwrite part of the HDF5 metadata (object headers carry checksums)
    raw = bytearray(path.read_bytes())
    raw[100:400] = b"x" * 300
    path.write_bytes(bytes(raw))


def _not_hdf5(path):
    path.write_text("date,streamflow\n")


def _duplicate_date_nc(path):
    raw = xr.load_dataset(path)
    xr.concat([raw.isel(date=slice(0, 10)), raw.isel(date=slice(9, None))], "date").to_netcdf(path)


@pytest.mark.parametrize("corrupt, message", [(_truncate, "truncated file"), (_garble, "checksum"),
                                              (_not_hdf5, "signature not found"),
                                              (_duplicate_date_nc, "duplicate dates, e.g. 1981-01-10")])
def test_broken_netcdf_is_a_value_error_naming_the_file(mini, corrupt, message, capfd):
    corrupt(mini / "timeseries/netcdf/camels/camels_01055000.nc")
    with pytest.raises(ValueError, match=f"camels_01055000.nc: .*{message}"):
        basinsx.read_caravan(mini)
    assert "Traceback" not in capfd.readouterr().err  # h5netcdf's half-built File must not print one


def _no_date_column(path):
    pd.read_csv(path).rename(columns={"date": "day"}).to_csv(path, index=False)


def _garbled_value(path):
    frame = pd.read_csv(path)
    frame["streamflow"] = frame["streamflow"].astype(object)
    frame.loc[5, "streamflow"] = "n/a?"
    frame.to_csv(path, index=False)


def _duplicate_date_csv(path):
    frame = pd.read_csv(path)
    pd.concat([frame.iloc[:10], frame.iloc[9:]]).to_csv(path, index=False)


@pytest.mark.parametrize("corrupt, message, lazy", [(_no_date_column, "no 'date' column", False),
                                                    (_duplicate_date_csv, "duplicate dates", False),
                                                    (_garbled_value, "could not convert string to float", True)])
def test_broken_csv_is_a_value_error_naming_the_file(mini, corrupt, message, lazy):
    corrupt(mini / "timeseries/csv/camels/camels_01055000.csv")
    with pytest.raises(ValueError, match=f"camels_01055000.csv: .*{message}"):
        basinsx.read_caravan(mini, format="csv")
    if lazy:  # values are parsed by the task, so a lazy open succeeds and the compute names the file
        ds = basinsx.read_caravan(mini, format="csv", chunks=1)
        with pytest.raises(ValueError, match=f"camels_01055000.csv: .*{message}"):
            ds.streamflow.compute()


def test_cli_turns_a_broken_file_into_exit_2(mini, tmp_path, capsys):
    _truncate(mini / "timeseries/netcdf/camels/camels_01055000.nc")
    assert main(["convert", str(mini), str(tmp_path / "out.zarr")]) == 2
    err = capsys.readouterr().err
    assert "camels_01055000.nc" in err and "truncated" in err and "Traceback" not in err


def test_attribute_table_without_gauge_id_names_the_file(mini):
    table = mini / "attributes/camels/attributes_hydroatlas_camels.csv"
    pd.read_csv(table).rename(columns={"gauge_id": "id"}).to_csv(table, index=False)
    with pytest.raises(FileFormatError, match="attributes_hydroatlas_camels.csv: .*gauge_id"):
        basinsx.read_caravan(mini)


def test_file_format_error_survives_pickling():  # dask sends a worker's exception back pickled
    err = pickle.loads(pickle.dumps(FileFormatError(Path("/data/camels_01.nc"), "no variable streamflow")))
    assert isinstance(err, ValueError) and err.path == Path("/data/camels_01.nc")
    assert str(err) == "/data/camels_01.nc: no variable streamflow"


def test_units_in_a_netcdf_file_are_read_and_converted(mini):
    ref = basinsx.read_caravan(mini, basins=["01055000", "01031500"])
    path = mini / "timeseries/netcdf/camels/camels_01055000.nc"
    raw = xr.load_dataset(path)
    raw["temperature_2m_mean"] = (raw["temperature_2m_mean"] + 273.15).assign_attrs(units="K")
    raw["total_precipitation_sum"] = (raw["total_precipitation_sum"] / 1000).assign_attrs(units="m d-1")
    raw["potential_evaporation_sum"] = raw["potential_evaporation_sum"].assign_attrs(units="kg m-2 d-1")
    raw.to_netcdf(path)
    got = basinsx.read_caravan(mini, basins=["01055000", "01031500"])  # before: kelvin labelled degC, m as mm
    for name in ("tmean", "prcp", "pet"):
        xr.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-4)
    raw["streamflow"] = raw["streamflow"].assign_attrs(units="degC")
    raw.to_netcdf(path)
    with pytest.raises(FileFormatError, match=r"camels_01055000.nc.*'streamflow' is in 'degC', which cannot be "
                                              r"converted to mm d-1"):
        basinsx.read_caravan(mini, basins=["01055000"])


# --- attribute tables: shared columns, missing rows; dates and shapes that break the format -------------------------

ATTRS = "attributes/camels/attributes_{}_camels.csv"


def test_a_column_in_two_attribute_tables_must_agree(mini):
    other = pd.read_csv(mini / ATTRS.format("other"), dtype={"gauge_id": str})
    path = mini / ATTRS.format("caravan")
    table = pd.read_csv(path, dtype={"gauge_id": str})
    table.merge(other[["gauge_id", "area"]], on="gauge_id").to_csv(path, index=False)
    ds = basinsx.read_caravan(mini, basins=["01031500"])  # an identical copy is merged
    assert ds.area.item() == pytest.approx(764.8241487847673)
    # before: the area in m2 of attributes_caravan replaced the km2 one of attributes_other without a word
    table.merge(other[["gauge_id", "area"]].assign(area=other.area * 1e6), on="gauge_id").to_csv(path, index=False)
    with pytest.raises(ValueError, match="column 'area' differs between attributes_caravan_camels.csv and "
                                         "attributes_other_camels.csv: basin camels_01031500 has 764824148.8 and "
                                         "764.8241488"):
        basinsx.read_caravan(mini, basins=["01031500"])


def test_a_basin_missing_from_one_attribute_table_is_an_error_naming_it(mini):
    path = mini / ATTRS.format("other")
    frame = pd.read_csv(path, dtype={"gauge_id": str})
    frame[frame.gauge_id != "camels_01055000"].to_csv(path, index=False)
    # before: 01055000 was read with NaN area, gauge_lat and gauge_lon
    for chunks in (None, 1):
        with pytest.raises(KeyError, match=r"attributes_other_camels.csv: no row for basins \['camels_01055000'\]"):
            basinsx.read_caravan(mini, chunks=chunks)
    assert basinsx.read_caravan(mini, basins=["01031500"]).area.item() == pytest.approx(764.8241487847673)


def test_attribute_ids_are_stripped(mini):
    path = mini / ATTRS.format("caravan")
    frame = pd.read_csv(path, dtype={"gauge_id": str})
    ref = frame.set_index("gauge_id").loc["camels_01055000", "p_mean"]
    frame.assign(gauge_id=frame.gauge_id + " ").to_csv(path, index=False)  # before: every p_mean NaN
    assert basinsx.read_caravan(mini, basins=["01055000"]).p_mean.item() == pytest.approx(ref)


def _tz_aware_dates(path):
    frame = pd.read_csv(path, dtype=str)
    frame.assign(date=frame.date + "T00:00:00+05:00").to_csv(path, index=False)


def _noon_dates(path):
    frame = pd.read_csv(path, dtype=str)
    frame.assign(date=frame.date + " 12:00").to_csv(path, index=False)


@pytest.mark.parametrize("corrupt, message", [
    (_tz_aware_dates, r"dates carry a time zone \(UTC\+05:00\)"),  # before: a bare TypeError, a traceback in the CLI
    (_noon_dates, "dates have a time of day, e.g. 1981-01-01 12:00:00"),  # before: about the union of the time axes
])
def test_dates_that_are_not_plain_days_are_an_error_naming_the_file(mini, corrupt, message):
    corrupt(mini / "timeseries/csv/camels/camels_01055000.csv")
    for chunks in (None, 1):
        with pytest.raises(FileFormatError, match=f"camels_01055000.csv: {message}"):
            basinsx.read_caravan(mini, format="csv", chunks=chunks)
    with pytest.raises(FileFormatError, match=f"camels_01055000.csv: {message}"):
        basinsx.io.caravan._read_series(mini / "timeseries/csv/camels/camels_01055000.csv", ["streamflow"])


def test_a_variable_with_another_shape_is_an_error_naming_file_and_variable(mini):
    path = mini / "timeseries/netcdf/camels/camels_01055000.nc"
    raw = xr.load_dataset(path)
    raw.assign(streamflow=raw.streamflow.expand_dims(x=2).transpose("date", "x")).to_netcdf(path)
    for chunks in (None, 1):  # before: a bare "shape mismatch" ValueError
        with pytest.raises(FileFormatError, match=r"camels_01055000.nc: variable 'streamflow' has dims "
                                                  r"\('date', 'x'\); every series must have the one dim 'date'"):
            basinsx.read_caravan(mini, chunks=chunks)


def test_cli_exits_2_for_tz_aware_dates(mini, tmp_path, capsys):
    path = mini / "timeseries/netcdf/camels/camels_01055000.nc"
    raw = xr.load_dataset(path)
    raw["date"] = [f"{d}T00:00:00+05:00" for d in pd.DatetimeIndex(raw.date.values).date]  # dates as text
    raw.to_netcdf(path)
    assert main(["convert", str(mini), str(tmp_path / "out.zarr")]) == 2  # before: a TypeError traceback
    err = capsys.readouterr().err
    assert r"camels_01055000.nc: dates carry a time zone (UTC+05:00)" in err and "Traceback" not in err
