"""Survey presets shipped as YAML inside the package, and user overrides merged onto them.

A user's YAML holds any subset of a preset's fields, nested the same way; it replaces those
fields and nothing else.  A field the preset does not have is an error (a typo would
otherwise be silently ignored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gampen.errors import ConfigError
from gampen.simulation.config import SECTIONS, SimulationConfig

_PRESET_PACKAGE = "gampen.simulation"
_PRESET_FOLDER = "presets"


def preset_names() -> list[str]:
    """Names of the presets shipped with gampen, sorted."""
    folder = resources.files(_PRESET_PACKAGE) / _PRESET_FOLDER
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def preset_mapping(name: str) -> dict[str, Any]:
    """The raw mapping of the shipped preset ``name``."""
    names = preset_names()
    if name not in names:
        raise ConfigError("--preset: unknown preset", value=name, allowed=f"one of {names}")
    text = (resources.files(_PRESET_PACKAGE) / _PRESET_FOLDER / f"{name}.yaml").read_text()
    return with_optional_fields(_parse_yaml(text, source=f"preset {name}"))


def with_optional_fields(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every optional field a preset leaves out set to its "off" value, so
    that a user's YAML may override it like any other field."""
    out = dict(data)
    for section in SECTIONS:
        if isinstance(out.get(section.SECTION), Mapping):
            defaults = {
                k: list(v) if isinstance(v, tuple) else v for k, v in section.OPTIONAL.items()
            }
            out[section.SECTION] = {  # the preset's own fields first, as written
                **out[section.SECTION],
                **{k: v for k, v in defaults.items() if k not in data[section.SECTION]},
            }
    return out


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a user's YAML file, with clear errors for a missing or broken file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError("--config: file not found", value=str(file))
    return _parse_yaml(file.read_text(), source=str(file))


def merge_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with the fields in ``overrides`` replaced; unknown fields are errors."""
    return _merge(base, overrides, prefix="")


def load_config(
    preset: str = "hsc",
    overrides: Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> SimulationConfig:
    """The validated config of ``preset`` with ``overrides`` (a mapping or a YAML path)."""
    data = preset_mapping(preset)
    if overrides is not None:
        if not isinstance(overrides, Mapping):
            overrides = read_yaml(overrides)
        data = merge_overrides(data, overrides)
    return SimulationConfig.from_mapping(data)


def config_yaml(config: SimulationConfig) -> str:
    """The full config as YAML, ready to edit and pass back with ``--config``."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)


def _parse_yaml(text: str, *, source: str) -> dict[str, Any]:
    """Parse YAML text that must hold a mapping."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: must hold a mapping of sections", value=data)
    return dict(data)


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any], *, prefix: str) -> dict:
    """Recursive merge behind :func:`merge_overrides`; ``prefix`` names the section."""
    merged = dict(base)
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(
                f"{path}: unknown field", value=value, allowed=f"one of {', '.join(base)}"
            )
        if isinstance(base[key], Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{path}: must be a mapping of fields", value=value)
            merged[key] = _merge(base[key], value, prefix=f"{path}.")
        else:
            merged[key] = value
    return merged
