import shutil

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import basinsx
from basinsx.cli import main
from basinsx.io.camels_us import CFS_TO_M3S, read_attributes
from basinsx.io.readers import FileFormatError

from conftest import raise_if_dask_computes


@pytest.fixture(scope="module")
def camels(data_dir):
    return data_dir / "camels_us"


@pytest.fixture
def huc_copy(camels, tmp_path):
    """CAMELS-US copy with files in <HUC02>/ subfolders, as in the full data set."""
    root = tmp_path / "camels"
    huc = read_attributes(camels / "camels_attributes_v2.0")["huc_02"]
    for product in ("daymet", "nldas"):
        for f in (camels / "basin_mean_forcing" / product).iterdir():
            dest = root / "basin_mean_forcing" / product / huc[f.name[:8]] / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
    for f in (camels / "usgs_streamflow").iterdir():
        dest = root / "usgs_streamflow" / huc[f.name[:8]] / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
    shutil.copytree(camels / "camels_attributes_v2.0", root / "camels_attributes_v2.0")
    return root


def test_forcing_values_and_units(camels):
    ds = basinsx.read_camels_us(camels, basins=["01022500"])
    first = ds.isel(basin=0).sel(time="2000-01-01")
    # first data row of the daymet file: 31185.97 0.00 189.56 0.00 -2.36 -14.36 202.51
    assert first.dayl.item() == pytest.approx(31185.97)
    assert first.srad.item() == pytest.approx(189.56)
    assert first.tmax.item() == pytest.approx(-2.36) and first.tmin.item() == pytest.approx(-14.36)
    assert first.tmean.item() == pytest.approx((-2.36 - 14.36) / 2)
    assert first.vp.item() == pytest.approx(202.51)
    assert ds.prcp.dtype == np.float32 and ds.srad.attrs["units"] == "W m-2"
    assert ds.area.item() == pytest.approx(587.675987)
    assert ds.gauge_lat.item() == pytest.approx(44.60797)  # attributes win over the header


def test_streamflow_cfs_to_mm_per_day(camels):
    ds = basinsx.read_camels_us(camels, basins=["01022500"])
    # usgs file: 01022500 2000 01 01   255.00 A:e ; area in the forcing header 587675987 m2
    expected = 255.0 * CFS_TO_M3S * 86400 / 587675987 * 1000
    assert ds.streamflow.sel(time="2000-01-01").item() == pytest.approx(expected, rel=1e-6)
    assert ds.streamflow.attrs["units"] == "mm d-1"


