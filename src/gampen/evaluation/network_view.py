"""What the network sees: cutouts with the spatial transformer's crop, beside the posterior.

For a few galaxies, one figure each: the stretched cutout with the STN's sampling window
drawn on it, the window as the CNN receives it, and a corner plot of the posterior
samples with the truth marked.  And one grid of cutouts with their windows, isolated
galaxies and galaxies with neighbours in separate rows, to see whether the STN zooms past
the neighbours.  The zoom STN samples a centred window of side ``zoom * cutout side``;
an affine STN's window is drawn as the parallelogram it samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from gampen.evaluation.figure_base import new_figure, param_label
from gampen.evaluation.inputs import Matched, floats
from gampen.model.network import GampenNet

#: Galaxies per group in the cutout grid.
GRID_PER_GROUP = 6
#: Output-square corners in normalised coordinates, in drawing order.
_CORNERS = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)


def choose(matched: Matched, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """``n`` random positions, half isolated and half with neighbours when that is known."""
    groups = galaxy_groups(matched)
    share = [n // len(groups) + (i < n % len(groups)) for i in range(len(groups))]
    chosen = [
        rng.choice(members, size=min(k, len(members)), replace=False)
        for members, k in zip(groups.values(), share, strict=True)
    ]
    return np.sort(np.concatenate(chosen).astype(np.int64))


def galaxy_groups(matched: Matched) -> dict[str, np.ndarray]:
    """Positions of isolated galaxies and of those with neighbours (or all, when unknown)."""
    if "n_neighbours" not in matched.truth.colnames:
        return {"all galaxies": np.arange(len(matched))}
    count = floats(matched.truth["n_neighbours"])
    return {
        "isolated": np.flatnonzero(count == 0),
        "with neighbours": np.flatnonzero(count > 0),
    }


@torch.inference_mode()
def stn_view(net: GampenNet, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the CNN receives (m, bands, y, x), the zoom (m,) and window corners (m, 4, 2).

    Corners are in pixel coordinates (x, y) of the input cutout.
    """
    net.eval()
    warped, zoom = net.transform(images)
    theta = net.stn.transformation(images)[0].cpu().numpy().astype(np.float64)
    return warped.cpu().numpy(), zoom.cpu().numpy(), window_corners(theta, images.shape[-1])


def window_corners(theta: np.ndarray, size: int) -> np.ndarray:
    """Pixel coordinates (m, 4, 2) of the input region each affine matrix (m, 2, 3) samples.

    Normalised coordinates [-1, 1] span the pixel edges (``align_corners=False``).
    """
    normalised = np.einsum("mij,cj->mci", theta[:, :, :2], _CORNERS) + theta[:, None, :, 2]
    return (normalised + 1) * size / 2 - 0.5


def show_figure(
    image: np.ndarray,
    warped: np.ndarray,
    corners: np.ndarray,
    samples: np.ndarray,
    truth: np.ndarray,
    params: Sequence[str],
    *,
    title: str,
) -> Figure:
    """The cutout with its window, the CNN's view, and the corner plot of the samples."""
    k = len(params)
    fig = new_figure(4.0 + 2.6 * k, 2.6 * k + 0.6)
    left, right = fig.subfigures(1, 2, width_ratios=[1.3, k])
    top, bottom = left.subplots(2, 1)
    draw_cutout(top, image, corners, title="cutout and STN window")
    draw_cutout(bottom, warped, None, title="what the CNN sees")
    corner(right.subplots(k, k, squeeze=False), samples, truth, params)
    fig.suptitle(title)
    return fig


