import contextlib
import io
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr

import basinsx
from basinsx import demo
from basinsx.cli import main


def run_demo(out) -> str:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["demo", "--out", str(out), "--n-starts", "1"]) == 0
    return stdout.getvalue()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    printed = run_demo(out)
    return out, printed


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_runs_offline_and_writes_its_outputs(demo_run):
    out, printed = demo_run
    assert "median KGE: calibration" in printed and "12010000" in printed
    assert (out / "demo.png").stat().st_size > 20_000
    result = xr.open_dataset(out / "calibration.nc")
    assert result.sizes["basin"] == 10 and "kge_validation" in result
    assert float(result.kge.median()) > 0.5  # GR4J + snow on KGE over 14 years of real data


def test_demo_tables_show_units(demo_run):
    _, printed = demo_run
    header = next(line for line in printed.splitlines() if line.lstrip().startswith("name"))
    for column in ("area (km2)", "P (mm d-1)", "PET (mm d-1)", "T (degC)", "Q (mm d-1)", "Q/P (-)"):
        assert column in header
    header = next(line for line in printed.splitlines() if "KGE 1982-1995 (-)" in line)
    for column in ("KGE 1996-2014 (-)", "x1 (mm)", "x2 (mm d-1)", "x3 (mm)", "x4 (d)", "T_tr (degC)",
                   "f_dd (mm degC-1 d-1)"):
        assert column in header


def test_demo_table_flags_parameters_on_a_bound():
    result = xr.Dataset({"params": (("basin", "param"), [[10.0, 2.5], [350.0, 2.5]]),
                         "at_bound": (("basin", "param"), [[True, False], [False, False]]),
                         "kge": ("basin", [0.5, 0.7]), "kge_validation": ("basin", [0.4, 0.6])},
                        coords={"basin": ["a", "b"], "param": ["x1", "x4"], "param_units": ("param", ["mm", "d"])})
    table = demo.results_table(result)
    assert table.loc["a", "x1 (mm)"] == "10.0*" and table.loc["b", "x1 (mm)"] == "350.0"
    assert table.loc["a", "x4 (d)"] == "2.5"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_figure_names_basin_period_and_zero_flows(demo_run):
    out, _ = demo_run
    result = xr.open_dataset(out / "calibration.nc").load()
    ds = basinsx.open_dataset("sample", chunks=None)
    ds = ds.assign(pet=ds.hydro.pet("oudin"))
    sim = ds.hydro.simulate(result.params, model="gr4j", snow=True)
    fig = demo._figure(ds.streamflow, sim, ds.prcp, result, "gr4j + snow")
    fig.canvas.draw()
    hydro, fdc, kge = (ax for ax in fig.axes if ax.get_title())

    val = result.kge_validation.to_series()
    typical = (val - val.median()).abs().idxmin()  # the basin nearest the median validation KGE
    assert demo.typical_basin(result.kge_validation) == typical != val.idxmax()  # not the best one
    title = hydro.get_title()
    assert title.startswith(f"{typical} {ds.gauge_name.sel(basin=typical).item()}")
    assert "median" in title and f"{val[typical]:.2f}" in title
    assert [line.get_label() for line in hydro.get_lines()] == ["observed", "gr4j + snow"]

    assert fdc.get_title() == "flow-duration curves, 1996-01-01 to 2014-12-31"
    labels = [line.get_label() for line in fdc.get_lines()]
    assert labels == [f"{b} {what}" for b in result.basin.values for what in ("observed", "gr4j + snow")]
    q = ds.streamflow.sel(basin="08086290", time=demo.VALIDATION).values
    zero = 100 * (q == 0).sum() / np.isfinite(q).sum()
    assert zero > 50  # Big Sandy Creek, TX: the sample's driest basin
    legend = [t.get_text() for t in fdc.get_legend().get_texts()]
    assert any(t.startswith(f"08086290, days with zero flow: observed {zero:.0f} %") for t in legend)
    assert all((line.get_ydata() > 0).all() for line in fdc.get_lines())

    assert [t.get_text() for t in kge.get_legend().get_texts()] == ["calibration 1982-1995", "validation 1996-2014"]
    bold = [t.get_text() for t in kge.get_xticklabels() if t.get_fontweight() == "bold"]
    assert bold == [typical]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_without_matplotlib_prints_and_writes_results(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # a core install: `import matplotlib` fails
    printed = run_demo(tmp_path)
    assert "median KGE: calibration" in printed
    assert "pip install 'basinsx[plot]'" in printed
    assert (tmp_path / "calibration.nc").exists() and not (tmp_path / "demo.png").exists()


@pytest.mark.parametrize("name", ["calibration.nc", "demo.png"])
def test_demo_never_replaces_a_file_it_did_not_write(tmp_path, capsys, name, demo_run):
    (tmp_path / name).write_text("MINE")
    assert main(["demo", "--out", str(tmp_path), "--n-starts", "1"]) == 2  # before: replaced, no word
    assert (tmp_path / name).read_text() == "MINE"
    assert f"{tmp_path / name} exists and was not written by basinsx demo" in capsys.readouterr().err
    out, _ = demo_run
    demo.check_outputs(out)  # its own outputs, from an earlier run: replaced
