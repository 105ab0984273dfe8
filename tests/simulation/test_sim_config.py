"""Presets, YAML overrides and the validation errors users see."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from gampen.errors import ConfigError
from gampen.simulation.config import SimulationConfig
from gampen.simulation.presets import (
    config_yaml,
    load_config,
    merge_overrides,
    preset_mapping,
    preset_names,
)


def test_shipped_presets() -> None:
    assert preset_names() == ["euclid-vis", "hsc", "hsc-real", "lsst"]
    for name in preset_names():
        assert load_config(name).name == name
        assert load_config(name).has_nuisances == (name == "hsc-real")
    # hsc-real is hsc with the nuisances on: the same survey, galaxies and neighbours
    hsc, real = load_config("hsc").to_dict(), load_config("hsc-real").to_dict()
    for section in ("survey", "neighbours"):
        assert real[section] == hsc[section]
    assert {k: v for k, v in real["central"].items() if k in hsc["central"]} == hsc["central"]
    assert real["psf"]["fwhm"] == hsc["psf"]["fwhm"]


def test_hsc_preset_is_the_issue_contract(hsc: SimulationConfig) -> None:
    assert (hsc.survey.pixel_scale, hsc.survey.stamp_size, hsc.survey.zero_point) == (
        0.168,
        96,
        27.0,
    )
    assert (hsc.psf.beta, hsc.psf.fwhm) == (3.0, (0.5, 0.9))
    c = hsc.central
    assert (c.mag, c.bt, c.r_disk, c.bulge_size_ratio) == ((17, 23), (0, 1), (0.3, 3), (0.15, 0.6))
    assert (c.q_disk, c.q_bulge, c.offset) == ((0.2, 1.0), (0.6, 1.0), 0.5)
    nb = hsc.neighbours
    assert (nb.probability, nb.max_count, nb.sersic_n) == (0.5, 3, (0.5, 4.0))
    assert (nb.mag, nb.max_brighter_than_central) == ((17.0, 24.5), 1.0)
    assert (nb.half_light_radius, nb.q, nb.min_separation) == ((0.2, 2.0), (0.3, 1.0), 2.5)
    assert (hsc.noise.sky_level, hsc.noise.sky_sigma) == (10.0, (0.04, 0.10))


def test_other_presets_follow_their_documented_surveys() -> None:
    lsst, euclid = load_config("lsst"), load_config("euclid-vis")
    assert (lsst.survey.pixel_scale, lsst.psf.fwhm) == (0.2, (0.6, 0.9))
    assert euclid.survey.pixel_scale == 0.1
    assert 0.15 <= euclid.psf.fwhm[0] <= euclid.psf.fwhm[1] <= 0.2
    # "deeper sky": per-arcsec^2 noise in a common zero point is below hsc's
    hsc = load_config("hsc")

    def noise_per_arcsec(cfg: SimulationConfig) -> float:
        to_zp27 = 10 ** (-0.4 * (cfg.survey.zero_point - 27.0))
        return max(cfg.noise.sky_sigma) * to_zp27 / cfg.survey.pixel_scale

    assert noise_per_arcsec(lsst) < noise_per_arcsec(hsc)
    assert noise_per_arcsec(euclid) < noise_per_arcsec(hsc)


def test_config_survives_a_yaml_round_trip(tmp_path: Path) -> None:
    for name in preset_names():
        config = load_config(name)
        path = tmp_path / f"{name}.yaml"
        path.write_text(config_yaml(config))
        assert load_config("hsc", path) == config
        assert SimulationConfig.from_mapping(config.to_dict()) == config


def test_override_replaces_only_the_named_fields(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text("neighbours:\n  probability: 0.8\npsf: {fwhm: [0.6, 1.0]}\n")
    config = load_config("hsc", path)
    hsc = load_config("hsc")
    assert config.neighbours.probability == 0.8
    assert config.psf.fwhm == (0.6, 1.0)
    assert config.neighbours.max_count == hsc.neighbours.max_count
    assert config.central == hsc.central
    assert config == load_config("hsc", yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(
    ("overrides", "field", "value", "allowed"),
    [
        ({"psf": {"fwhm": [0.9, 0.5]}}, "psf.fwhm", "[0.9, 0.5]", "0 < lo <= hi <= 10"),
        ({"psf": {"beta": 1.0}}, "psf.beta", "1.0", "[1.5, 20]"),
        ({"central": {"bt": [0.0, 1.5]}}, "central.bt", "1.5", "[0, 1]"),
        ({"central": {"q_disk": [0.0, 1.0]}}, "central.q_disk", "0.0", "[0.05, 1]"),
        ({"central": {"r_disk": "big"}}, "central.r_disk", "'big'", "[lo, hi]"),
        ({"survey": {"stamp_size": 95.5}}, "survey.stamp_size", "95.5", "an integer"),
        ({"survey": {"pixel_scale": -1}}, "survey.pixel_scale", "-1", "[0.001, 10]"),
        ({"neighbours": {"probability": 2}}, "neighbours.probability", "2", "[0, 1]"),
        ({"neighbours": {"sersic_n": [0.1, 4]}}, "neighbours.sersic_n", "0.1", "[0.3"),
        ({"neighbours": {"max_count": True}}, "neighbours.max_count", "True", "integer"),
        ({"noise": {"sky_sigma": [0.0, 0.1]}}, "noise.sky_sigma", "[0.0, 0.1]", "0 < lo"),
        ({"noise": {"sky_level": 0}}, "noise.sky_level", "0", "a number in"),
        ({"central": {"mags": [17, 23]}}, "central.mags", "[17, 23]", "one of mag, bt"),
        ({"central": 3}, "central", "3", None),
        ({"survey": {"stamp_size": 32}, "central": {"offset": 9}}, "central.offset", "9", "[0, 8]"),
        ({"neighbours": {"min_separation": 7}}, "neighbours.min_separation", "7", "[0, 6.4512)"),
        ({"neighbours": {"mag": [17, 21.5]}}, "neighbours.mag", "[17.0, 21.5]", "= 22"),
    ],
)
def test_bad_values_name_field_value_and_range(
    overrides: dict, field: str, value: str, allowed: str | None
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("hsc", overrides)
    message = str(info.value)
    assert message.startswith(f"{field}:")
    assert f"got {value}" in message
    if allowed is not None:
        assert allowed in message


def test_unknown_preset_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"--preset: unknown preset; got 'hst'.*'hsc'"):
        load_config("hst")


def test_unreadable_user_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config: file not found"):
        load_config("hsc", tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("psf: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config("hsc", broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config("hsc", scalar)


def test_empty_user_yaml_changes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert load_config("hsc", empty) == load_config("hsc")


def test_incomplete_mapping_names_the_missing_field() -> None:
    data = preset_mapping("hsc")
    del data["noise"]["sky_level"]
    with pytest.raises(ConfigError, match=r"^noise.sky_level: missing field"):
        SimulationConfig.from_mapping(data)
    with pytest.raises(ConfigError, match=r"^extra: unknown section"):
        SimulationConfig.from_mapping({**preset_mapping("hsc"), "extra": {}})


def test_merge_rejects_a_scalar_for_a_section() -> None:
    with pytest.raises(ConfigError, match=r"^psf: must be a mapping of fields; got 0.7"):
        merge_overrides(preset_mapping("hsc"), {"psf": 0.7})


def test_package_exports_load_lazily() -> None:
    import gampen.simulation as package

    assert package.load_config is load_config
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = package.nope


def test_every_field_has_a_rule() -> None:
    from gampen.simulation import config as module

    for section in (
        module.SurveyConfig,
        module.PsfConfig,
        module.CentralPrior,
        module.NeighbourPrior,
        module.NoiseConfig,
    ):
        assert [f.name for f in dataclasses.fields(section)] == list(section.RULES)
