"""The top-level calls: ``import gampen`` then simulate, train, predict, evaluate, load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

import gampen
from gampen.errors import ConfigError

from .synthetic import TINY_NETWORK


def test_the_main_calls_run_end_to_end(tmp_path):
    catalog = gampen.simulate(tmp_path / "sims", 24, seed=4, workers=1, progress=False)
    assert len(Table.read(catalog, format="ascii.csv")) == 24
    bundle = gampen.train(
        catalog,
        tmp_path / "model",
        epochs=1,
        batch_size=8,
        network=dict(TINY_NETWORK),
        val_fraction=0.25,
        test_fraction=0.0,
        progress=False,
        logger=["csv"],
    )
    model = gampen.load_model(bundle)
    assert model.param_names == ["bt", "r_e", "flux"]
    fast = dict(n_passes=2, n_samples=40, num_workers=0, progress=False)
    table = gampen.predict(catalog, model=bundle, out=tmp_path / "p.parquet", **fast)
    assert isinstance(table, Table) and len(table) == 24
    metrics = gampen.evaluate(
        tmp_path / "p.parquet", catalog, out=tmp_path / "report", progress=False
    )
    assert metrics["inputs"]["n_used"] == 24
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["headline"]
    assert np.isfinite(table["r_e_median"]).all()
    # the table predict returns, and a truth table in memory, are judged the same way
    again = gampen.evaluate(table, Table.read(catalog), out=tmp_path / "r2", progress=False)
    assert again["inputs"]["n_used"] == 24 and again["headline"] == metrics["headline"]


def test_the_default_model_loads_and_unknown_options_are_refused(tmp_path):
    assert gampen.load_model().param_names == ["bt", "r_e", "flux"]
    with pytest.raises(ConfigError, match="unknown EvaluateOptions field"):
        gampen.evaluate("p.parquet", "t.csv", out=tmp_path, rotations=True)


def test_the_calls_are_plain_functions_beside_subpackages_of_their_own():
    import types

    import gampen.evaluation
    import gampen.simulation as package
    import gampen.training
    from gampen.simulation import load_config
    from gampen.training.config import TrainConfig

    for call in ("predict", "simulate", "train", "calibrate", "evaluate", "load_model"):
        assert isinstance(getattr(gampen, call), types.FunctionType), call
    assert type(package) is types.ModuleType and package is not gampen.simulate
    assert type(gampen.training) is types.ModuleType is type(gampen.evaluation)
    assert load_config("hsc").to_dict() and TrainConfig.__name__ == "TrainConfig"


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        ("predict", "gampen.infer.options.PredictOptions"),
        ("evaluate", "gampen.evaluation.options.EvaluateOptions"),
        ("train", "gampen.training.config.TrainConfig"),
    ],
)
def test_help_shows_every_real_option(call, kind):
    import dataclasses
    import importlib
    import pydoc

    module, name = kind.rsplit(".", 1)
    fields = [f.name for f in dataclasses.fields(getattr(importlib.import_module(module), name))]
    text = pydoc.render_doc(getattr(gampen, call), renderer=pydoc.plaintext)
    assert "**" not in text.splitlines()[2]  # no catch-all left in the signature line
    for field in fields:
        assert f"{field}=" in text or f"{field}:" in text, field


def test_calibrate_help_lists_the_sampling_options():
    import inspect

    names = list(inspect.signature(gampen.calibrate).parameters)
    assert names[:3] == ["model", "catalog", "out"]
    assert {"n_passes", "n_samples", "seed", "force", "check_fraction"} <= set(names)
    assert "keep_columns" not in names  # a prediction-table option, not calibration's
    with pytest.raises(ConfigError, match="unknown calibrate option"):
        gampen.calibrate("m", "c.csv", out="x", keep_columns=("a",))


def test_simulate_from_a_script_without_a_main_guard_says_so(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "make_sims.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import gampen
            gampen.simulate({str(tmp_path / "sims")!r}, 4, workers=2, progress=False)
            """
        )
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert 'if __name__ == "__main__":' in run.stderr
    assert run.stderr.count("Traceback") <= 3  # the parent's and at most two workers'
    guarded = tmp_path / "guarded.py"
    guarded.write_text(
        script.read_text().replace(
            "gampen.simulate(", 'if __name__ == "__main__":\n    gampen.simulate('
        )
    )
    ok = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
