"""benchmarks/calibration_models.py: which (model, snow) runs it makes and on which basins.

hbv has its own snow routine (``snow=`` does not apply to it): the script runs it once, without a snow
option, and says so, where it used to fail on ``--snow``.
"""

import pytest

import basinsx.models as bm

from conftest import benchmark_script


@pytest.fixture(scope="module")
def script():
    with benchmark_script("calibration_models") as module:
        yield module


def test_every_run_is_one_the_model_takes(script):
    runs = script.runs(bm.available(), ["none", "degree_day", "cemaneige"])
    for name, snow, label in runs:
        assert snow is None or snow in bm.spec(name).snow, label
        bm.get(name, snow=snow or False)  # raises where the model does not take the option
    assert {n for n, _, _ in runs} == set(bm.available())


def test_hbv_runs_once_without_a_snow_option_and_says_so(script):
    runs = script.runs(["gr4j", "hbv"], ["degree_day", "cemaneige"])
    assert [(n, s) for n, s, _ in runs] == [("gr4j", "degree_day"), ("gr4j", "cemaneige"), ("hbv", None)]
    assert "own snow" in runs[-1][2]


def test_unknown_snow_option_is_an_error(script):
    with pytest.raises(ValueError, match="snow"):
        script.runs(["gr4j"], ["snowy"])


def test_ode_models_take_every_ode_step_th_basin(script):
    assert script.basin_step("hmodel", step=1, ode_step=5) == 5
    assert script.basin_step("gr4j", step=1, ode_step=5) == 1
