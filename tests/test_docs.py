"""The documentation site builds offline, API reference included."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("mkdocs") is None, reason="mkdocs (the docs extra) is not installed")
def test_site_builds(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("open_dataset", "calibrate", "KGSSL", "Aquifer", "permeability"):
        assert name in api
    for page in ("data", "calibration", "embedding", "inversion", "porenet", "cluster", "benchmarks"):
        assert (tmp_path / "site" / page / "index.html").exists(), page
