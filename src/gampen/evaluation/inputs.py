"""The inputs of ``gampen evaluate``: predictions matched to their truth, and their samples.

Rows are matched by ``object_id``.  Rows that cannot be judged are left out and counted
by reason: not in the truth catalog, a fatal flag, a NaN estimate or truth, or (with a
samples file) no samples.  Samples are never loaded whole: :func:`sample_blocks` streams
them in blocks of galaxies, in the matched order.  :func:`training_galaxies` tells
whether the matched galaxies are a model's training galaxies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.table import Table

from gampen.checksum import file_sha256
from gampen.data.catalog import Catalog, load_catalog, read_catalog, source_name
from gampen.data.provenance import training_overlap
from gampen.errors import CatalogError
from gampen.flags import is_fatal

#: Columns of a predictions table that are not a parameter's summary.
_DERIVED = ("mag",)


@dataclass
class Matched:
    """Predictions and truth of the usable galaxies, row for row, and what was left out."""

    predictions: Table
    #: The truth catalog's columns, of the matched galaxies.
    truth: Table
    params: list[str]
    dropped: dict[str, int]
    #: The truth catalog's source (named in messages; its folder holds the cutouts).
    truth_source: str = ""
    #: The truth catalog's ``object_id`` of each matched galaxy (None: it has none).
    truth_ids: np.ndarray | None = None
    samples_path: Path | None = None
    #: Row of each matched galaxy in the samples file (None without one).
    sample_rows: np.ndarray | None = None
    #: Column of each of ``params`` in the samples file.
    sample_columns: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.predictions)

    def true_values(self) -> np.ndarray:
        """The true parameters (n, k) as float64."""
        return np.stack([floats(self.truth[p]) for p in self.params], axis=1)

    def column(self, name: str) -> np.ndarray:
        """A predictions column as float64 (NaN where masked)."""
        return floats(self.predictions[name])


def load_inputs(
    predictions: str | Path | Table,
    truth: str | Path | Table,
    *,
    samples: str | Path | None = None,
) -> Matched:
    """Read the files (or take the tables, as ``gampen.predict`` returns them) and match
    them; see :func:`match`."""
    return match(as_table(predictions), truth_catalog(truth), samples=samples)


def as_table(source: str | Path | Table) -> Table:
    """A catalog file read, or a table taken as it is."""
    return source if isinstance(source, Table) else read_catalog(source)


def truth_catalog(source: str | Path | Table) -> Catalog:
    """The truth catalog, read once: every column kept (the subsets read them), no image
    files needed (the predictions may name them), truth values checked where used (a NaN
    one leaves its galaxy out)."""
    return load_catalog(source, images=False, keep_columns="all")


def origin(source: str | Path | Table) -> str:
    """Where a table came from: its path, the file it was read from, or a description."""
    if isinstance(source, Table):
        return str(source.meta.get("gampen_source", "an astropy Table given in memory"))
    return str(source)


def match(predictions: Table, truth: Catalog, *, samples: str | Path | None = None) -> Matched:
    """Usable galaxies of ``predictions`` with their rows of the ``truth`` catalog
    (:func:`truth_catalog`), and their sample rows."""
    _require(predictions.colnames, "object_id", f"predictions {source_name(predictions)}")
    _require(truth.column_names, "object_id", f"truth catalog {truth.source}")
    ids_p, ids_t = _comparable_ids(predictions["object_id"], truth.object_ids)
    names = _sample_names(samples) if samples is not None else None
    params = _params(predictions, truth, names)
    position = _index(ids_t, truth.source)
    in_truth = np.array([i in position for i in ids_p.tolist()], dtype=bool)
    dropped = {"not_in_truth": int((~in_truth).sum())}
    rows_t = np.array([position[i] for i in ids_p[in_truth].tolist()], dtype=np.int64)
    pred, true = predictions[in_truth], truth.kept[rows_t]
    keep = np.ones(len(pred), dtype=bool)
    if "flags" in pred.colnames:
        fatal = np.asarray(is_fatal(np.asarray(pred["flags"], dtype=np.int64)))
        dropped["fatal_flag"] = int(fatal.sum())
        keep &= ~fatal
    finite_pred = np.all([np.isfinite(floats(pred[f"{p}_median"])) for p in params], axis=0)
    dropped["nan_estimate"] = int((keep & ~finite_pred).sum())
    keep &= finite_pred
    finite_true = np.all([np.isfinite(floats(true[p])) for p in params], axis=0)
    dropped["nan_truth"] = int((keep & ~finite_true).sum())
    keep &= finite_true
    rows_s, columns = None, []
    if samples is not None:
        rows_s, columns, found = _sample_rows(samples, ids_p[in_truth], params, names)
        dropped["not_in_samples"] = int((keep & ~found).sum())
        keep &= found
        rows_s = rows_s[keep]
    if not keep.any():
        raise CatalogError(
            "no galaxy is left to evaluate after matching predictions to the truth",
            value=dropped,
            allowed="object_id values shared by both tables, with finite estimates",
        )
    return Matched(
        predictions=pred[keep],
        truth=true[keep],
        params=params,
        dropped=dropped,
        truth_source=truth.source,
        truth_ids=truth.object_ids[rows_t[keep]],
        samples_path=None if samples is None else Path(samples),
        sample_rows=rows_s,
        sample_columns=columns,
    )


def training_galaxies(
    matched: Matched,
    truth: str | Path | Table,
    *,
    provenance: dict[str, Any],
    param_names: list[str],
) -> str:
    """Why the matched truth galaxies are a model's training galaxies ('' when nothing shows
    it): the very training file, or :func:`gampen.data.provenance.training_overlap`."""
    catalog = None if isinstance(truth, Table) else Path(truth)
    if catalog is not None and file_sha256(catalog) == provenance.get("data_sha256"):
        return "it is the catalog the model was trained on"
    table = matched.truth
    labels = None
    if set(param_names) <= set(table.colnames):  # as the loader reads them, NaN rows kept
        labels = np.stack([floats(table[name]) for name in param_names], axis=1)
    return training_overlap(provenance, labels, matched.truth_ids, catalog)


def sample_blocks(matched: Matched, *, block: int = 256) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, samples)`` blocks in matched order; samples (b, S, k) float64, params' order."""
    if matched.samples_path is None or matched.sample_rows is None:
        raise CatalogError("no samples file was given", allowed="--samples samples.h5")
    with h5py.File(matched.samples_path, "r") as h5:
        data = h5["samples"]
        for start in range(0, len(matched), block):
            rows = matched.sample_rows[start : start + block]
            order = np.argsort(rows)
            values = np.empty((len(rows), *data.shape[1:]), dtype=np.float32)
            values[order] = data[rows[order]]
            yield (
                slice(start, start + len(rows)),
                values[..., matched.sample_columns].astype(np.float64),
            )