def test_missing_values_and_flag_m_become_nan(camels, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(camels, root)
    path = root / "usgs_streamflow/01022500_streamflow_qc.txt"
    lines = path.read_text().splitlines()
    lines[0] = "01022500 2000 01 01   -999.00 M"
    lines[1] = lines[1].rsplit(" ", 1)[0] + " M"
    path.write_text("\n".join(lines) + "\n")
    ds = basinsx.read_camels_us(root, basins=["01022500"])
    assert np.isnan(ds.streamflow.isel(basin=0, time=[0, 1])).all()
    assert np.isfinite(ds.streamflow.isel(basin=0, time=2)).item()


def test_huc_subfolders_and_several_products(camels, huc_copy):
    flat = basinsx.read_camels_us(camels, forcing=["daymet", "nldas"])
    nested = basinsx.read_camels_us(huc_copy, forcing=["daymet", "nldas"])
    xr.testing.assert_identical(flat, nested)
    assert flat.prcp.dims == ("source", "basin", "time") and list(flat.source.values) == ["daymet", "nldas"]
    assert flat.streamflow.dims == ("basin", "time")
    # the known quirk of the originals: nldas tmax == tmin
    nl = flat.sel(source="nldas").dropna("time", subset=["tmax"])
    assert (nl.tmax == nl.tmin).all()


@pytest.mark.parametrize("product", ["maurer", "maurer_extended", "nldas"])
def test_every_product_and_its_column_spelling(camels, product):
    ds = basinsx.read_camels_us(camels, forcing=product, basins=["01547700"])
    raw = pd.read_csv(camels / f"basin_mean_forcing/{product}/01547700_lump_{product.split('_')[0]}_forcing_leap.txt",
                      sep=r"\s+", skiprows=3)
    prcp = raw[[c for c in raw.columns if c.lower().startswith("prcp")][0]].to_numpy()
    np.testing.assert_allclose(ds.prcp.isel(basin=0).values[: len(prcp)], prcp, rtol=1e-6)


def test_attributes_keep_strings_and_nan(camels):
    table = read_attributes(camels / "camels_attributes_v2.0")
    assert len(table) == 671 and table.index[0] == "01013500"
    assert table.loc["01013500", "huc_02"] == "01"
    assert np.isnan(table.loc["01013500", "root_depth_50"])
    assert table.loc["01013500", "dom_land_cover"] == "Mixed Forests"
    ds = basinsx.read_camels_us(camels)
    assert ds.huc_02.values.tolist() == ["01", "02", "03", "05"]
    assert ds.aridity.attrs["units"] == "1" and ds.area_gages2.attrs["units"] == "km2"


def test_lazy_equals_eager(camels):
    with raise_if_dask_computes():
        lazy = basinsx.read_camels_us(camels, forcing=["daymet", "maurer"], chunks=2)
    assert isinstance(lazy.prcp.data, da.Array)
    xr.testing.assert_identical(lazy.compute(), basinsx.read_camels_us(camels, forcing=["daymet", "maurer"]))


def test_bad_input(camels, tmp_path):
    with pytest.raises(FileNotFoundError, match="basin_mean_forcing"):
        basinsx.read_camels_us(tmp_path)
    with pytest.raises(ValueError, match="unknown forcing product"):
        basinsx.read_camels_us(camels, forcing="era5")
    with pytest.raises(KeyError, match="close matches: 01022500"):
        basinsx.read_camels_us(camels, basins=["01022550"])
    with pytest.raises(ValueError, match="requested twice"):
        basinsx.read_camels_us(camels, basins=["01022500", "01022500"])


@pytest.fixture
def copy(camels, tmp_path):
    """A writable copy of the CAMELS-US sample to break on purpose."""
    root = tmp_path / "c"
    shutil.copytree(camels, root)
    return root


DAYMET = "basin_mean_forcing/daymet/01022500_lump_cida_forcing_leap.txt"


def _edit_lines(path, edit):
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")


def _set_field(lines, row, column, value):  # row 0 = first data row (line 5); columns as in the file
    fields = lines[4 + row].split()
    fields[column] = value
    lines[4 + row] = " ".join(fields)


def test_minus_999_in_forcing_becomes_nan(copy):
    # columns: Year Mnth Day Hr dayl prcp srad swe tmax tmin vp
    def edit(lines):
        _set_field(lines, 0, 5, "-999.00")
        _set_field(lines, 1, 8, "-999")

    _edit_lines(copy / DAYMET, edit)
    for chunks in (None, 1):
        ds = basinsx.read_camels_us(copy, basins=["01022500"], chunks=chunks).isel(basin=0).compute()
        assert np.isnan(ds.prcp[0]) and np.isnan(ds.tmax[1]) and np.isnan(ds.tmean[1])
        assert ds.prcp[1].item() == pytest.approx(0.0) and ds.tmin[1].item() == pytest.approx(-8.61)
        assert ds.tmax[0].item() == pytest.approx(-2.36) and float(ds.prcp.min()) >= 0
        assert int(ds.prcp.isnull().sum()) == 1 and int(ds.tmax.isnull().sum()) == 1


def test_streamflow_minus_999_with_any_flag_is_nan(copy):
    _edit_lines(copy / "usgs_streamflow/01022500_streamflow_qc.txt",
                lambda lines: lines.__setitem__(3, "01022500 2000 01 04  -999.00 A"))
    q = basinsx.read_camels_us(copy, basins=["01022500"]).streamflow.isel(basin=0)
    assert np.isnan(q[3]) and np.isfinite(q[[2, 4]]).all() and float(q.min()) >= 0


@pytest.mark.parametrize("area", ["0", "-587675987", "nan"])
def test_a_non_positive_area_is_an_error_naming_the_file(copy, area):
    _edit_lines(copy / DAYMET, lambda lines: lines.__setitem__(2, f" {area}"))
    with pytest.raises(ValueError, match=f"01022500_lump_cida_forcing_leap.txt: basin area in the header is {area}"):
        basinsx.read_camels_us(copy, basins=["01022500"], chunks=1)
    with pytest.raises(ValueError, match="01022500_streamflow_qc.txt: basin area must be positive"):
        basinsx.io.camels_us.read_streamflow_file(copy / "usgs_streamflow/01022500_streamflow_qc.txt", 0.0)


def _drop_area_line(lines):
    del lines[2]


def _drop_swe_column(lines):
    for i in range(3, len(lines)):
        fields = lines[i].split()
        lines[i] = " ".join(fields[:7] + fields[8:])


def _duplicate_a_day(lines):
    lines.insert(6, lines[5])


def _short_last_row(lines):
    lines[-1] = " ".join(lines[-1].split()[:6])


def _garbled_value(lines):
    _set_field(lines, 10, 6, "18x.5")


def _bad_month(lines):
    _set_field(lines, 10, 1, "13")


@pytest.mark.parametrize("corrupt, message, lazy", [
    (_drop_area_line, r"header line 3 should hold the basin area \(m2\), found 'Year Mnth", False),
    (_drop_swe_column, "no column swe", False),
    (_duplicate_a_day, "duplicate dates, e.g. 2000-01-02", False),
    (_bad_month, "cannot read as a CAMELS-US forcing file: .*2000-13-11", False),
    (_short_last_row, "line 1465 has fewer than the 11 fields", True),
    (_garbled_value, "cannot read as a CAMELS-US forcing file", True),
])
def test_broken_forcing_file_is_an_error_naming_it(copy, corrupt, message, lazy):
    _edit_lines(copy / DAYMET, corrupt)
    with pytest.raises(FileFormatError if "duplicate" not in message else ValueError,
                       match=f"01022500_lump_cida_forcing_leap.txt: {message}"):
        basinsx.read_camels_us(copy)
    if lazy:  # only the values are broken: the lazy open succeeds and the compute names the file
        ds = basinsx.read_camels_us(copy, chunks=2)
        with pytest.raises(FileFormatError, match=f"01022500_lump_cida_forcing_leap.txt: {message}"):
            ds.prcp.compute()


@pytest.mark.parametrize("corrupt, message", [
    (lambda lines: lines.__setitem__(7, "01022500 2000 01 08"), "line 8 has fewer than the 6 fields"),
    (lambda lines: lines.__setitem__(7, "01022500 2000 01 08 12x.0 A"), "cannot read as a CAMELS-US streamflow"),
    (lambda lines: lines.insert(7, lines[6]), "duplicate dates, e.g. 2000-01-07"),
])
def test_broken_streamflow_file_is_an_error_naming_it(copy, corrupt, message):
    _edit_lines(copy / "usgs_streamflow/01022500_streamflow_qc.txt", corrupt)
    with pytest.raises(ValueError, match=f"01022500_streamflow_qc.txt: {message}"):
        basinsx.read_camels_us(copy, basins=["01022500"])


def test_cli_turns_a_broken_file_into_exit_2(copy, tmp_path, capsys):
    _edit_lines(copy / DAYMET, _drop_area_line)
    assert main(["convert", str(copy), str(tmp_path / "out.zarr")]) == 2
    err = capsys.readouterr().err
    assert "01022500_lump_cida_forcing_leap.txt" in err and "area" in err and "Traceback" not in err


def test_attribute_table_without_gauge_id_names_the_file(copy):
    table = copy / "camels_attributes_v2.0/camels_topo.txt"
    _edit_lines(table, lambda lines: lines.__setitem__(0, lines[0].replace("gauge_id", "id")))
    with pytest.raises(FileFormatError, match="camels_topo.txt: .*gauge_id"):
        basinsx.read_camels_us(copy)


def test_cli_exits_2_when_the_lazy_write_meets_a_broken_file(copy, tmp_path, capsys):
    _edit_lines(copy / DAYMET, _garbled_value)  # found only when the values are read, inside the write
    out = tmp_path / "out.zarr"
    assert main(["convert", str(copy), str(out)]) == 2
    err = capsys.readouterr().err
    assert "01022500_lump_cida_forcing_leap.txt" in err and "18x.5" in err and "Traceback" not in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["c"]  # no half-written store


# --- a file of another gauge, header units, header area, attribute rows ---------------------------------------------

FLOW = "usgs_streamflow/01547700_streamflow_qc.txt"
DAYMET_2 = "basin_mean_forcing/daymet/01547700_lump_cida_forcing_leap.txt"


def test_a_streamflow_file_of_another_gauge_is_an_error_naming_it(copy):
    # before: 02064000's rows were read as 01547700's flow (mean 1.69 instead of 0.90 mm/d), without a word
    shutil.copy(copy / "usgs_streamflow/02064000_streamflow_qc.txt", copy / FLOW)
    for chunks in (None, 2):  # the first row is checked when the data set is opened, lazily too
        with pytest.raises(FileFormatError, match="01547700_streamflow_qc.txt: .*gauge 02064000.*01547700"):
            basinsx.read_camels_us(copy, chunks=chunks)
    with pytest.raises(FileFormatError, match="01547700_streamflow_qc.txt: .*gauge 02064000.*01547700"):
        basinsx.io.camels_us.read_streamflow_file(copy / FLOW, 114169652.0)


def test_a_later_row_of_another_gauge_is_found_by_the_lazy_read(copy):
    _edit_lines(copy / FLOW, lambda lines: lines.__setitem__(100, lines[100].replace("01547700", "01547800")))
    with pytest.raises(FileFormatError, match="01547700_streamflow_qc.txt: line 101 holds gauge 01547800"):
        basinsx.read_camels_us(copy)
    ds = basinsx.read_camels_us(copy, chunks=2)  # only the first row is read up front
    with pytest.raises(FileFormatError, match="01547700_streamflow_qc.txt: line 101 holds gauge 01547800"):
        ds.streamflow.compute()


def _in_other_units(lines):
    """prcp in in/day, tmax and tmin in K, vp in kPa, -999 (missing) in tmax of the first row."""
    lines[3] = (lines[3].replace("prcp(mm/day)", "prcp(in/day)").replace("tmax(C)", "tmax(K)")
                .replace("tmin(C)", "tmin(K)").replace("vp(Pa)", "vp(kPa)"))
    # columns: Year Mnth Day Hr dayl prcp srad swe tmax tmin vp
    for i in range(4, len(lines)):
        f = lines[i].split()
        f[5] = repr(float(f[5]) / 25.4)
        f[8] = repr(float(f[8]) + 273.15) if i > 4 else "-999"
        f[9] = repr(float(f[9]) + 273.15)
        f[10] = repr(float(f[10]) / 1000)
        lines[i] = " ".join(f)


def test_units_in_the_forcing_column_header_are_converted(camels, copy):
    # before: prcp(in/day) was read as mm/d and tmax(K) as degC
    ref = basinsx.read_camels_us(camels, basins=["01547700"]).isel(basin=0)
    _edit_lines(copy / DAYMET_2, _in_other_units)
    for chunks in (None, 1):
        got = basinsx.read_camels_us(copy, basins=["01547700"], chunks=chunks).isel(basin=0).compute()
        for name in ("prcp", "tmin", "vp", "dayl", "srad", "swe"):
            np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-3, err_msg=name)
        assert np.isnan(got.tmax[0]) and np.isnan(got.tmean[0])  # -999 is missing, never -999 K
        np.testing.assert_allclose(got.tmax[1:], ref.tmax[1:], atol=1e-3)
        assert got.prcp.dtype == np.float32 and got.prcp.attrs["units"] == "mm d-1"