def draw_cutout(ax: Axes, image: np.ndarray, corners: np.ndarray | None, *, title: str) -> None:
    """A stretched image (bands, y, x) in grey with the window outlined in red."""
    plane = np.asarray(image, dtype=np.float64).mean(axis=0)
    lo, hi = np.percentile(plane, [1, 99.5])
    ax.imshow(plane, origin="lower", cmap="gray_r", vmin=lo, vmax=hi if hi > lo else lo + 1)
    if corners is not None:
        ax.add_patch(Polygon(corners, closed=True, fill=False, edgecolor="tab:red", lw=1.5))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def corner(axes: np.ndarray, samples: np.ndarray, truth: np.ndarray, params: Sequence[str]) -> None:
    """A corner plot on a (k, k) grid of axes: marginals, 68/95 % contours, truth in red."""
    k = len(params)
    ranges = [_range(samples[:, j], truth[j]) for j in range(k)]
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
            elif i == j:
                _marginal(ax, samples[:, i], truth[i], ranges[i])
            else:
                _pair(ax, samples[:, j], samples[:, i], (truth[j], truth[i]), ranges[j], ranges[i])
            if i == k - 1:
                ax.set_xlabel(param_label(params[j]))
            elif j <= i:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(param_label(params[i]))
            elif j <= i:
                ax.set_yticklabels([])
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.05, 1.0))


def _marginal(ax: Axes, x: np.ndarray, true: float, span: tuple[float, float]) -> None:
    """Histogram of one parameter's samples with the median, 68 % interval and truth."""
    lo, median, hi = np.quantile(x, [0.15865, 0.5, 0.84135])
    ax.hist(x, bins=40, range=span, density=True, color="0.5", histtype="stepfilled", alpha=0.6)
    ax.axvspan(lo, hi, color="tab:blue", alpha=0.15, label="68 % interval")
    ax.axvline(median, color="tab:blue", ls="--", label="median")
    ax.axvline(true, color="tab:red", lw=2, label="truth")
    ax.set_xlim(span)
    ax.set_yticks([])


def _pair(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    true: tuple[float, float],
    xspan: tuple[float, float],
    yspan: tuple[float, float],
) -> None:
    """2-D histogram with the contours holding 68 and 95 % of the samples, truth marked."""
    counts, xe, ye = np.histogram2d(x, y, bins=30, range=[xspan, yspan])
    ax.pcolormesh(xe, ye, counts.T, cmap="Greys", shading="flat")
    levels = mass_levels(counts, (0.95, 0.68))
    if len(np.unique(levels)) == len(levels) and levels[0] > 0:
        centres = (0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]))
        ax.contour(*centres, counts.T, levels=levels, colors="tab:blue", linewidths=1)
    ax.plot(*true, marker="*", color="tab:red", ms=12, mec="white", mew=0.8)
    ax.set_xlim(xspan)
    ax.set_ylim(yspan)


def mass_levels(counts: np.ndarray, masses: Sequence[float]) -> np.ndarray:
    """Count thresholds above which the bins hold each fraction of the total (ascending)."""
    ordered = np.sort(counts.ravel())[::-1]
    cumulative = np.cumsum(ordered) / max(ordered.sum(), 1)
    index = [min(np.searchsorted(cumulative, m), len(ordered) - 1) for m in masses]
    return np.sort(ordered[index])


def grid_figure(groups: dict[str, list[tuple[np.ndarray, np.ndarray, str]]]) -> Figure:
    """Cutouts with their STN windows; one row per group of (image, corners, caption)."""
    n_cols = max(1, max(len(v) for v in groups.values()))
    fig = new_figure(2.0 * n_cols, 2.3 * len(groups) + 0.4)
    axes = fig.subplots(len(groups), n_cols, squeeze=False)
    for row, (name, items) in enumerate(groups.items()):
        for col in range(n_cols):
            ax = axes[row, col]
            if col >= len(items):
                ax.set_axis_off()
                continue
            image, corners, caption = items[col]
            draw_cutout(ax, image, corners, title=caption)
        axes[row, 0].set_ylabel(name, fontsize=11)
    fig.suptitle("Cutouts and the spatial transformer's window (red)")
    return fig


def _range(x: np.ndarray, true: float) -> tuple[float, float]:
    """Plot range covering the central 99.5 % of the samples and the truth."""
    lo, hi = np.quantile(x, [0.0025, 0.9975])
    lo, hi = min(lo, true), max(hi, true)
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.05
    return float(lo - pad), float(hi + pad)
