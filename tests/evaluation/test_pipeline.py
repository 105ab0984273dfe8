"""evaluate(): every check on a synthetic set, with and without samples; options."""

from __future__ import annotations

import json

import pytest

from gampen.errors import ConfigError
from gampen.evaluation.pipeline import EvaluateOptions, evaluate

from .posteriors import gaussian_population, write_inputs

TOP_KEYS = {
    "gampen_version",
    "inputs",
    "marginal",
    "pit",
    "joint",
    "conditional",
    "accuracy",
    "accuracy_binned",
    "rotation",
    "headline",
    "figures",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pop = gaussian_population(400, scale=1.0, n_samples=200, seed=5)
    pop.predictions["flags"][:3] = 1  # fatal: left out and counted
    return write_inputs(tmp_path_factory.mktemp("pipeline"), pop)


def test_with_samples_every_check_runs(tmp_path, files):
    pred, truth, samples = files
    metrics = evaluate(
        pred, truth, out=tmp_path, samples=samples, options=EvaluateOptions(progress=False)
    )
    assert set(metrics) == TOP_KEYS
    assert metrics["inputs"]["n_used"] == 397 and metrics["inputs"]["left_out"]["fatal_flag"] == 3
    assert metrics["inputs"]["sample_settings"] == {}  # this file records none
    assert metrics["marginal"]["params"]["bt"]["curve_source"] == "samples"
    assert len(metrics["marginal"]["params"]["bt"]["curve"]["levels"]) > 100
    head = metrics["headline"]
    assert set(head["coverage"]) >= {"all", "isolated", "with neighbours", "bright (mag < 21)"}
    assert set(head["joint"]) == {"68", "95"} and set(head["tarp"]) == {"68", "95"}
    assert metrics["rotation"] == {}
    written = {p.name for p in tmp_path.iterdir()}
    assert {"metrics.json", "report.md", *metrics["figures"]} == written
    assert {
        "coverage.png",
        "pit.png",
        "joint.png",
        "coverage_subsets.png",
        "residuals.png",
    } <= written
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["headline"]["coverage"]["all"]["bt"]["ci68"] == pytest.approx(
        head["coverage"]["all"]["bt"]["ci68"]
    )


def test_without_samples_only_the_table_is_judged(tmp_path, files):
    pred, truth, _ = files
    metrics = evaluate(pred, truth, out=tmp_path, options=EvaluateOptions(progress=False))
    assert "pit" not in metrics and "joint" not in metrics and "joint" not in metrics["headline"]
    assert metrics["marginal"]["params"]["r_e"]["curve"]["levels"] == [0.6827, 0.9545, 0.9973]
    assert "none (table intervals only)" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "pit.png").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("show", -1), ("rotation_galaxies", 0), ("n_passes", 0), ("n_samples", 1.5), ("seed", -2)],
)
def test_options_are_validated(field, value):
    with pytest.raises(ConfigError, match=field):
        EvaluateOptions(**{field: value})
    assert not EvaluateOptions().needs_model and EvaluateOptions(show=1).needs_model
