"""A grid of example cutouts with their truth: the first look at a simulated training set.

Each panel shows one cutout with an asinh stretch (linear near the noise, logarithmic in the
bright core, so faint neighbours and the bulge are both visible), a circle of radius ``r_e``
around the central galaxy, and its ``bt``, ``r_e``, ``mag`` and neighbour count.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from gampen.atomic import atomic_path
from gampen.errors import ConfigError

#: Panels per row of the grid.
_COLUMNS = 4
_PANEL_INCHES = 2.4


def preview_figure(folder: str | os.PathLike[str], *, count: int = 16) -> Figure:
    """A figure of the first ``count`` cutouts of the set in ``folder``, with their truth."""
    base = Path(folder)
    catalog_path = base / "info.csv"
    if not catalog_path.is_file():
        raise ConfigError(
            f"--preview: no info.csv in {base}; run gampen simulate there first",
            value=str(base),
        )
    table = Table.read(catalog_path, format="ascii.csv")
    rows = table[: max(1, count)]
    columns = min(_COLUMNS, len(rows))
    lines = math.ceil(len(rows) / columns)
    figure = Figure(figsize=(_PANEL_INCHES * columns, _PANEL_INCHES * lines), layout="constrained")
    axes = figure.subplots(lines, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, row in zip(axes.flat, rows, strict=False):
        _draw_panel(ax, base / str(row["file_name"]), row)
    return figure


def write_preview(
    folder: str | os.PathLike[str], png: str | os.PathLike[str], *, count: int = 16
) -> Path:
    """Save :func:`preview_figure` of ``folder`` as ``png``, atomically."""
    figure = preview_figure(folder, count=count)
    with atomic_path(png) as tmp:
        figure.savefig(tmp, dpi=100)
    return Path(png)


def asinh_stretch(image: np.ndarray, noise: float) -> np.ndarray:
    """``asinh(image / noise)`` scaled to [0, 1] between -1 noise sigma and the peak."""
    stretched = np.arcsinh(image / noise)
    low, high = -1.0, max(float(stretched.max()), 1.0)
    return np.clip((stretched - low) / (high - low), 0.0, 1.0)


def _draw_panel(ax, path: Path, row) -> None:
    """One cutout with its r_e circle and truth text."""
    with fits.open(path) as hdul:
        data = np.asarray(hdul[0].data, dtype=np.float64)
        header = hdul[0].header
        scale = float(header["PIXSCALE"])
        centre = (float(header["CEN_X"]) - 1.0, float(header["CEN_Y"]) - 1.0)
    ax.imshow(asinh_stretch(data, float(row["sky_sigma"])), origin="lower", cmap="gray_r")
    ax.add_patch(Circle(centre, float(row["r_e"]) / scale, fill=False, color="tab:orange", lw=1))
    ax.set_title(f"id {row['object_id']}", fontsize=8)
    text = (
        f'bt {row["bt"]:.2f}  r_e {row["r_e"]:.2f}"\n'
        f"mag {row['mag']:.2f}  nbrs {row['n_neighbours']}"
    )
    ax.text(
        0.03,
        0.03,
        text,
        transform=ax.transAxes,
        fontsize=7,
        va="bottom",
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5},
    )
