"""Conditional coverage: the same checks within subsets of galaxies.

A model can be calibrated on average and wrong for every subset (too wide for bright
galaxies, too narrow for faint ones; good for mixed galaxies, bad for pure disks), so
coverage is also judged per subset, wherever the truth catalog has the column: magnitude
(halves at mag 21, the headline split), ``n_neighbours`` (isolated against with
neighbours), the true values (fifths of B/T with fixed edges plus pure disks and pure
bulges, fifths by quantile of magnitude and size), ``psf_fwhm``, each parameter's
predicted 68 % interval width (relative for log-scaled parameters), and any truth column
the user names (``gampen evaluate --by COLUMN``: quartiles, or one bin per name).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.table import Table

from gampen.data.labels import DEFAULT_TRANSFORMS
from gampen.errors import CatalogError
from gampen.evaluation.evidence import Evidence, summarise
from gampen.evaluation.inputs import Matched, floats

#: The headline bright/faint split (issue 8).
MAG_SPLIT = 21.0
#: Quantile bins of observing conditions and predicted widths.
N_BINS = 4
#: Bins of the true values: fifths.
TRUTH_BINS = 5
#: Fixed edges of the true-B/T fifths; the last bin includes 1.
BT_EDGES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: Splits by a true value, reported together (their own table and figure).
TRUTH_SPLITS: tuple[str, ...] = ("bt", "mag", "r_e")
#: Prefix of the splits by user-named truth columns (``--by``).
BY_PREFIX = "by "
#: Covariates binned by quantile: truth column -> (description with unit, bins).
QUANTILE_COVARIATES: dict[str, tuple[str, int]] = {
    "mag": ("magnitude", TRUTH_BINS),
    "r_e": ("true r_e [arcsec]", TRUTH_BINS),
    "psf_fwhm": ("PSF FWHM [arcsec]", N_BINS),
}


@dataclass
class Subset:
    """Galaxies of one bin of one split; ``params`` limits which parameters it judges."""

    split: str
    label: str
    mask: np.ndarray
    params: tuple[str, ...] | None = None


def subsets(matched: Matched, by: Sequence[str] = ()) -> list[Subset]:
    """Every subset the truth catalog and predictions allow, headline splits first, then
    those of the truth columns named in ``by``."""
    truth = matched.truth
    out: list[Subset] = []
    if "n_neighbours" in truth.colnames:
        count = floats(truth["n_neighbours"])
        out += [
            Subset("neighbours", "isolated", count == 0),
            Subset("neighbours", "with neighbours", count > 0),
        ]
    if "mag" in truth.colnames:
        mag = floats(truth["mag"])
        out += [
            Subset("mag_halves", f"bright (mag < {MAG_SPLIT:g})", mag < MAG_SPLIT),
            Subset("mag_halves", f"faint (mag >= {MAG_SPLIT:g})", mag >= MAG_SPLIT),
        ]
    if "bt" in truth.colnames:
        out += bt_subsets(floats(truth["bt"]))
    for column, (description, n_bins) in QUANTILE_COVARIATES.items():
        if column in truth.colnames:
            out += quantile_subsets(floats(truth[column]), column, description, n_bins=n_bins)
    for p in matched.params:
        width = interval_width(matched, p)
        split = f"width_{p}"
        described = f"{'relative ' if relative(p) else ''}68 % width of {p}"
        out += [
            Subset(s.split, s.label, s.mask, (p,))
            for s in quantile_subsets(width, split, described, n_bins=N_BINS)
        ]
    for column in by:
        out += column_subsets(truth, column)
    return out


def column_subsets(truth: Table, column: str) -> list[Subset]:
    """Quartiles of a numeric truth column, or one bin per value of a column of names
    (e.g. ``psf_model``); a column the catalog lacks is refused, naming the ones it has."""
    if column not in truth.colnames:
        raise CatalogError(
            f"--by: the truth catalog has no '{column}' column",
            value=column,
            allowed=f"one of {list(truth.colnames)}",
        )
    split = BY_PREFIX + column
    values = np.asarray(truth[column])
    if values.dtype.kind in "biuf":
        return quantile_subsets(floats(truth[column]), split, column, n_bins=N_BINS)
    names = values.astype(str)
    return [Subset(split, f"{column} = {name}", names == name) for name in np.unique(names)]


def bt_subsets(bt: np.ndarray) -> list[Subset]:
    """Fifths of true B/T on :data:`BT_EDGES`, then pure disks (B/T = 0) and pure bulges
    (B/T = 1) again on their own, where a model's coverage can fail alone; empty bins left out."""
    out = [s for s in edge_subsets(bt, np.asarray(BT_EDGES), "bt", "true B/T") if s.mask.any()]
    for value, kind in ((0.0, "pure disks"), (1.0, "pure bulges")):
        if (bt == value).any():
            out.append(Subset("bt", f"{kind} (B/T = {value:g})", bt == value))
    return out


def interval_width(matched: Matched, param: str) -> np.ndarray:
    """Width of the 68.27 % interval; divided by the median for log-scaled parameters."""
    width = matched.column(f"{param}_ci68_hi") - matched.column(f"{param}_ci68_lo")
    if relative(param):
        with np.errstate(invalid="ignore", divide="ignore"):
            return width / matched.column(f"{param}_median")
    return width


def quantile_subsets(
    values: np.ndarray, split: str, description: str, *, n_bins: int = N_BINS
) -> list[Subset]:
    """Up to ``n_bins`` bins of equal counts (fewer when values repeat); NaN in none."""
    finite = np.isfinite(values)
    if not finite.any():
        return []
    edges = np.unique(np.quantile(values[finite], np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        return [Subset(split, f"{description} = {edges[0]:.3g}", finite)]
    return edge_subsets(values, edges, split, description)


def edge_subsets(
    values: np.ndarray, edges: np.ndarray, split: str, description: str
) -> list[Subset]:
    """One bin per pair of increasing ``edges``, half-open except the last (closed); NaN in none."""
    out = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        mask = (values >= lo) & ((values <= hi) if last else (values < hi))
        bracket = "]" if last else ")"
        out.append(Subset(split, f"{description} in [{lo:.3g}, {hi:.3g}{bracket}", mask))
    return out


def conditional_coverage(evidence: Evidence, parts: Sequence[Subset]) -> dict[str, Any]:
    """``{split: [{label, n, params: {...}, joint: {...}}, ...]}`` for every subset."""
    out: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        summary = summarise(evidence.subset(part.mask), curves=False)
        if part.params is not None:
            summary["params"] = {p: summary["params"][p] for p in part.params}
            summary.pop("joint", None)
        out.setdefault(part.split, []).append({"label": part.label, **summary})
    return out


def relative(param: str) -> bool:
    """Whether a parameter's widths and errors are judged relative to its value."""
    return DEFAULT_TRANSFORMS.get(param) == "log"