def test_the_real_column_headers_are_read_as_they_are(camels):
    raw = pd.read_csv(camels / DAYMET_2, sep=r"\s+", skiprows=3)
    assert list(raw.columns) == ["Year", "Mnth", "Day", "Hr", "dayl(s)", "prcp(mm/day)", "srad(W/m2)", "swe(mm)",
                                 "tmax(C)", "tmin(C)", "vp(Pa)"]
    ds = basinsx.read_camels_us(camels, basins=["01547700"]).isel(basin=0)
    for column in raw.columns[4:]:
        name = column.split("(")[0]
        np.testing.assert_array_equal(ds[name].values[: len(raw)], raw[column].to_numpy(np.float32))


@pytest.mark.parametrize("column, header, message", [
    ("prcp(mm/day)", "prcp(furlong/day)", r"column 'prcp\(furlong/day\)'.*unknown unit 'furlong'"),
    ("tmax(C)", "tmax(mm/day)", r"column 'tmax\(mm/day\)'.*expected a temperature in degC"),
    ("vp(Pa)", "vp(W/m2)", r"column 'vp\(W/m2\)'.*cannot be converted to Pa"),
])
def test_forcing_units_that_cannot_be_converted_are_an_error_naming_file_and_column(copy, column, header, message):
    _edit_lines(copy / DAYMET_2, lambda lines: lines.__setitem__(3, lines[3].replace(column, header)))
    for chunks in (None, 1):  # refused when the header is read, lazy or not
        with pytest.raises(FileFormatError, match=f"01547700_lump_cida_forcing_leap.txt: {message}"):
            basinsx.read_camels_us(copy, chunks=chunks)


