"""Deterministic train/validation/test splits: random by seed, stratified, or explicit.

The split depends only on the seed, the fractions and (when stratified) the target
values, never on the order of work, so a resumed or re-run training sees the same
galaxies.  The test split is held out from training and validation entirely.
"""

from __future__ import annotations

import numpy as np

from gampen.data.catalog import Catalog
from gampen.errors import CatalogError

SPLITS = ("train", "val", "test")
_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
N_STRATA = 10


def random_splits(
    n: int,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    stratify: np.ndarray | None = None,
) -> np.ndarray:
    """Split labels ('train'/'val'/'test') for ``n`` rows.

    With ``stratify`` (one value per row), rows are grouped into ten quantile bins of that
    value and each bin is split with the same fractions, so every split has the same
    distribution of the target (GaMPEN's balanced splits serve the same purpose).
    """
    rng = np.random.default_rng(seed)
    labels = np.full(n, "train", dtype="<U5")
    groups = [np.arange(n)] if stratify is None else _strata(np.asarray(stratify, float))
    for rows in groups:
        order = rows[rng.permutation(len(rows))]
        n_test = round(test_fraction * len(order))
        n_val = round(val_fraction * len(order))
        labels[order[:n_test]] = "test"
        labels[order[n_test : n_test + n_val]] = "val"
    return labels


def column_splits(catalog: Catalog, column: str) -> np.ndarray:
    """Split labels read from a catalog column (train/val/test, common spellings
    accepted), which the catalog was loaded keeping."""
    if column not in catalog.kept.colnames:
        raise CatalogError(f"split column '{column}' not found", allowed=list(catalog.column_names))
    raw = [str(v).strip().lower() for v in catalog.kept[column]]
    bad = sorted({v for v in raw if v not in _ALIASES})
    if bad:
        raise CatalogError(
            f"split column '{column}' has unknown value(s)", value=bad[:5], allowed=sorted(_ALIASES)
        )
    labels = np.array([_ALIASES[v] for v in raw], dtype="<U5")
    if not np.any(labels == "train"):
        raise CatalogError(f"split column '{column}' marks no row as 'train'")
    return labels


def _strata(values: np.ndarray) -> list[np.ndarray]:
    """Row indices grouped into quantile bins of ``values``."""
    edges = np.quantile(values, np.linspace(0, 1, N_STRATA + 1)[1:-1])
    bins = np.searchsorted(edges, values, side="right")
    return [np.flatnonzero(bins == b) for b in range(N_STRATA) if np.any(bins == b)]
