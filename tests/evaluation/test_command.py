"""``gampen evaluate`` from the command line: a tiny predicted set, with the model checks."""

from __future__ import annotations

import json

import pytest

from gampen.cli import build_parser, main

from .posteriors import gaussian_population, write_inputs


def test_evaluate_writes_metrics_report_and_figures(tmp_path, model_inputs, capsys):
    m = model_inputs
    out = tmp_path / "report"
    status = main(
        [
            "evaluate",
            str(m.predictions),
            "--truth",
            str(m.truth),
            "--samples",
            str(m.samples),
            "--out",
            str(out),
            "--model",
            str(m.bundle),
            "--show",
            "2",
            "--rotation",
            "--rotation-galaxies",
            "3",
            "--n-passes",
            "2",
            "--n-samples",
            "20",
            "--no-progress",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "| all | 12 | bt |" in printed and "report.md" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["inputs"]["sample_settings"]["n_samples"] == 40  # from the samples file
    assert metrics["rotation"]["dihedral"]["settings"]["n_galaxies"] == 3
    assert metrics["rotation"]["rendered"]["params"]["r_e"]["n_groups"] == 4
    figures = set(metrics["figures"])
    assert {"coverage.png", "pit.png", "joint.png", "residuals.png", "rotation.png"} <= figures
    assert "cutout_grid.png" in figures and sum(f.startswith("show_") for f in figures) == 2
    assert all((out / f).is_file() for f in figures)
    report = (out / "report.md").read_text()
    assert "## Rotation stability" in report and "](cutout_grid.png)" in report


def test_bad_input_exits_with_a_clear_message(tmp_path, model_inputs, capsys):
    status = main(
        [
            "evaluate",
            str(model_inputs.predictions),
            "--truth",
            str(tmp_path / "no.csv"),
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 2
    assert "gampen evaluate: error: catalog file not found" in capsys.readouterr().err
    status = main(
        [
            "evaluate",
            str(model_inputs.predictions),
            "--truth",
            str(model_inputs.truth),
            "--out",
            str(tmp_path),
            "--show",
            "-3",
        ]
    )
    assert status == 2 and "'show' is invalid" in capsys.readouterr().err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--truth",
        "--samples",
        "--out",
        "--model",
        "--show",
        "--rotation",
        "--image-dir",
        "--allow-training-galaxies",
    ):
        assert option in text


def test_a_catalog_of_training_galaxies_is_refused_with_the_file_and_why(
    tmp_path, model_inputs, trained_on, capsys
):
    pred, truth, _ = write_inputs(tmp_path / "in", gaussian_population(200, scale=1.0, seed=2))
    trained = trained_on(model_inputs.bundle, tmp_path, truth)
    args = ["evaluate", str(pred), "--truth", str(truth), "--model", str(trained), "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert f"{truth} holds galaxies the model {trained} was trained on" in err
    assert "sampled rows have exactly the labels of training galaxies" in err
    assert main([*args, "--out", str(tmp_path / "told"), "--allow-training-galaxies"]) == 0
    metrics = json.loads((tmp_path / "told" / "metrics.json").read_text())
    assert "labels of training galaxies" in metrics["inputs"]["training_overlap"]