@pytest.mark.parametrize("area", ["114.169652", "44081000", "295700000"])  # km2; m2 / 2.59 and * 2.59 (mi2 mix-up)
def test_a_header_area_far_from_the_attribute_areas_is_an_error(copy, area):
    # before: the area in km2 passed the "> 0" check and streamflow came out 1e6 times too large
    _edit_lines(copy / DAYMET_2, lambda lines: lines.__setitem__(2, f" {area}"))
    for attributes in (True, False):  # camels_topo.txt is there either way
        with pytest.raises(FileFormatError, match=r"01547700_lump_cida_forcing_leap.txt: basin area in the header "
                                                   r"\(.* km2\) .*area_gages2 113.54 km2.*area_geospa_fabric 115.19"):
            basinsx.read_camels_us(copy, chunks=1, attributes=attributes)


def test_header_areas_a_few_percent_off_the_attributes_are_accepted(camels):
    ds = basinsx.read_camels_us(camels)  # 03015500: header 831.03 km2, area_gages2 784.85 km2 (5.9 %)
    assert ds.area.sel(basin="03015500").item() == pytest.approx(831.030801)
    assert ds.area_gages2.sel(basin="03015500").item() == pytest.approx(784.85)


def _drop_row(path, gauge):
    _edit_lines(path, lambda lines: lines.__setitem__(slice(None), [x for x in lines if not x.startswith(gauge)]))