def samples_of(matched: Matched, positions: np.ndarray) -> np.ndarray:
    """Samples (m, S, k) float64 of a few matched galaxies, given by position."""
    if matched.samples_path is None or matched.sample_rows is None:
        raise CatalogError("no samples file was given", allowed="--samples samples.h5")
    rows = matched.sample_rows[np.asarray(positions, dtype=np.int64)]
    order = np.argsort(rows)
    with h5py.File(matched.samples_path, "r") as h5:
        data = h5["samples"]
        values = np.empty((len(rows), *data.shape[1:]), dtype=np.float32)
        values[order] = data[rows[order]]
    return values[..., matched.sample_columns].astype(np.float64)


def _params(predictions: Table, truth: Catalog, sample_names: list[str] | None) -> list[str]:
    """The parameters to judge: summarised in the table, true in the catalog (and sampled)."""
    summarised = [
        c[: -len("_ci68_lo")]
        for c in predictions.colnames
        if c.endswith("_ci68_lo") and c[: -len("_ci68_lo")] not in _DERIVED
    ]
    candidates = sample_names if sample_names is not None else summarised
    params = [p for p in candidates if p in summarised and p in truth.column_names]
    if not params:
        raise CatalogError(
            f"{source_name(predictions)} and {truth.source} share no parameter to evaluate",
            value=candidates,
            allowed="parameters with P_median/P_ci68_lo... columns in the predictions, a "
            "column P in the truth catalog" + (" and in the samples file" if sample_names else ""),
        )
    return params


def _sample_names(path: str | Path) -> list[str]:
    """The ``param_names`` of a samples file, checking the file has the expected layout."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"samples file not found: {path}")
    try:
        with h5py.File(path, "r") as h5:
            missing = [k for k in ("samples", "object_id", "param_names") if k not in h5]
            if missing:
                raise CatalogError(
                    f"{path}: samples file lacks dataset(s) {missing}",
                    allowed="samples, object_id and param_names (as written by gampen predict)",
                )
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in h5["param_names"][:]]
            shape = h5["samples"].shape
    except OSError as exc:
        raise CatalogError(f"{path}: cannot be read as HDF5: {exc}") from exc
    if len(shape) != 3 or shape[2] != len(names):
        raise CatalogError(
            f"{path}: 'samples' has the wrong shape",
            value=shape,
            allowed=f"(n_galaxies, n_samples, {len(names)})",
        )
    return names


def _sample_rows(
    path: str | Path, ids: np.ndarray, params: list[str], names: list[str] | None
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Row in the samples file of each id (0 where absent), the params' columns, found."""
    with h5py.File(path, "r") as h5:
        stored = h5["object_id"][:]
    stored = np.array([s.decode() if isinstance(s, bytes) else s for s in stored])
    ids, stored = _comparable_ids(ids, stored)
    position = {v: i for i, v in enumerate(stored.tolist())}
    found = np.array([i in position for i in ids.tolist()], dtype=bool)
    rows = np.array([position.get(i, 0) for i in ids.tolist()], dtype=np.int64)
    return rows, [(names or []).index(p) for p in params], found


def _comparable_ids(a: Table | np.ndarray, b: Table | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both id columns as arrays of one kind (strings when one of them holds strings)."""
    a, b = np.asarray(a), np.asarray(b)
    if (a.dtype.kind in "US") != (b.dtype.kind in "US") or a.dtype.kind in "US":
        return np.char.strip(a.astype(str)), np.char.strip(b.astype(str))
    return a, b


def _index(ids: np.ndarray, source: str) -> dict[object, int]:
    """Row of each id (as compared: ids equal but for spaces are duplicates), refusing
    duplicates."""
    position = {v: i for i, v in enumerate(ids.tolist())}
    if len(position) != len(ids):
        raise CatalogError(
            f"{source}: column 'object_id' has {len(ids) - len(position)} duplicate(s)",
            allowed="unique object_id values",
        )
    return position


def _require(columns: Sequence[str], column: str, what: str) -> None:
    """Refuse a table (``what``, with its name) without ``column``."""
    if column not in columns:
        raise CatalogError(f"{what} has no '{column}' column", allowed=f"a '{column}' column")


def floats(column: Table | np.ndarray) -> np.ndarray:
    """A column as float64 with masked values as NaN."""
    return np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)


def settings_of(path: str | Path) -> dict[str, Any]:
    """The settings a samples file records (passes, samples, seed, model; empty when none)."""
    with h5py.File(path, "r") as h5:
        text = h5.attrs.get("settings")
    return json.loads(text) if isinstance(text, str) else {}
