"""Conventions every evaluation figure shares: axis labels with units, creation, saving.

Figures are built as :class:`matplotlib.figure.Figure` objects without pyplot, so no
global state or GUI backend is involved and tests can inspect them without writing files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from gampen.atomic import atomic_path

#: Axis label (with unit) of each well-known parameter.
PARAM_LABELS: dict[str, str] = {
    "bt": "B/T",
    "r_e": r"$r_e$ [arcsec]",
    "flux": "flux [ADU]",
    "mag": "magnitude [mag]",
}
#: Colour of each reported interval level.
LEVEL_COLOURS: dict[str, str] = {"ci68": "tab:blue", "ci95": "tab:orange", "ci99": "tab:green"}
#: Colour of the calibrated-model band.
BAND_COLOUR = "0.8"
DPI = 110


def param_label(name: str) -> str:
    """The axis label of a parameter (its name when not a well-known one)."""
    return PARAM_LABELS.get(name, name)


def new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A figure with constrained layout, detached from pyplot."""
    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def save(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as PNG atomically; returns the path."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")
    return Path(path)