def test_a_basin_missing_from_an_attribute_table_is_an_error_naming_both(copy):
    # before: 01547700 got NaN for every topo column, and its header latitude 40.98 was overwritten by NaN
    _drop_row(copy / "camels_attributes_v2.0/camels_topo.txt", "01547700")
    for chunks in (None, 1):
        with pytest.raises(KeyError, match=r"camels_topo.txt: no row for basins \['01547700'\]"):
            basinsx.read_camels_us(copy, chunks=chunks)
    assert basinsx.read_camels_us(copy, basins=["01022500"]).area_gages2.item() == pytest.approx(573.6)
    ds = basinsx.read_camels_us(copy, attributes=False)
    assert ds.gauge_lat.sel(basin="01547700").item() == pytest.approx(40.98)


def test_attribute_ids_are_stripped_and_na_never_overwrites_the_header(copy):
    table = copy / "camels_attributes_v2.0/camels_topo.txt"
    _edit_lines(table, lambda lines: lines.__setitem__(slice(None), [
        x.replace("01547700;41.05951", " 01547700 ;NA") for x in lines]))
    ds = basinsx.read_camels_us(copy)
    assert ds.area_gages2.sel(basin="01547700").item() == pytest.approx(113.54)
    assert ds.gauge_lat.sel(basin="01547700").item() == pytest.approx(40.98)  # header latitude, not NaN
    assert ds.gauge_lat.sel(basin="01022500").item() == pytest.approx(44.60797)  # attributes win where they have one


def test_a_column_in_two_attribute_tables_must_agree(copy):
    folder = copy / "camels_attributes_v2.0"
    topo = pd.read_csv(folder / "camels_topo.txt", sep=";", dtype={"gauge_id": str})
    same = topo[["gauge_id", "area_gages2"]]
    same.to_csv(folder / "camels_zsame.txt", sep=";", index=False)
    ds = basinsx.read_camels_us(copy)  # an identical copy is merged
    assert ds.area_gages2.sel(basin="01547700").item() == pytest.approx(113.54)
    same.assign(area_gages2=same.area_gages2 * 1e6).to_csv(folder / "camels_zsame.txt", sep=";", index=False)
    with pytest.raises(ValueError, match="column 'area_gages2' differs between camels_topo.txt and camels_zsame.txt"
                                         ": basin 01013500 has 2252.7 and 2252700000"):
        basinsx.read_camels_us(copy)
