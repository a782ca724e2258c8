"""``import basinsx`` stays light; subpackages load on first attribute access (SPEC 1)."""

import subprocess
import sys

import basinsx

HEAVY = ("torch", "matplotlib", "openpnm", "porespy", "sklearn")


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_import_basinsx_leaves_heavy_packages_out():
    loaded = run(f"import sys, basinsx; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == "", f"import basinsx imported {loaded}"


def test_subpackages_resolve_lazily_without_heavy_imports():
    code = f"""
import sys
import basinsx
assert "basinsx.models" not in sys.modules
print(basinsx.models.get("gr4j").params)
print(basinsx.embedding.KGSSL.__name__, basinsx.inverse.TNNA.__name__, basinsx.porenet.cubic.__name__,
      basinsx.groundwater.Aquifer.__name__, basinsx.calibration.calibrate.__name__)
print(" ".join(m for m in {HEAVY!r} if m in sys.modules))
"""
    lines = run(code).splitlines()
    assert lines[0] == "('x1', 'x2', 'x3', 'x4')"
    assert lines[1] == "KGSSL TNNA cubic Aquifer calibrate"
    assert lines[2:] in ([], [""]), f"resolving the subpackages imported {lines[2:]}"


def test_dir_lists_subpackages_and_unknown_names_fail():
    names = dir(basinsx)
    for name in ("models", "embedding", "inverse", "porenet", "groundwater", "calibration", "open_dataset"):
        assert name in names
    for name in basinsx._SUBMODULES:
        assert getattr(basinsx, name).__name__ == f"basinsx.{name}"
    try:
        basinsx.no_such_thing
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("basinsx.no_such_thing resolved")
