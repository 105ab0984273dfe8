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


def test_the_default_model_loads_and_unknown_options_are_refused(tmp_path):
    assert gampen.load_model().param_names == ["bt", "r_e", "flux"]
    with pytest.raises(ConfigError, match="unknown EvaluateOptions field"):
        gampen.evaluate("p.parquet", "t.csv", out=tmp_path, rotations=True)


def test_the_subpackages_are_also_the_calls():
    import types

    import gampen.simulate as package
    from gampen.simulate import load_config
    from gampen.train.config import TrainConfig

    assert isinstance(package, types.ModuleType) and package is gampen.simulate
    assert callable(gampen.simulate) and callable(gampen.train) and callable(gampen.evaluate)
    assert load_config("hsc").to_dict() and TrainConfig.__name__ == "TrainConfig"
