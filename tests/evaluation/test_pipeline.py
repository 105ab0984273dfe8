"""evaluate(): every check on a synthetic set, with and without samples; options."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from astropy.table import Table

from gampen.checksum import file_sha256
from gampen.errors import CatalogError, ConfigError
from gampen.evaluation import evidence as ev
from gampen.evaluation.inputs import load_inputs
from gampen.evaluation.pipeline import EvaluateOptions, evaluate

from ..synthetic import tiny_bundle
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


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny untrained bundle whose label transform has eps = 0.05 (as the shipped one)."""
    folder = tmp_path_factory.mktemp("model")
    bundle = tiny_bundle(folder)
    meta = json.loads((bundle / "gampen.json").read_text())
    meta["preprocessing"]["labels"]["eps"] = 0.05
    (bundle / "gampen.json").write_text(json.dumps(meta))
    return bundle


def test_the_joint_tests_use_the_models_eps(tmp_path, files, model):
    pred, truth, samples = files
    given = EvaluateOptions(model=str(model), progress=False)
    metrics = evaluate(pred, truth, out=tmp_path / "m", samples=samples, options=given)
    assert metrics["inputs"]["logit_eps"] == 0.05 and metrics["inputs"]["model"] == str(model)
    found = ev.collect(
        load_inputs(pred, truth, samples=samples),
        rng=np.random.default_rng(0),  # the seed evaluate starts from
        progress=False,
        eps=0.05,
    )
    assert metrics["joint"] == ev.summarise(found, curves=True)["joint"]
    plain = evaluate(pred, truth, out=tmp_path / "p", samples=samples, options=EvaluateOptions())
    assert plain["inputs"]["logit_eps"] == 1e-3 and plain["inputs"]["model"] is None
    assert plain["joint"] != metrics["joint"]
    assert plain["marginal"] == metrics["marginal"]  # eps only enters the joint space
    assert "eps = 0.05 (the model's" in (tmp_path / "m" / "report.md").read_text()


def test_training_galaxies_are_refused_unless_allowed(tmp_path, files, model, trained_on):
    pred, truth, _ = files
    trained = trained_on(model, tmp_path, truth)
    subset = Table.read(truth)[50:350]
    subset.write(tmp_path / "subset.parquet")  # another file and format: the same galaxies
    for catalog in (truth, tmp_path / "subset.parquet"):
        options = EvaluateOptions(model=str(trained), progress=False)
        with pytest.raises(CatalogError, match="holds galaxies the model") as err:
            evaluate(pred, catalog, out=tmp_path / "r", options=options)
        assert str(catalog) in str(err.value) and "labels of training galaxies" in str(err.value)
        assert "--allow-training-galaxies" in str(err.value)
    assert not (tmp_path / "r" / "metrics.json").exists()
    allowed = EvaluateOptions(model=str(trained), allow_training_galaxies=True, progress=False)
    metrics = evaluate(pred, truth, out=tmp_path / "a", options=allowed)
    assert "labels of training galaxies" in metrics["inputs"]["training_overlap"]
    assert "training galaxies** (" in (tmp_path / "a" / "report.md").read_text()
    fresh = write_inputs(tmp_path / "fresh", gaussian_population(100, scale=1.0, seed=6))
    options = EvaluateOptions(model=str(trained), progress=False)
    assert (
        evaluate(*fresh[:2], out=tmp_path / "f", options=options)["inputs"]["training_overlap"]
        == ""
    )


def test_the_training_file_itself_is_refused(tmp_path, files, model):
    pred, truth, _ = files
    copy = tmp_path / "same-file-model"
    shutil.copytree(model, copy)
    meta = json.loads((copy / "gampen.json").read_text())
    meta["provenance"] = {"data_sha256": file_sha256(truth)}  # no sampled marks at all
    (copy / "gampen.json").write_text(json.dumps(meta))
    options = EvaluateOptions(model=str(copy), progress=False)
    with pytest.raises(CatalogError, match="it is the catalog the model was trained on"):
        evaluate(pred, truth, out=tmp_path, options=options)
