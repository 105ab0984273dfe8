"""The ``gampen simulate`` command and its preview grid."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.figure import Figure

from gampen.cli import main
from gampen.errors import ConfigError
from gampen.simulation.presets import load_config
from gampen.simulation.preview import asinh_stretch, preview_figure

from .conftest import REFERENCE_N, REFERENCE_SEED, folder_bytes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_cli_run_with_preview_equals_the_api(
    reference_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, png = tmp_path / "set", tmp_path / "preview.png"
    argv = ["simulate", "--preset", "hsc", "--n", str(REFERENCE_N), "--out", str(out)]
    argv += ["--seed", str(REFERENCE_SEED), "--workers", "1", "--no-progress"]
    assert main([*argv, "--preview", str(png)]) == 0
    printed = capsys.readouterr().out
    assert f"{REFERENCE_N} galaxies" in printed and "preview:" in printed
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert folder_bytes(out) == folder_bytes(reference_run)
    # the same command again: nothing left to draw, same result
    assert main(argv) == 0
    assert "0 drawn now" in capsys.readouterr().out
    assert folder_bytes(out) == folder_bytes(reference_run)


def test_cli_preview_of_an_existing_set(reference_run: Path, tmp_path: Path) -> None:
    png = tmp_path / "again.png"
    assert main(["simulate", "--out", str(reference_run), "--preview", str(png)]) == 0
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_show_config_prints_reusable_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("neighbours: {probability: 0.9}\n")
    assert main(["simulate", "--preset", "lsst", "--config", str(mine), "--show-config"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["name"] == "lsst" and shown["neighbours"]["probability"] == 0.9
    assert shown == load_config("lsst", mine).to_dict()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "5"], "--out: required"),
        ([], "--n: required to simulate"),
        (["--n", "5", "--preset", "sdss"], "--preset: unknown preset; got 'sdss'"),
        (["--n", "5", "--config", "BAD"], "central.q_disk: out of range; got 1.5"),
        (["--preview", "p.png"], "--preview: no info.csv"),
    ],
)
def test_cli_errors_name_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("central: {q_disk: [0.2, 1.5]}\n")
    args = [str(bad) if a == "BAD" else a for a in args]
    out = [] if message.startswith("--out") else ["--out", str(tmp_path / "o")]
    assert main(["simulate", *out, *args]) == 2
    assert message in capsys.readouterr().err


def test_preview_figure_shows_each_cutout_with_its_truth(reference_run: Path) -> None:
    figure = preview_figure(reference_run, count=16)
    assert isinstance(figure, Figure)
    panels = [ax for ax in figure.axes if ax.images]
    assert len(panels) == REFERENCE_N  # fewer galaxies than panels: the rest stay empty
    text = panels[0].texts[0].get_text()
    assert "bt " in text and "r_e " in text and "mag " in text and "nbrs " in text
    assert len(panels[0].patches) == 1  # the r_e circle
    assert len(preview_figure(reference_run, count=4).axes) == 4


def test_preview_needs_a_finished_set(tmp_path: Path, reference_run: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(reference_run, partial)
    (partial / "info.csv").unlink()
    with pytest.raises(ConfigError, match=r"no info\.csv"):
        preview_figure(partial)


def test_asinh_stretch_spans_noise_to_peak() -> None:
    image = np.array([[-5.0, 0.0], [1.0, 1000.0]])
    shown = asinh_stretch(image, noise=1.0)
    assert shown.min() == 0.0 and shown.max() == 1.0
    assert 0.0 < shown[0, 1] < shown[1, 0] < 0.5


def test_ctrl_c_tells_how_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    from gampen.simulation import runner

    monkeypatch.setattr(runner, "simulate", interrupted)
    assert main(["simulate", "--n", "5", "--out", str(tmp_path / "o")]) == 130
    assert "rerun the same command" in capsys.readouterr().err
