"""Training building blocks: config, splits, augmentation, sampler, pickle-free checkpoints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from astropy.table import Table

from gampen.errors import CatalogError, ConfigError
from gampen.train.augment import Augment
from gampen.train.checkpoint_io import SafeCheckpointIO
from gampen.train.config import TrainConfig, load_config, preset_names
from gampen.train.data import SeededSampler
from gampen.train.module import WarmupCosine
from gampen.train.splits import column_splits, random_splits


def test_presets_and_precedence(tmp_path):
    assert {"default", "gampen-paper"} <= set(preset_names())
    paper = load_config(preset="gampen-paper", overrides={})
    assert paper.network["backbone"] == "vgg16" and paper.optimizer == "sgd"
    assert paper.momentum == 0.99 and paper.weight_decay == 1e-4
    user = tmp_path / "my.yaml"
    user.write_text("lr: 0.01\nepochs: 7\nnetwork:\n  dropout: 0.2\n")
    config = load_config(
        preset="gampen-paper", config_file=user, overrides={"epochs": 3, "lr": None}
    )
    assert (config.lr, config.epochs) == (0.01, 3)  # flag beats YAML beats preset; None = unset
    assert config.network == {"backbone": "vgg16", "stn": "zoom", "dropout": 0.2}


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"lr": -1.0}, r"'lr' is invalid; got -1\.0; expected \(0\.0, 10\.0\]"),
        ({"optimizer": "adam"}, r"'optimizer' is invalid; got 'adam'"),
        ({"val_fraction": 0.9}, r"'val_fraction' is invalid; got 0\.9"),
        ({"epochs": 0}, r"'epochs' is invalid; got 0; expected integer in \[1, 100000\]"),
        ({"freeze": ["stn"]}, r"'freeze' needs 'init_from'"),
        ({"balance_on": "mass"}, r"'balance_on' must be a target"),
        ({"logger": ["wandb"]}, r"'logger' is invalid; got 'wandb'"),
    ],
)
def test_config_errors_name_field_value_and_range(fields, pattern):
    with pytest.raises(ConfigError, match=pattern):
        TrainConfig(**fields)


def test_unknown_yaml_field_and_preset(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown training config field.*learning_rate"):
        load_config(config_file=bad, overrides={})
    with pytest.raises(ConfigError, match="unknown training preset"):
        load_config(preset="fast", overrides={})


def test_random_splits_deterministic_and_sized():
    a = random_splits(1000, seed=3, val_fraction=0.1, test_fraction=0.2)
    b = random_splits(1000, seed=3, val_fraction=0.1, test_fraction=0.2)
    assert np.array_equal(a, b)
    assert (np.sum(a == "val"), np.sum(a == "test")) == (100, 200)
    assert not np.array_equal(a, random_splits(1000, seed=4, val_fraction=0.1, test_fraction=0.2))


def test_stratified_splits_match_distribution():
    values = np.random.default_rng(0).exponential(size=2000)
    labels = random_splits(2000, seed=0, val_fraction=0.2, test_fraction=0.2, stratify=values)
    quantiles = [
        np.quantile(values[labels == s], [0.1, 0.5, 0.9]) for s in ("train", "val", "test")
    ]
    np.testing.assert_allclose(quantiles[1], quantiles[0], rtol=0.1)
    np.testing.assert_allclose(quantiles[2], quantiles[0], rtol=0.1)


def test_column_splits():
    table = Table({"split": ["Train", "validation", "test", "train"]})
    assert column_splits(table, "split").tolist() == ["train", "val", "test", "train"]
    table["split"][1] = "holdout"
    with pytest.raises(CatalogError, match=r"unknown value.*holdout"):
        column_splits(table, "split")


def test_augment_reproducible_and_varied():
    image = torch.zeros(1, 16, 16)
    image[0, 4:8, 2:12] = 1.0
    augment = Augment(max_shift=2.0)
    assert torch.equal(augment(image, 7), augment(image, 7))
    assert not torch.equal(augment(image, 7), augment(image, 8))
    assert torch.equal(Augment(flips=False, rotations=False, max_shift=0.0)(image, 7), image)
    rotated = augment(image, 11)
    assert rotated.shape == image.shape and 0.7 < rotated.sum() / image.sum() < 1.3


def test_sampler_epochs_and_ranks():
    sampler = SeededSampler(10, seed=0, shuffle=True)
    first = list(sampler)
    assert sorted(p for p, _ in first) == list(range(10))
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    shards = [list(SeededSampler(10, seed=0, shuffle=True, rank=r, world=3)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)
    assert {p for s in shards for p, _ in s} == set(range(10))


def test_warmup_cosine():
    schedule = WarmupCosine(warmup=4, total=20)
    factors = [schedule(s) for s in range(21)]
    assert factors[0] == pytest.approx(0.2) and factors[4] == pytest.approx(1.0)
    assert factors[20] == pytest.approx(0.0, abs=1e-12)
    assert all(b <= a for a, b in itertools.pairwise(factors[4:]))


def test_checkpoint_io_round_trip_without_pickle(tmp_path):
    shared = torch.arange(4.0)
    checkpoint = {
        "epoch": 2,
        "state_dict": {"net.w": torch.randn(3, 2), "net.b": shared},
        "optimizer_states": [
            {
                "state": {0: {"step": torch.tensor(5.0), "exp_avg": shared}},
                "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}],
            }
        ],
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 3}}}},
        "score": np.float32(1.5),
        "none": None,
    }
    io = SafeCheckpointIO()
    io.save_checkpoint(checkpoint, tmp_path / "c.ckpt")
    back = io.load_checkpoint(tmp_path / "c.ckpt")
    assert back["epoch"] == 2 and back["none"] is None and back["score"] == 1.5
    assert torch.equal(back["state_dict"]["net.w"], checkpoint["state_dict"]["net.w"])
    group = back["optimizer_states"][0]["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and group["params"] == [0]
    assert torch.equal(back["optimizer_states"][0]["state"][0]["exp_avg"], shared)
    assert not (tmp_path / "c.ckpt").read_bytes().startswith(b"\x80")  # not a pickle stream
    with pytest.raises(Exception, match="cannot store without pickle"):
        io.save_checkpoint({"bad": object()}, tmp_path / "d.ckpt")


def test_mlflow_logger_needs_mlflow(tmp_path):
    import importlib.util

    from gampen.train.fit import _loggers

    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("MLflow is installed here; the missing-package message cannot be shown")
    with pytest.raises(ConfigError, match=r"--logger mlflow needs MLflow.*gampen\[mlflow\]"):
        _loggers(TrainConfig(logger=["mlflow"]), tmp_path)
