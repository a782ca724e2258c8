"""The CLI names the models it takes from the registry, so its help cannot go stale."""

import pytest

import basinsx.models as bm
from basinsx.cli import build_parser


@pytest.mark.parametrize("command", ["calibrate", "demo"])
def test_model_help_lists_every_registered_model(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    missing = [name for name in bm.available() if name not in help_text]
    assert not missing, f"basinsx {command} --help does not name {missing}"
