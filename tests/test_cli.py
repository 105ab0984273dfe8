"""The command line: help, version, clear errors, and the data-layer commands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gampen import __version__
from gampen.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "pack" in out and "selfcheck" in out


@pytest.mark.parametrize(
    "command", ["predict", "demo", "train", "calibrate", "evaluate", "simulate"]
)
def test_help_text_renders_percent_signs_once(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "%%" not in out and "%(" not in out
    if command in ("predict", "demo"):
        assert "% intervals" in out


def test_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "gampen", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: gampen" in result.stdout


def test_user_error_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["pack", str(tmp_path / "cat.txt"), "--out", str(tmp_path / "p.h5")]) == 2
    err = capsys.readouterr().err
    assert "gampen pack: error:" in err and "cannot tell the table format" in err


def test_selfcheck_and_pack(tmp_path, capsys):
    assert main(["selfcheck", "--out", str(tmp_path)]) == 0
    assert "self-check passed" in capsys.readouterr().out
    assert main(["pack", str(tmp_path / "catalog.csv"), "--out", str(tmp_path / "again.h5")]) == 0
    out = capsys.readouterr().out
    assert "wrote 10 galaxies" in out and "UNREADABLE" in out
