"""``gampen info``: the readable summary and the raw JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gampen.cli import main
from gampen.data.psf_features import PSF_FEATURES
from gampen.model.bundle import load_bundle, save_bundle
from gampen.model.config import NetworkConfig
from gampen.model.network import GampenNet

from ..synthetic import tiny_bundle


@pytest.fixture
def bundle_dir(tmp_path: Path, tiny_config: NetworkConfig) -> Path:
    """A small saved bundle with metrics and provenance."""
    return save_bundle(
        tmp_path / "bundle",
        GampenNet(tiny_config),
        param_names=["bt", "r_e", "flux"],
        bands=["i"],
        pixel_scale=0.168,
        zero_point=27.0,
        preprocessing={
            "stretch": {"kind": "arcsinh", "softening": [1.0]},
            "labels": {
                "names": ["bt", "r_e", "flux"],
                "kinds": ["logit", "log", "log"],
                "eps": 0.05,
                "mean": [0.0, 0.0, 0.0],
                "std": [1.0, 1.0, 1.0],
            },
        },
        metrics={"val_nll": -1.25, "coverage_68": 0.6812},
        provenance={"command": "gampen train run.yaml"},
    )


def test_info_prints_the_key_facts(bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(bundle_dir)]) == 0
    text = capsys.readouterr().out
    for fact in (
        "compact backbone",
        "widths 4-8-8-16",
        "trainable parameters",
        "STN zoom, zoom in [0.25, 1.25]",
        "dropout 0.1 classifier only",
        "bt, r_e, flux",
        "i (1 band)",
        "32 x 32 px at 0.168 arcsec/px (5.38 arcsec across); zero point 27",
        'stretch: {"kind": "arcsinh", "softening": [1.0]}',
        "val_nll: -1.25",
        "coverage_68: 0.6812",
        "command: gampen train run.yaml",
        "created: ",
        "format 2",
    ):
        assert fact in text, fact


def test_info_json_prints_the_raw_metadata(
    bundle_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "--json", str(bundle_dir)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == json.loads((bundle_dir / "gampen.json").read_text())


def test_info_on_a_broken_bundle_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(tmp_path)]) == 2
    assert "not a gampen bundle" in capsys.readouterr().err


def test_info_says_a_model_takes_psf_images_falling_back_to_the_fwhm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tiny_bundle(tmp_path, conditions=("psf_fwhm",), name="plain")
    assert main(["info", str(plain)]) == 0
    assert "PSF image" not in capsys.readouterr().out
    metadata = json.loads((plain / "gampen.json").read_text())
    assert metadata["preprocessing"]["scalars"] == {"photometry": False, "conditions": ["psf_fwhm"]}
    bundle = load_bundle(plain)
    config = dataclasses.replace(bundle.config, n_scalars=1 + PSF_FEATURES)
    path = save_bundle(
        tmp_path / "psf",
        GampenNet(config),
        param_names=bundle.param_names,
        bands=bundle.bands,
        pixel_scale=bundle.pixel_scale,
        zero_point=bundle.zero_point,
        preprocessing={
            **bundle.preprocessing,
            "scalars": {"photometry": False, "conditions": ["psf_fwhm"], "psf_image": True},
        },
    )
    assert load_bundle(path).contract.psf_image and not bundle.contract.psf_image
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "condition psf_fwhm in arcsec" in text
    assert (
        "PSF image where given (column psf_image, else the cutout's PSF HDU); else psf_fwhm alone"
        in text
    )


def test_info_says_where_a_model_was_trained_and_calibrated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = load_bundle(tiny_bundle(tmp_path))
    contract = {"ranges": {"mag": [16.5, 23.75]}, "calibrated_ranges": {"mag": [17.0, 23.0]}}
    path = save_bundle(
        tmp_path / "claimed",
        bundle.net,
        param_names=bundle.param_names,
        bands=bundle.bands,
        pixel_scale=bundle.pixel_scale,
        zero_point=bundle.zero_point,
        preprocessing=bundle.preprocessing,
        contract=contract,
    )
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "trained on: mag [16.5, 23.75]" in text and "calibrated on: mag [17, 23]" in text
    assert main(["info", str(tiny_bundle(tmp_path, name="plain"))]) == 0
    assert "calibrated on" not in capsys.readouterr().out
