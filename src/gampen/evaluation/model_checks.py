"""The checks of ``gampen evaluate`` that run the model itself: what it sees, rotations.

Both need the model bundle and the cutouts.  The figures of the shown galaxies use the
samples file when one is given (the very posteriors being evaluated), else fresh samples
from the model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from gampen.data.dataset import CutoutDataset
from gampen.evaluation import network_view, rotation
from gampen.evaluation.accuracy_figures import rotation_figure
from gampen.evaluation.figure_base import save
from gampen.evaluation.images import load_images
from gampen.evaluation.inputs import Matched, floats, samples_of
from gampen.infer.sampling import galaxy_keys
from gampen.model.bundle import Bundle

log = logging.getLogger(__name__)


def show_galaxies(
    matched: Matched,
    bundle: Bundle,
    dataset: CutoutDataset,
    *,
    n: int,
    out: Path,
    rng: np.random.Generator,
    n_passes: int,
    n_samples: int,
) -> list[str]:
    """One figure per shown galaxy and the cutout grid; returns the file names written."""
    written = []
    chosen = network_view.choose(matched, n, rng=rng)
    params = [p for p in bundle.param_names if p in matched.params]
    inputs = load_images(dataset, chosen)
    images = inputs[0]
    warped, zoom, corners = network_view.stn_view(bundle.net, images)
    samples = _shown_samples(matched, bundle, inputs, chosen, params, n_passes, n_samples)
    truth = matched.true_values()[:, [matched.params.index(p) for p in params]]
    for i, pos in enumerate(chosen):
        ident = str(matched.predictions["object_id"][pos])
        fig = network_view.show_figure(
            images[i].numpy(),
            warped[i],
            corners[i],
            samples[i],
            truth[pos],
            params,
            title=f"object {ident}: {_caption(matched, pos)}, STN zoom {zoom[i]:.2f}",
        )
        written.append(save(fig, out / f"show_{_safe(ident)}.png").name)
    written.append(save(_grid(matched, bundle, dataset, rng=rng), out / "cutout_grid.png").name)
    return written


def rotation_stability(
    matched: Matched,
    bundle: Bundle,
    dataset: CutoutDataset,
    *,
    n: int,
    rng: np.random.Generator,
    n_passes: int,
    n_samples: int,
    progress: bool,
) -> tuple[dict[str, Any], np.ndarray]:
    """Spread of the modes over the 8 dihedral orientations of ``n`` random galaxies."""
    chosen = np.sort(rng.choice(len(matched), size=min(n, len(matched)), replace=False))
    images, scalars, crowding = load_images(dataset, chosen)
    sampler = rotation.bundle_sampler(bundle, n_passes=n_passes, n_samples=n_samples)
    modes, std = rotation.orientation_modes(sampler, images, scalars, crowding, progress=progress)
    params = list(bundle.param_names)
    spreads = rotation.spread(modes, params)
    summary = rotation.summarise_spread(
        spreads, params, posterior_std=rotation.relative_std(std, modes, params)
    )
    settings = {"n_galaxies": len(chosen), "n_passes": n_passes, "n_samples": n_samples}
    return {"settings": settings, "params": summary}, spreads


def rotation_outputs(
    matched: Matched,
    dihedral: tuple[dict[str, Any], np.ndarray] | None,
    params: list[str],
    *,
    out: Path,
) -> tuple[dict[str, Any], list[str]]:
    """The rotation metrics and figure from the dihedral test and the rendered groups."""
    metrics: dict[str, Any] = {}
    spreads, summaries = {}, {}
    if dihedral is not None:
        metrics["dihedral"] = dihedral[0]
        spreads["dihedral"], summaries["dihedral"] = dihedral[1], dihedral[0]["params"]
        params = list(dihedral[0]["params"])
    groups = rotation.group_spread(matched)
    if groups is not None:
        metrics["rendered"] = {"params": groups[0]}
        if set(groups[0]) == set(params):
            spreads["rendered"], summaries["rendered"] = groups[1], groups[0]
    if not spreads:
        return metrics, []
    fig = rotation_figure(spreads, params, summaries)
    return metrics, [save(fig, out / "rotation.png").name]


def _shown_samples(
    matched: Matched,
    bundle: Bundle,
    inputs: tuple[torch.Tensor, torch.Tensor, np.ndarray],
    chosen: np.ndarray,
    params: list[str],
    n_passes: int,
    n_samples: int,
) -> np.ndarray:
    """Samples (m, S, k) of the shown galaxies in ``params`` order."""
    if matched.samples_path is not None:
        stored = samples_of(matched, chosen)
        return stored[..., [matched.params.index(p) for p in params]]
    log.info("no samples file: drawing %d samples for each shown galaxy", n_samples)
    sampler = rotation.bundle_sampler(bundle, n_passes=n_passes, n_samples=n_samples)
    images, scalars, crowding = inputs
    drawn = sampler(images, galaxy_keys(0, chosen), scalars, crowding)
    return drawn[..., [list(bundle.param_names).index(p) for p in params]]


def _grid(
    matched: Matched, bundle: Bundle, dataset: CutoutDataset, *, rng: np.random.Generator
) -> Figure:
    """The cutout grid: a few galaxies per group with their STN windows."""
    rows = {}
    for name, members in network_view.galaxy_groups(matched).items():
        take = np.sort(
            rng.choice(members, size=min(len(members), network_view.GRID_PER_GROUP), replace=False)
        )
        if not take.size:
            continue
        images = load_images(dataset, take)[0]
        _, zoom, corners = network_view.stn_view(bundle.net, images)
        rows[name] = [
            (
                images[i].numpy(),
                corners[i],
                f"{matched.predictions['object_id'][pos]}: zoom {zoom[i]:.2f}",
            )
            for i, pos in enumerate(take)
        ]
    return network_view.grid_figure(rows)


def _caption(matched: Matched, pos: int) -> str:
    """Magnitude and neighbour count of a galaxy, when the truth catalog has them."""
    parts = []
    for column, fmt in (("mag", "mag {:.2f}"), ("n_neighbours", "{:.0f} neighbours")):
        if column in matched.truth.colnames:
            parts.append(fmt.format(floats(matched.truth[column][pos : pos + 1])[0]))
    return ", ".join(parts) or "truth"


def _safe(text: str) -> str:
    """A string usable in a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
