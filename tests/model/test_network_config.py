"""NetworkConfig: backbone defaults, JSON round trip, and clear refusals."""

from __future__ import annotations

import json

import pytest

from gampen.errors import ConfigError
from gampen.model.config import NetworkConfig


def test_defaults_resolve_per_backbone() -> None:
    compact = NetworkConfig()
    assert (compact.backbone, compact.input_size, compact.n_params, compact.stn) == (
        "compact",
        96,
        3,
        "zoom",
    )
    assert compact.widths == (32, 64, 128, 256)
    assert (compact.hidden, compact.dropout, compact.dropout_from) == (128, 0.1, 5)
    vgg = NetworkConfig(backbone="vgg16")
    assert vgg.widths == (64, 128, 256, 512, 512)
    assert (vgg.hidden, vgg.dropout, vgg.dropout_from) == (4096, 0.0004, None)


def test_round_trip_through_json() -> None:
    config = NetworkConfig(backbone="vgg16", n_bands=3, input_size=64, stn="affine", dropout=0.1)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["widths"] == [64, 128, 256, 512, 512]
    assert NetworkConfig.from_dict(data) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backbone": "resnet50"}, r"'backbone'.*'resnet50'.*compact"),
        ({"stn": "crop"}, r"'stn'.*'crop'"),
        ({"covariance": "ldl"}, r"'covariance'.*'ldl'"),
        ({"n_bands": 0}, r"'n_bands'.*got 0.*\[1, 64\]"),
        ({"n_params": 2.0}, r"'n_params'.*2\.0"),
        ({"input_size": 8}, r"'input_size'.*got 8.*\[16, 1024\]"),
        ({"backbone": "vgg16", "input_size": 16}, r"'input_size'.*\[32, 1024\]"),
        ({"dropout": 1.0}, r"'dropout'.*got 1\.0.*\[0\.0, 1\.0\)"),
        ({"dropout": float("nan")}, r"'dropout'.*nan"),
        ({"dropout_from": 6}, r"'dropout_from'.*got 6.*\[1, 5\]"),
        ({"backbone": "vgg16", "dropout_from": 2}, r"compact backbone only"),
        ({"widths": (8, 16, 32)}, r"'widths'.*4 integers"),
        ({"widths": (8, 16, 32, -4)}, r"'widths'"),
        ({"zoom_min": 1.0}, r"'zoom_min'.*\(0\.0, 1\.0\)"),
        ({"zoom_max": 0.9}, r"'zoom_max'.*\(1\.0, 4\.0\]"),
        ({"min_scale": 0.0}, r"'min_scale'"),
        ({"hidden": True}, r"'hidden'.*True"),
    ],
)
def test_invalid_fields_are_named(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NetworkConfig(**changes)


def test_unknown_keys_are_refused() -> None:
    data = NetworkConfig().to_dict() | {"depth": 50}
    with pytest.raises(ConfigError, match=r"unknown network config field.*depth"):
        NetworkConfig.from_dict(data)
