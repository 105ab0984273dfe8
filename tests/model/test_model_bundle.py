"""Model bundle: safetensors + JSON round trip, zip form, and every refusal."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from gampen import __version__
from gampen.errors import BundleError
from gampen.model.bundle import FORMAT_VERSION, load_bundle, read_metadata, save_bundle
from gampen.model.config import NetworkConfig
from gampen.model.network import GampenNet

PREPROCESSING = {
    "stretch": {"kind": "arcsinh", "softening": [1.0]},
    "labels": {
        "names": ["bt", "r_e", "flux"],
        "kinds": ["logit", "log", "log"],
        "eps": 0.05,
        "mean": [0.0, 1.0, 2.0],
        "std": [1.0, 0.5, 2.0],
    },
}


def _metadata(**changes: Any) -> dict[str, Any]:
    """Keyword arguments of save_bundle for a one-band, three-parameter model."""
    return {
        "param_names": ["bt", "r_e", "flux"],
        "bands": ["i"],
        "pixel_scale": 0.168,
        "zero_point": 27.0,
        "preprocessing": PREPROCESSING,
        "metrics": {"val_nll": -1.25},
        "provenance": {"command": "gampen train cfg.yaml", "data_sha256": "ab12"},
    } | changes


@pytest.fixture
def trained_net(tiny_config: NetworkConfig) -> GampenNet:
    """A network whose batch-norm statistics and weights differ from a fresh one."""
    net = GampenNet(tiny_config)
    net.train()(torch.randn(4, 1, 32, 32))
    with torch.no_grad():
        net.stn.localisation.out.weight.normal_(0.0, 0.01)
    return net.eval()


@pytest.fixture
def bundle_dir(tmp_path: Path, trained_net: GampenNet) -> Path:
    """A bundle saved from ``trained_net``."""
    return save_bundle(tmp_path / "bundle", trained_net, **_metadata())


def _edit_json(bundle: Path, edit: Any) -> None:
    """Rewrite gampen.json after applying ``edit`` to the parsed document."""
    path = bundle / "gampen.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


def test_round_trip_gives_identical_outputs(bundle_dir: Path, trained_net: GampenNet) -> None:
    bundle = load_bundle(bundle_dir)
    assert not bundle.net.training
    assert bundle.config == trained_net.config
    x = torch.randn(3, 1, 32, 32)
    for a, b in zip(bundle.net(x), trained_net(x), strict=True):
        assert torch.equal(a, b)
    assert bundle.param_names == ["bt", "r_e", "flux"]
    assert bundle.bands == ["i"]
    assert (bundle.input_size, bundle.pixel_scale, bundle.zero_point) == (32, 0.168, 27.0)
    assert bundle.preprocessing == PREPROCESSING
    assert bundle.calibration == {"scale": {"bt": 1.0, "r_e": 1.0, "flux": 1.0}}
    assert bundle.metrics == {"val_nll": -1.25}
    assert bundle.provenance["command"] == "gampen train cfg.yaml"
    assert "created" in bundle.provenance
    assert (bundle.format_version, bundle.gampen_version) == (FORMAT_VERSION, __version__)


def test_bundle_holds_no_pickle(bundle_dir: Path) -> None:
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["gampen.json", "model.safetensors"]
    header_size = int.from_bytes((bundle_dir / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((bundle_dir / "model.safetensors").read_bytes()[8 : 8 + header_size])
    assert header["__metadata__"] == {"format": "pt"}


def test_zip_bundle_loads(tmp_path: Path, trained_net: GampenNet) -> None:
    path = save_bundle(tmp_path / "model.zip", trained_net, **_metadata())
    assert zipfile.is_zipfile(path)
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(load_bundle(path).net(x).mean, trained_net(x).mean)


def test_zip_of_a_bundle_folder_loads(tmp_path: Path, bundle_dir: Path) -> None:
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for item in bundle_dir.iterdir():
            z.write(item, f"bundle/{item.name}")
    assert load_bundle(archive).param_names == ["bt", "r_e", "flux"]


def test_saving_again_overwrites(bundle_dir: Path, trained_net: GampenNet) -> None:
    save_bundle(bundle_dir, trained_net, **_metadata(metrics={"val_nll": -2.0}))
    assert load_bundle(bundle_dir).metrics == {"val_nll": -2.0}


def test_vgg16_bundle_round_trip(tmp_path: Path, tiny_vgg_config: NetworkConfig) -> None:
    net = GampenNet(tiny_vgg_config).eval()
    bundle = load_bundle(save_bundle(tmp_path / "vgg", net, **_metadata()))
    x = torch.randn(1, 1, 32, 32)
    assert torch.equal(bundle.net(x).scale_tril, net(x).scale_tril)


def test_future_format_version_is_refused(bundle_dir: Path) -> None:
    _edit_json(bundle_dir, lambda d: d.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(
        BundleError, match=rf"format version {FORMAT_VERSION + 1} is newer.*upgrade gampen"
    ):
        load_bundle(bundle_dir)


@pytest.mark.parametrize("field", ["format_version", "network", "bands", "pixel_scale", "metrics"])
def test_missing_field_is_refused_by_name(bundle_dir: Path, field: str) -> None:
    _edit_json(bundle_dir, lambda d: d.pop(field))
    with pytest.raises(BundleError, match=f"lacks required field.*{field}"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format_version="1"), r"'format_version' is invalid"),
        (lambda d: d.update(extra=1), r"unknown field.*extra"),
        (lambda d: d["network"].update(backbone="resnet"), r"'network' is invalid.*resnet"),
        (lambda d: d.update(bands=["g", "r"]), r"'bands' is invalid.*1 distinct names"),
        (lambda d: d.update(param_names=["bt", "bt", "flux"]), r"'param_names' is invalid"),
        (lambda d: d.update(input_size=96), r"'input_size' disagrees"),
        (lambda d: d.update(pixel_scale=-0.2), r"'pixel_scale' is invalid.*positive"),
        (lambda d: d.update(preprocessing={"stretch": {}}), r"preprocessing' lacks.*'labels'"),
        (lambda d: d.update(metrics=[1, 2]), r"'metrics' is invalid"),
    ],
)
def test_malformed_metadata_is_refused(bundle_dir: Path, edit: Any, message: str) -> None:
    _edit_json(bundle_dir, edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_dir)


def test_weights_of_another_architecture_are_refused(
    tmp_path: Path, bundle_dir: Path, tiny_config: NetworkConfig
) -> None:
    other = GampenNet(dataclasses.replace(tiny_config, hidden=32))
    other_dir = save_bundle(tmp_path / "other", other, **_metadata())
    (bundle_dir / "model.safetensors").write_bytes((other_dir / "model.safetensors").read_bytes())
    with pytest.raises(BundleError, match=r"does not fit the network.*has shape \(32, 144\)"):
        load_bundle(bundle_dir)


def test_network_config_edited_after_saving_is_refused(bundle_dir: Path) -> None:
    _edit_json(bundle_dir, lambda d: d["network"].update(stn="affine"))
    with pytest.raises(BundleError, match=r"does not fit.*stn\.localisation\.out\.weight"):
        load_bundle(bundle_dir)


def test_same_shaped_but_different_weights_are_refused(
    tmp_path: Path, bundle_dir: Path, tiny_config: NetworkConfig
) -> None:
    other_dir = save_bundle(tmp_path / "other", GampenNet(tiny_config), **_metadata())
    (bundle_dir / "model.safetensors").write_bytes((other_dir / "model.safetensors").read_bytes())
    with pytest.raises(BundleError, match="checksum differs"):
        load_bundle(bundle_dir)


def test_corrupt_files_are_refused(bundle_dir: Path) -> None:
    (bundle_dir / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(BundleError, match="not a valid safetensors file"):
        load_bundle(bundle_dir)
    (bundle_dir / "gampen.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_dir)


def test_missing_bundle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no model bundle here"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"missing model\.safetensors, gampen\.json"):
        load_bundle(tmp_path / "empty")


def test_invalid_metadata_is_refused_at_saving(tmp_path: Path, trained_net: GampenNet) -> None:
    with pytest.raises(BundleError, match=r"'bands' is invalid"):
        save_bundle(tmp_path / "b", trained_net, **_metadata(bands=["g", "r"]))
    with pytest.raises(BundleError, match="not plain JSON"):
        save_bundle(tmp_path / "b", trained_net, **_metadata(metrics={"loss": torch.tensor(1.0)}))
    assert not (tmp_path / "b").exists()


def test_read_metadata_skips_the_network(bundle_dir: Path) -> None:
    metadata = read_metadata(bundle_dir)
    assert metadata["network"]["widths"] == [4, 8, 8, 16]
    assert len(metadata["weights_sha256"]) == 64


def _strings(value):
    """Every string inside a JSON value, recursively."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_shipped_bundles_hold_no_absolute_paths_of_the_machine_that_made_them():
    import json
    import re
    from importlib import resources

    folder = resources.files("gampen.models")
    bundles = [p for p in folder.iterdir() if (p / "gampen.json").is_file()]
    assert bundles
    absolute = re.compile(r"(^|[\s'\"=(])(/[A-Za-z0-9._-]+/|[A-Za-z]:\\)")
    for bundle in bundles:
        metadata = json.loads((bundle / "gampen.json").read_text())
        for text in _strings(metadata):
            assert not absolute.search(text), f"{bundle.name}/gampen.json: {text!r}"
        card = (bundle / "README.md").read_text()
        assert not re.search(r"/(home|work|tmp|Users|root|scratch)/", card), bundle.name
    assert absolute.search("made from /work/data/train/info.csv")  # the check can fail
    assert not absolute.search("train/info.csv and ../../docs/figures/a.png")
