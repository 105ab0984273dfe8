"""Conditional coverage: the same checks within subsets of galaxies.

A model can be calibrated on average and wrong for every subset (too wide for bright
galaxies, too narrow for faint ones), so coverage is also judged per subset, wherever the
truth catalog has the column: magnitude (halves at mag 21, the headline split, and
quantile bins), ``n_neighbours`` (isolated against with neighbours), size (true r_e),
``psf_fwhm``, and each parameter's predicted 68 % interval width (relative for
log-scaled parameters).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gampen.data.labels import DEFAULT_TRANSFORMS
from gampen.evaluation.evidence import Evidence, summarise
from gampen.evaluation.inputs import Matched, floats

#: The headline bright/faint split (issue 8).
MAG_SPLIT = 21.0
#: Quantile bins per continuous covariate.
N_BINS = 4
#: Covariates binned by quantile: truth column -> description with unit.
QUANTILE_COVARIATES: dict[str, str] = {
    "mag": "magnitude",
    "r_e": "true r_e [arcsec]",
    "psf_fwhm": "PSF FWHM [arcsec]",
}


@dataclass
class Subset:
    """Galaxies of one bin of one split; ``params`` limits which parameters it judges."""

    split: str
    label: str
    mask: np.ndarray
    params: tuple[str, ...] | None = None


def subsets(matched: Matched, *, n_bins: int = N_BINS) -> list[Subset]:
    """Every subset the truth catalog and predictions allow, headline splits first."""
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
    for column, description in QUANTILE_COVARIATES.items():
        if column in truth.colnames:
            out += quantile_subsets(floats(truth[column]), column, description, n_bins=n_bins)
    for p in matched.params:
        width = interval_width(matched, p)
        split = f"width_{p}"
        described = f"{'relative ' if relative(p) else ''}68 % width of {p}"
        out += [
            Subset(s.split, s.label, s.mask, (p,))
            for s in quantile_subsets(width, split, described, n_bins=n_bins)
        ]
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
    out = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        mask = finite & (values >= lo) & ((values <= hi) if last else (values < hi))
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
