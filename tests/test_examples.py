"""Every script in examples/ runs end to end on the bundled sample, and its figure says what it shows.

Each script runs in a fresh interpreter (as a user runs it); a wrapper then describes the
figures it left open (titles, axis labels, colour bars, shared axes, scatter points) for the
checks below.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))

DESCRIBE = """
import json, runpy, sys

import matplotlib.pyplot as plt
from matplotlib.collections import PathCollection

script, out = sys.argv[1:]
sys.argv = [script, out]
runpy.run_path(script, run_name="__main__")
figures = []
for number in plt.get_fignums():
    axes = plt.figure(number).axes
    figures.append([{
        "title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
        "colorbar": ax.get_label() == "<colorbar>",
        "lines": [line.get_label() for line in ax.get_lines()],
        "points": [len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)],
        "sharex": [j for j, other in enumerate(axes) if other is not ax and ax.get_shared_x_axes().joined(ax, other)],
        "legend": [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [],
    } for ax in axes])
with open(f"{out}/figures.json", "w") as f:
    json.dump(figures, f)
"""


def colorbars(axes):
    return [ax["ylabel"] or ax["xlabel"] for ax in axes if ax["colorbar"]]


def check_calibrate_sample(axes, stdout):
    hydro, heat = (next(i for i, ax in enumerate(axes) if ax["title"].startswith(start))
                   for start in ("12010000 NASELLE RIVER", "sensitivity of daily flow"))
    assert axes[hydro]["lines"] == ["observed", "GR4J (validation)"]
    assert hydro in axes[heat]["sharex"], "hydrograph and sensitivity heat map do not share the time axis"
    assert colorbars(axes) == ["∂q/∂θ, each row divided by its largest |value|"]


def check_embed_sample(axes, stdout):
    assert "out-of-sample" in stdout and "in-sample" in stdout
    parity = next(ax for ax in axes if ax["title"].startswith("aridity imputed out of sample: R² = "))
    assert parity["points"] == [10] and parity["xlabel"] == "true aridity (PET/P)"
    assert colorbars(axes) == ["aridity"]


def check_groundwater_inversion(axes, stdout):
    maps = [ax for ax in axes if ax["title"].startswith("permeability, ")]
    assert len(maps) == 2
    for ax in maps:
        assert ax["xlabel"].startswith("x (m)") and ax["ylabel"] == "y (m)"
        assert ax["points"] == [25], "the maps show the 25 wells"
    assert maps[0]["legend"] == ["observation wells"]
    assert colorbars(axes) == ["log10 permeability (m2)"]


def check_pore_network(axes, stdout):
    (hist,) = axes
    assert "∂ln K / ∂ln g" in hist["xlabel"] and hist["ylabel"] == "number of throats (log scale)"
    throats = 14 * 10 * 10 + 15 * 9 * 10 + 15 * 10 * 9  # the example's 15 x 10 x 10 cubic network
    assert hist["title"] == f"which of the {throats} throats carry the permeability"


def check_regional_sample(axes, stdout):
    assert stdout.count("ungauged, validation") == 2
    (ax,) = axes
    assert ax["title"].startswith("12010000") and ax["title"].endswith("never gauged in training")
    assert ax["lines"] == ["observed", "GR4J + snow, parameters from attributes"]
    assert ax["ylabel"] == "streamflow (mm/d)"


CHECKS = {f"{check.__name__.removeprefix('check_')}.py": check for check in
          (check_calibrate_sample, check_embed_sample, check_groundwater_inversion, check_pore_network,
           check_regional_sample)}


def test_every_example_is_checked():
    assert sorted(CHECKS) == [p.name for p in EXAMPLES]


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    done = subprocess.run([sys.executable, "-c", DESCRIBE, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert any(p.name != "figures.json" for p in tmp_path.iterdir()), "the example wrote nothing"
    (figure,) = json.loads((tmp_path / "figures.json").read_text())
    CHECKS[script.name](figure, done.stdout)
