import pytest

from basinsx.cli import main


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_runs_offline_and_writes_its_outputs(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--n-starts", "1"]) == 0
    out = capsys.readouterr().out
    assert "median KGE: calibration" in out and "12010000" in out
    assert (tmp_path / "demo.png").stat().st_size > 20_000
    import xarray as xr

    result = xr.open_dataset(tmp_path / "calibration.nc")
    assert result.sizes["basin"] == 10 and "kge_validation" in result
    assert float(result.kge.median()) > 0.5  # GR4J + snow on KGE over 14 years of real data
