"""Validation of configuration values: each failure names the field, the value and the range.

Shared by every validated dataclass config (network, training, simulation), so that all
of gampen's configuration errors read the same way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gampen.errors import ConfigError


def is_finite_number(value: Any) -> bool:
    """True for a finite int or float; bools (which JSON and Python let pass as ints) and
    strings are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)  # any int is finite


def refuse_existing(paths: Iterable[str | os.PathLike[str] | None], *, overwrite: bool) -> None:
    """Refuse to replace an existing output unless asked to (astropy's convention)."""
    for path in paths:
        if path is not None and Path(path).exists() and not overwrite:
            raise ConfigError(f"{path} exists", allowed="another output name, or --overwrite")


def refuse_inputs_as_outputs(
    outputs: Iterable[str | os.PathLike[str] | None], inputs: Iterable[str | os.PathLike[str]]
) -> None:
    """Refuse an output that is one of the run's inputs (or lies inside one), even with
    ``--overwrite``: a catalog or a model is never replaced by a prediction."""
    sources = [Path(p).resolve() for p in inputs]
    for out in outputs:
        if out is None:
            continue
        target = Path(out).resolve()
        for source in sources:
            if target == source or source in target.parents:
                raise ConfigError(
                    f"{out} is an input of this run ({source}); gampen never writes over its "
                    "inputs, not even with --overwrite",
                    allowed="another output name",
                )


def check_choice(where: str, name: str, value: Any, allowed: Iterable[Any]) -> None:
    """Refuse a value outside a fixed set."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{where} field '{name}' is invalid", value=value, allowed=allowed)


def check_int(where: str, name: str, value: Any, low: int, high: int) -> None:
    """Refuse a non-integer (bools included) or an integer outside ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"{where} field '{name}' is invalid", value=value, allowed=f"integer in [{low}, {high}]"
        )


def check_float(
    where: str,
    name: str,
    value: Any,
    *,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Refuse a non-number or a number outside the interval (open or closed at each end)."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    above = is_number and (value > low if low_open else value >= low)
    below = is_number and (value < high if high_open else value <= high)
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"{where} field '{name}' is invalid", value=value, allowed=interval)


def check_known_fields(where: str, data: dict[str, Any], known: Iterable[str]) -> None:
    """Refuse keys that are not fields of the config (catches typos in YAML files)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping", value=type(data).__name__)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown {where} field(s)", value=unknown, allowed=sorted(known))
