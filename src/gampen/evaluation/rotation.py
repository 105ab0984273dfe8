"""Rotation stability: does the posterior mode move when the same galaxy is turned?

The morphology parameters do not depend on orientation, so a good model's modes agree
across the 8 dihedral orientations of a cutout (rotations by multiples of 90 degrees,
with and without a flip; exact pixel permutations, no resampling).  Each galaxy is
predicted at every orientation with the same random keys, so the spread measures the
orientation and not the Monte Carlo noise.  The spread is the standard deviation of the
modes across orientations, relative to their mean for log-scaled parameters (r_e, flux)
and absolute for bt; the headline is its median over galaxies.  When the truth catalog
has a ``rotation_group`` column (one galaxy rendered at several angles), the same spread
is also measured from the predictions table's modes within each group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gampen.calibration.maps import Recalibration
from gampen.data.labels import LabelTransform
from gampen.evaluation.conditional import relative
from gampen.evaluation.inputs import Matched
from gampen.infer.sampling import galaxy_keys, posterior_samples
from gampen.infer.summary import kde_mode
from gampen.model.bundle import Bundle

#: Number of dihedral orientations of a square image.
N_ORIENTATIONS = 8
#: Truth column naming the galaxy that several rendered rotations share.
GROUP_COLUMN = "rotation_group"

#: Maps stretched images (m, bands, y, x), galaxy keys (m,) and the scalar inputs
#: (m, n_scalars) to posterior samples (m, S, k) in physical units.
#: (images, keys, scalars, crowding indices or None) -> physical samples (m, S, k).
Sampler = Callable[[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray | None], np.ndarray]


def orient(images: torch.Tensor, index: int) -> torch.Tensor:
    """Orientation ``index`` (0-7) of images (..., y, x): 90-degree turns, then a flip."""
    turned = torch.rot90(images, k=index % 4, dims=(-2, -1))
    return torch.flip(turned, dims=(-1,)) if index >= 4 else turned


def bundle_sampler(bundle: Bundle, *, n_passes: int, n_samples: int) -> Sampler:
    """Physical-unit posterior samples of the bundle's network, calibrated as predict does."""
    labels = LabelTransform.from_dict(bundle.preprocessing["labels"])
    spread = Recalibration.from_calibration(bundle.calibration, bundle.param_names)

    def sample(
        images: torch.Tensor,
        keys: np.ndarray,
        scalars: torch.Tensor,
        crowding: np.ndarray | None = None,
    ) -> np.ndarray:
        z, _ = posterior_samples(
            bundle.net,
            images,
            keys,
            n_passes=n_passes,
            n_samples=n_samples,
            spread=spread,
            scalars=scalars,
            crowding=crowding,
        )
        return labels.inverse(z.cpu().numpy())

    return sample


def orientation_modes(
    sampler: Sampler,
    images: torch.Tensor,
    scalars: torch.Tensor,
    crowding: np.ndarray | None = None,
    *,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Modes (8, m, k) of every orientation, and the posterior std (m, k) of the first.

    The scalar inputs (aperture photometry about the centre, catalog conditions) and the
    crowding index do not change under the dihedral group, so every orientation gets the
    same ``scalars`` and ``crowding``.
    """
    keys = galaxy_keys(seed, np.arange(len(images)))
    modes, std = [], None
    bar = tqdm(
        total=N_ORIENTATIONS * len(images), unit="gal", desc="rotations", disable=not progress
    )
    for index in range(N_ORIENTATIONS):
        parts = []
        for start in range(0, len(images), batch_size):
            batch = orient(images[start : start + batch_size], index)
            part = slice(start, start + batch_size)
            samples = sampler(batch, keys[part], scalars[part], _part(crowding, part))
            parts.append(samples)
            bar.update(len(batch))
        samples = np.concatenate(parts)
        modes.append(kde_mode(torch.as_tensor(samples, dtype=torch.float32)).numpy())
        if std is None:
            std = samples.std(axis=1, ddof=1)
    bar.close()
    return np.stack(modes).astype(np.float64), np.asarray(std, dtype=np.float64)


def _part(values: np.ndarray | None, part: slice) -> np.ndarray | None:
    """``values[part]``, or ``None`` when there are no values."""
    return None if values is None else values[part]


def spread(modes: np.ndarray, params: Sequence[str]) -> np.ndarray:
    """Std (m, k) of modes (n_orient, m, k) across orientations; fractional where log-scaled."""
    return _on_spread_scale(modes.std(axis=0, ddof=1), modes, params)


def relative_std(std: np.ndarray, modes: np.ndarray, params: Sequence[str]) -> np.ndarray:
    """Posterior std (m, k) on the spread's scale: fractional where log-scaled."""
    return _on_spread_scale(np.asarray(std, dtype=np.float64), modes, params)


def _on_spread_scale(values: np.ndarray, modes: np.ndarray, params: Sequence[str]) -> np.ndarray:
    """Divide log-scaled parameters' columns by the mean mode across orientations."""
    out = np.array(values, dtype=np.float64, copy=True)
    for j, p in enumerate(params):
        if relative(p):
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, j] = out[:, j] / np.abs(modes[:, :, j].mean(axis=0))
    return out


def summarise_spread(
    spreads: np.ndarray, params: Sequence[str], *, posterior_std: np.ndarray | None = None
) -> dict[str, dict[str, Any]]:
    """Per parameter: the median spread over galaxies and what it is measured in."""
    out: dict[str, dict[str, Any]] = {}
    for j, p in enumerate(params):
        entry: dict[str, Any] = {
            "n": int(np.isfinite(spreads[:, j]).sum()),
            "median_spread": _nanmedian(spreads[:, j]),
            "p90_spread": _nanquantile(spreads[:, j], 0.9),
            "kind": "fractional" if relative(p) else "absolute",
        }
        if posterior_std is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                entry["median_spread_over_posterior_std"] = _nanmedian(
                    spreads[:, j] / posterior_std[:, j]
                )
        out[p] = entry
    return out


def group_spread(matched: Matched) -> tuple[dict[str, dict[str, Any]], np.ndarray] | None:
    """Spread of the table's modes within each ``rotation_group`` (None without the column)."""
    if GROUP_COLUMN not in matched.truth.colnames:
        return None
    groups = np.asarray(matched.truth[GROUP_COLUMN]).astype(str)
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    params = [p for p in matched.params if f"{p}_mode" in matched.predictions.colnames]
    rows = []
    for g in np.flatnonzero(counts >= 2):
        members = inverse == g
        modes = np.stack([matched.column(f"{p}_mode")[members] for p in params], axis=1)
        rows.append(spread(modes[:, None, :], params)[0])
    spreads = np.array(rows).reshape(-1, len(params))
    summary = summarise_spread(spreads, params)
    for entry in summary.values():
        entry["n_groups"] = entry.pop("n")
    return summary, spreads


def _nanmedian(values: np.ndarray) -> float:
    """Median of the finite values (NaN when none)."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _nanquantile(values: np.ndarray, q: float) -> float:
    """Quantile of the finite values (NaN when none)."""
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else float("nan")
