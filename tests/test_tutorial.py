"""The tutorial script of the user guide runs end to end on a few galaxies."""

from __future__ import annotations

import runpy
from pathlib import Path

TUTORIAL = Path(__file__).parents[1] / "docs" / "tutorial.py"


def test_the_tutorial_runs_on_tiny_inputs(tmp_path, capsys):
    module = runpy.run_path(str(TUTORIAL))
    module["main"](["--out", str(tmp_path), "--n", "16", "--passes", "2", "--epochs", "1"])
    printed = capsys.readouterr().out
    assert "simulated 16 galaxies" in printed and "68 % intervals hold" in printed
    assert (tmp_path / "report" / "report.md").is_file()
    assert len(list((tmp_path / "crops").glob("*.fits"))) == 16
    assert "fine-tuned model" in printed and (tmp_path / "finetuned" / "gampen.json").is_file()
