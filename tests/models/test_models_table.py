"""docs/models.md's table of models and parameters names every registered model and snow option, with the
units and bounds of the registry, so it cannot go stale."""

import re
from pathlib import Path

import numpy as np
import pytest

import basinsx.models as bm

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
TICKED = re.compile(r"`\"?([\w-]+)\"?`")


def table() -> dict[str, dict[str, tuple[str, str]]]:
    """``{model or snow option: {parameter: (unit, bounds cell)}}`` from the table's rows; a row
    "`x1` – `x4` as `gr4j`" takes the rows of the model it names."""
    section = DOC.read_text().split("## Models and parameters", 1)[1]
    lines = section[section.index("| model | parameter |"):].split("\n\n", 1)[0].splitlines()[2:]
    groups, names = {}, []
    for line in lines:
        model, param, unit, bounds = (c.strip() for c in line.strip().strip("|").split("|")[:4])
        if model:
            names = TICKED.findall(model)
            for n in names:
                groups.setdefault(n, {})
        for n in names:
            if " as `" in param:
                groups[n].update(groups[TICKED.findall(param.split(" as ", 1)[1])[0]])
            else:
                groups[n][TICKED.findall(param)[0]] = (unit, bounds)
    return groups


def expected(name: str, snow=None):
    m = bm.get(name, snow=snow or False)
    own = set(bm.get(name).params) if snow else set()
    return {p: (m.units[p], m.bounds[p]) for p in m.params if p not in own}


CASES = [(name, None) for name in bm.available()] + [("gr4j", option) for option in bm.SNOW_CODES]


@pytest.mark.parametrize(("name", "snow"), CASES)
def test_table_has_every_parameter_with_the_registry_units_and_bounds(name, snow):
    rows = table().get(snow or name)
    assert rows is not None, f"docs/models.md's table has no rows for {snow or name!r}"
    want = expected(name, snow)
    assert set(rows) == set(want), f"{snow or name}: table {sorted(rows)}, registry {sorted(want)}"
    for p, (unit, bounds) in want.items():
        assert rows[p][0] == unit, f"{snow or name}.{p}: table unit {rows[p][0]!r}, registry {unit!r}"
        low, high = (float(v) for v in rows[p][1].split("–"))
        assert np.allclose([low, high], bounds, rtol=1e-12, atol=0), f"{snow or name}.{p}: {rows[p][1]} vs {bounds}"


def test_the_parser_sees_a_missing_model():
    assert "no_such_model" not in table() and {"gr4j", "gr4j_ode", "cemaneige_hyst"} <= set(table())
