"""Figures of accuracy and stability: residuals of the point estimates, rotation spread."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gampen.evaluation.figure_base import new_figure, param_label

#: Bins of the running median in the residual plots.
RUNNING_BINS = 12


def residuals_figure(
    errors: dict[str, dict[str, np.ndarray]],
    truth: dict[str, np.ndarray],
    *,
    fractional: dict[str, bool],
    mag: np.ndarray | None = None,
) -> Figure:
    """Errors of the median and mode against the true value and (when known) the magnitude.

    Points: the median's errors; lines and bands: running median and 16-84 % range of
    each estimator's errors.
    """
    params = list(errors)
    columns = [("truth", None)] + ([("mag", mag)] if mag is not None else [])
    fig = new_figure(5.0 * len(columns), 3.2 * len(params))
    axes = fig.subplots(len(params), len(columns), squeeze=False)
    for i, p in enumerate(params):
        ylabel = f"({p} est. - true) / true" if fractional[p] else f"{p} est. - true"
        for j, (name, x) in enumerate(columns):
            ax = axes[i, j]
            xs = truth[p] if name == "truth" else x
            _residual_panel(ax, xs, errors[p], log=fractional[p] and name == "truth")
            ax.set_xlabel(f"true {param_label(p)}" if name == "truth" else "true magnitude [mag]")
            ax.set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    fig.suptitle("Residuals of the point estimates (lines: running median, band: 16-84 %)")
    return fig


def _residual_panel(ax: Axes, x: np.ndarray, errors: dict[str, np.ndarray], *, log: bool) -> None:
    """Scatter of the median's errors with running statistics of each estimator."""
    if "median" in errors:
        ax.scatter(x, errors["median"], s=3, alpha=0.25, color="0.4", lw=0, rasterized=True)
    for (name, e), colour in zip(errors.items(), ("tab:red", "tab:blue"), strict=False):
        centre, mid, lo, hi = running_quantiles(x, e, log=log)
        ax.plot(centre, mid, color=colour, lw=1.8, label=f"{name}")
        ax.fill_between(centre, lo, hi, color=colour, alpha=0.15)
    ax.axhline(0, color="k", ls="--", lw=1)
    finite = np.concatenate([e[np.isfinite(e)] for e in errors.values()])
    if finite.size:
        limit = np.quantile(np.abs(finite), 0.98) * 1.2
        ax.set_ylim(-limit, limit)
    if log:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)


def running_quantiles(
    x: np.ndarray, y: np.ndarray, *, log: bool = False, bins: int = RUNNING_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bin centres and the 50/16/84 % quantiles of y in equal-count bins of x."""
    ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if log else True)
    x, y = x[ok], y[ok]
    if x.size < 2:
        empty = np.empty(0)
        return empty, empty, empty, empty
    edges = np.unique(np.quantile(x, np.linspace(0, 1, min(bins, x.size) + 1)))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        sel = which == b
        if sel.any():
            rows.append([np.median(x[sel]), *np.quantile(y[sel], [0.5, 0.16, 0.84])])
    out = np.array(rows).T
    return out[0], out[1], out[2], out[3]


def rotation_figure(
    spreads: dict[str, np.ndarray],
    params: list[str],
    summaries: dict[str, dict[str, dict[str, Any]]],
) -> Figure:
    """Histograms of the per-galaxy spread of the mode, per parameter and per source.

    ``spreads`` maps a source (``dihedral``: 8 orientations of one cutout; ``rendered``:
    the rotation groups of the truth catalog) to spreads (m, k); ``summaries`` holds the
    matching :func:`gampen.evaluation.rotation.summarise_spread` output.
    """
    fig = new_figure(4.2 * len(params), 3.6)
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    colours = {"dihedral": "tab:blue", "rendered": "tab:orange"}
    for j, (ax, p) in enumerate(zip(axes, params, strict=True)):
        kind = next(iter(summaries.values()))[p]["kind"]
        for source, values in spreads.items():
            v = values[:, j][np.isfinite(values[:, j])]
            if not v.size:
                continue
            median = summaries[source][p]["median_spread"]
            colour = colours.get(source)
            ax.hist(v, bins=30, alpha=0.5, color=colour, label=f"{source}: median {median:.3g}")
            ax.axvline(median, color=colour, ls="--")
        ax.set(
            xlabel=f"{kind} std of the {p} mode across orientations",
            ylabel="count",
            title=param_label(p),
        )
        ax.legend(fontsize=8)
    fig.suptitle("Rotation stability: spread of the posterior mode (0 = rotation-invariant)")
    return fig
