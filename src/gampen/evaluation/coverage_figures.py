"""Figures of calibration: coverage curves, PIT histograms, subsets, bins of the true
values and joint regions.

Every coverage panel shows the nominal diagonal and the pointwise 95 % binomial band a
calibrated model stays inside; deviations are also drawn in percentage points, where
they are easier to read than on the diagonal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gampen.evaluation.figure_base import (
    BAND_COLOUR,
    LEVEL_COLOURS,
    new_figure,
    param_label,
)
from gampen.evaluation.marginal import PIT_BINS, CoverageCurve
from gampen.infer.summary import LEVELS

#: Row titles of the subset figure, per split name.
SPLIT_TITLES: dict[str, str] = {
    "neighbours": "neighbours",
    "mag_halves": "bright / faint",
    "psf_fwhm": "PSF FWHM bins",
    "width": "68 % width bins",
}
#: Row titles of the figure of coverage by true value, per split name, in row order.
TRUTH_TITLES: dict[str, str] = {
    "bt": "true B/T",
    "mag": "true magnitude",
    "r_e": r"true $r_e$",
}
#: Horizontal offsets of the three levels within a bin, and the half-width of their bands.
_OFFSETS = (-0.22, 0.0, 0.22)
_BAND_HALF_WIDTH = 0.08


def marginal_figure(
    curves: dict[str, CoverageCurve],
    *,
    source: str,
    table_points: dict[str, CoverageCurve] | None = None,
) -> Figure:
    """Empirical against nominal coverage (top) and their difference (bottom) per parameter.

    ``table_points`` (the table's three intervals) are marked on the curves when given.
    """
    fig = new_figure(4.2 * len(curves), 7.4)
    axes = fig.subplots(2, len(curves), squeeze=False, sharex=True, height_ratios=[1.6, 1])
    for j, (param, curve) in enumerate(curves.items()):
        points = (table_points or {}).get(param)
        coverage_panel(
            axes[0, j], curve, title=f"{param_label(param)}  (n = {curve.n})", points=points
        )
        deviation_panel(axes[1, j], curve, points=points)
        axes[1, j].set_xlabel("nominal coverage (credibility level)")
    axes[0, 0].set_ylabel("empirical coverage")
    axes[1, 0].set_ylabel("empirical - nominal [percentage points]")
    fig.suptitle(f"Marginal coverage of equal-tailed credible intervals (from the {source})")
    return fig


def coverage_panel(
    ax: Axes,
    curve: CoverageCurve,
    *,
    title: str,
    points: CoverageCurve | None = None,
    notes: tuple[str, ...] = (),
) -> None:
    """One coverage curve with the diagonal and binomial band; table intervals as points."""
    ax.fill_between(
        curve.levels, curve.band_lo, curve.band_hi, color=BAND_COLOUR, label="95 % binomial band"
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="nominal (calibrated)")
    style = {"marker": "o", "ms": 4} if len(curve.levels) < 10 else {}
    ax.plot(curve.levels, curve.empirical, color="tab:red", lw=1.8, label="empirical", **style)
    if points is not None:
        ax.plot(
            points.levels,
            points.empirical,
            "D",
            color="tab:blue",
            ms=5,
            label="table's 68.27/95.45/99.73 % intervals",
        )
    ax.set(xlim=(0, 1), ylim=(0, 1), title=title)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    text = "\n".join([*notes, f"max |dev| = {100 * curve.max_abs_deviation:.1f} pp"])
    ax.text(
        0.97,
        0.04,
        text,
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=9,
        bbox={"facecolor": "white", "edgecolor": "0.7", "alpha": 0.9},
    )


def deviation_panel(ax: Axes, curve: CoverageCurve, *, points: CoverageCurve | None = None) -> None:
    """Empirical minus nominal coverage in percentage points, with the band."""
    pp = 100.0
    ax.fill_between(
        curve.levels,
        pp * (curve.band_lo - curve.levels),
        pp * (curve.band_hi - curve.levels),
        color=BAND_COLOUR,
    )
    ax.axhline(0, color="k", ls="--", lw=1)
    style = {"marker": "o", "ms": 4} if len(curve.levels) < 10 else {}
    ax.plot(curve.levels, pp * (curve.empirical - curve.levels), color="tab:red", **style)
    if points is not None:
        ax.plot(points.levels, pp * (points.empirical - points.levels), "D", color="tab:blue", ms=5)
    box = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8}
    for y, va, text in (
        (0.97, "top", "over-covers (too wide)"),
        (0.03, "bottom", "under-covers (too narrow)"),
    ):
        # zorder 1: the labels stay under the curve they describe
        ax.text(0.02, y, text, transform=ax.transAxes, fontsize=8, va=va, bbox=box, zorder=1)
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)


def pit_figure(histograms: dict[str, dict[str, Any]]) -> Figure:
    """PIT histograms, normalised to density, with the uniform level and its band."""
    fig = new_figure(4.2 * len(histograms), 3.6)
    axes = fig.subplots(1, len(histograms), squeeze=False)[0]
    edges = np.linspace(0, 1, PIT_BINS + 1)
    for ax, (param, h) in zip(axes, histograms.items(), strict=True):
        scale = PIT_BINS / max(h["n"], 1)
        lo, hi = (v * scale for v in h["band"])
        ax.axhspan(lo, hi, color=BAND_COLOUR, label="95 % band (uniform)")
        ax.stairs(np.asarray(h["counts"]) * scale, edges, fill=True, alpha=0.6, color="tab:blue")
        ax.axhline(1.0, color="k", ls="--", lw=1, label="calibrated")
        ax.set(
            xlim=(0, 1),
            xlabel=f"PIT of true {param_label(param)}",
            ylabel="density",
            title=f"{param}  (n = {h['n']}, KS p = {h['ks_pvalue']:.2g})",
        )
        ax.legend(fontsize=8, loc="lower center")
    fig.suptitle("PIT histograms: flat if calibrated; U-shaped: too narrow; peaked: too wide")
    return fig


def subsets_figure(conditional: dict[str, list[dict[str, Any]]], params: list[str]) -> Figure:
    """Coverage deviation of the table's three intervals in every subset, one row per split.

    The per-parameter width splits (``width_<param>``) share one row.
    """
    rows = [s for s in conditional if not s.startswith("width_")]
    if any(s.startswith("width_") for s in conditional):
        rows.append("width")
    fig = new_figure(4.4 * len(params), 2.6 * len(rows) + 0.8)
    axes = fig.subplots(len(rows), len(params), squeeze=False)
    for i, row in enumerate(rows):
        for j, param in enumerate(params):
            split = f"width_{param}" if row == "width" else row
            bins = [b for b in conditional.get(split, []) if param in b["params"]]
            _subset_panel(axes[i, j], bins, param)
        axes[i, 0].set_ylabel(f"{SPLIT_TITLES.get(row, row)}\nempirical - nominal [pp]", fontsize=9)
    for j, param in enumerate(params):
        axes[0, j].set_title(param_label(param), fontsize=11)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle("Conditional coverage of the 68.27 / 95.45 / 99.73 % intervals (bars: 95 % band)")
    return fig


def _subset_panel(ax: Axes, bins: list[dict[str, Any]], param: str) -> None:
    """Deviation per bin and level; error bars are the calibrated model's 95 % band."""
    if not bins:
        ax.set_axis_off()
        return
    x = np.arange(len(bins))
    for offset, name in zip((-0.15, 0.0, 0.15), LEVELS, strict=True):
        nominal, empirical, band = _level_cells(bins, param, name)
        yerr = 100 * np.abs(band - nominal[:, None]).T
        ax.errorbar(
            x + offset,
            100 * (empirical - nominal),
            yerr=yerr,
            fmt="o",
            ms=4,
            capsize=2,
            color=LEVEL_COLOURS[name],
            label=f"{100 * LEVELS[name]:.2f} %",
        )
    ax.axhline(0, color="k", ls="--", lw=1)
    ax.set_xticks(x, [f"{_short(b['label'])}\nn={b['n']}" for b in bins], fontsize=7)
    ax.grid(alpha=0.3, axis="y")


def truth_bins_figure(conditional: dict[str, list[dict[str, Any]]], params: list[str]) -> Figure:
    """Coverage minus nominal of each parameter (columns) per bin of true B/T, magnitude and
    size (rows), the three levels side by side over their shaded 95 % binomial bands: a
    point off its band (a cross) is a bin the model covers wrongly."""
    rows = [s for s in TRUTH_TITLES if conditional.get(s)]
    most = max(len(conditional[s]) for s in rows)
    fig = new_figure(max(4.6, 0.78 * most) * len(params), 2.9 * len(rows) + 0.9)
    axes = fig.subplots(len(rows), len(params), squeeze=False)
    for i, split in enumerate(rows):
        for j, param in enumerate(params):
            _banded_panel(axes[i, j], conditional[split], param)
        axes[i, 0].set_ylabel(f"{TRUTH_TITLES[split]} bins\nempirical - nominal [pp]", fontsize=9)
    for j, param in enumerate(params):
        axes[0, j].set_title(f"coverage of {param_label(param)}", fontsize=11)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle(
        "Coverage of the 68.27 / 95.45 / 99.73 % intervals by true value "
        "(shaded: 95 % binomial band; x: outside it)"
    )
    return fig


def _banded_panel(ax: Axes, bins: list[dict[str, Any]], param: str) -> None:
    """Deviation per bin and level in percentage points over the shaded band; crosses mark
    the deviations outside their band."""
    x = np.arange(len(bins))
    for offset, name in zip(_OFFSETS, LEVELS, strict=True):
        nominal, empirical, band = _level_cells(bins, param, name)
        colour = LEVEL_COLOURS[name]
        deviation = 100 * (empirical - nominal)
        low, high = (100 * (band[:, i] - nominal) for i in (0, 1))
        ax.bar(x + offset, high - low, 2 * _BAND_HALF_WIDTH, bottom=low, color=colour, alpha=0.25)
        ax.plot(x + offset, deviation, "o", ms=4, color=colour, label=f"{100 * LEVELS[name]:.2f} %")
        outside = (deviation < low) | (deviation > high)
        ax.plot((x + offset)[outside], deviation[outside], "X", ms=9, color=colour, mec="k")
    ax.axhline(0, color="k", ls="--", lw=1)
    ticks = [_short(b["label"]).replace(" (", "\n(") + f"\nn={b['n']}" for b in bins]
    ax.set_xticks(x, ticks, fontsize=7)
    ax.grid(alpha=0.3, axis="y")


def _level_cells(
    bins: list[dict[str, Any]], param: str, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nominal (m,), empirical (m,, NaN when unknown) and band (m, 2) of one level's
    table-interval coverage in each of ``m`` bins."""
    cells = [b["params"][param]["intervals"][name] for b in bins]
    nominal = np.array([c["nominal"] for c in cells], dtype=float)
    empirical = np.array([np.nan if c["empirical"] is None else c["empirical"] for c in cells])
    band = np.array([c["band"] for c in cells], dtype=float)
    return nominal, empirical, band


def joint_figure(curves: dict[str, CoverageCurve]) -> Figure:
    """Mahalanobis-region coverage and the TARP expected coverage curve."""
    fig = new_figure(9.6, 5.0)
    axes = fig.subplots(1, 2)
    titles = {"mahalanobis": "Mahalanobis regions", "tarp": "TARP (Lemos et al. 2023)"}
    for ax, (name, curve) in zip(axes, curves.items(), strict=True):
        notes = tuple(f"at {100 * a:.0f} %: {100 * curve.at(a):.1f} %" for a in (0.68, 0.95))
        coverage_panel(ax, curve, title=f"{titles.get(name, name)}, n = {curve.n}", notes=notes)
        ax.set_xlabel("credibility level")
    axes[0].set_ylabel("fraction of truths inside the region")
    axes[1].set_ylabel("expected coverage probability")
    fig.suptitle("Joint calibration of all parameters (in logit B/T, log r_e, log flux)")
    return fig


def _short(label: str) -> str:
    """A bin's label without its covariate's description (the row says it)."""
    return label.split(" in ", 1)[1] if " in " in label else label
