"""Marginal coverage: how often each parameter's credible interval holds the truth.

Two sources, one meaning.  With samples, the probability integral transform (PIT, the
fraction of a galaxy's samples below its truth) gives the coverage of the equal-tailed
interval at any level: the truth lies inside the central ``a`` interval exactly when
``|PIT - 1/2| < a/2``.  The PIT is randomised over ties (bt samples and truths can sit
exactly at 0 or 1), so it is uniform for a calibrated posterior even with point masses
(:func:`gampen.calibration.ranks.randomised_pit`).
Without samples, only the table's 68.27/95.45/99.73 % intervals can be judged.

For a calibrated posterior the empirical coverage equals the nominal level up to
binomial noise; :func:`binomial_band` gives the pointwise band.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.table import Table
from scipy import stats

from gampen.errors import CatalogError
from gampen.evaluation.inputs import match, truth_catalog
from gampen.infer.summary import LEVELS

#: Nominal levels of the coverage curves: 1 % to 99 %, the table's levels and 99.9 %.
LEVEL_GRID: np.ndarray = np.unique(
    np.round(np.r_[np.arange(1, 100) / 100, list(LEVELS.values()), 0.999], 6)
)
#: Probability content of the pointwise binomial band around the nominal coverage.
BAND_CONFIDENCE = 0.95
#: Bins of the PIT histograms.
PIT_BINS = 20


@dataclass
class CoverageCurve:
    """Empirical coverage at nominal levels, with the binomial band a calibrated model meets."""

    levels: np.ndarray
    empirical: np.ndarray
    n: int
    band_lo: np.ndarray
    band_hi: np.ndarray

    @property
    def max_abs_deviation(self) -> float:
        """The largest |empirical - nominal| over the levels (NaN when no galaxy)."""
        return float(np.max(np.abs(self.empirical - self.levels))) if self.n else float("nan")

    def at(self, level: float) -> float:
        """The empirical coverage at one of the curve's levels."""
        hit = np.flatnonzero(np.isclose(self.levels, level))
        if not hit.size:
            raise CatalogError("level not on the coverage curve", value=level, allowed=self.levels)
        return float(self.empirical[hit[0]])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the arrays as lists, and the largest deviation."""
        return {
            "n": self.n,
            "max_abs_deviation": self.max_abs_deviation,
            "levels": self.levels.tolist(),
            "empirical": self.empirical.tolist(),
            "band_lo": self.band_lo.tolist(),
            "band_hi": self.band_hi.tolist(),
        }


def coverage_from_pit(pit: np.ndarray, levels: np.ndarray = LEVEL_GRID) -> np.ndarray:
    """Fraction of finite PIT values inside each central level: ``|PIT - 1/2| < level/2``."""
    pit = np.asarray(pit, dtype=float)
    pit = pit[np.isfinite(pit)]
    if not pit.size:
        return np.full(len(levels), np.nan)
    distance = np.sort(np.abs(pit - 0.5))
    return np.searchsorted(distance, np.asarray(levels) / 2, side="left") / pit.size


def binomial_band(
    levels: np.ndarray, n: int, *, confidence: float = BAND_CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise range of the coverage of ``n`` calibrated galaxies (binomial quantiles)."""
    levels = np.asarray(levels, dtype=float)
    if n == 0:
        return np.full(len(levels), np.nan), np.full(len(levels), np.nan)
    tail = (1 - confidence) / 2
    return stats.binom.ppf(tail, n, levels) / n, stats.binom.ppf(1 - tail, n, levels) / n


def curve_from_pit(pit: np.ndarray, levels: np.ndarray = LEVEL_GRID) -> CoverageCurve:
    """The coverage curve of one parameter (or a joint statistic) from its PIT values."""
    n = int(np.isfinite(pit).sum())
    lo, hi = binomial_band(levels, n)
    return CoverageCurve(np.asarray(levels), coverage_from_pit(pit, levels), n, lo, hi)


def curve_from_hits(hits: dict[str, np.ndarray]) -> CoverageCurve:
    """A three-point coverage curve from the table's interval hits ``{ci68: bool (n,)...}``."""
    levels = np.array([LEVELS[name] for name in hits])
    empirical = np.array([np.mean(h) if h.size else np.nan for h in hits.values()])
    n = len(next(iter(hits.values())))
    lo, hi = binomial_band(levels, n)
    return CoverageCurve(levels, empirical, n, lo, hi)


def interval_hits(predictions: Table, truth: np.ndarray, param: str) -> dict[str, np.ndarray]:
    """Whether each truth (n,) lies in the table's closed intervals, per level name."""
    hits = {}
    for name in LEVELS:
        lo, hi = (_column(predictions, f"{param}_{name}_{end}") for end in ("lo", "hi"))
        hits[name] = (truth >= lo) & (truth <= hi)
    return hits


def pit_histogram(pit: np.ndarray, *, bins: int = PIT_BINS) -> dict[str, Any]:
    """Counts of the PIT in equal bins, the count a calibrated model expects and a KS test."""
    pit = np.asarray(pit, dtype=float)
    pit = pit[np.isfinite(pit)]
    counts, _ = np.histogram(pit, bins=bins, range=(0.0, 1.0))
    n = int(pit.size)
    lo, hi = binomial_band(np.full(1, 1 / bins), n)
    return {
        "n": n,
        "counts": counts.tolist(),
        "expected": n / bins,
        "band": [float(lo[0] * n), float(hi[0] * n)],
        "ks_pvalue": float(stats.kstest(pit, "uniform").pvalue) if n else float("nan"),
    }


def interval_coverage(
    predictions: Table, truth: Table, params: Sequence[str] = ("bt", "r_e", "flux")
) -> dict[str, dict[str, float]]:
    """Coverage of the table's intervals, ``{param: {n, ci68, ci95, ci99}}`` (for quick looks).

    Rows are matched by ``object_id``; fatal-flagged and NaN rows are left out.
    """
    missing = [p for p in params if p not in truth.colnames]
    if missing:
        raise CatalogError(
            "truth table lacks parameter column(s)", value=missing, allowed=truth.colnames
        )
    matched = match(predictions, truth_catalog(truth))
    result: dict[str, dict[str, float]] = {}
    for p in params:
        hits = interval_hits(matched.predictions, np.asarray(matched.truth[p], float), p)
        result[p] = {"n": len(matched), **{name: float(np.mean(h)) for name, h in hits.items()}}
    return result


def format_coverage(coverage: dict[str, dict[str, float]]) -> str:
    """A small text table: one row per parameter, nominal level in each column header."""
    header = f"{'param':<8}{'n':>7}" + "".join(
        f"{name} ({LEVELS[name]:.2%})".rjust(18) for name in LEVELS
    )
    lines = [header]
    for p, row in coverage.items():
        cells = "".join(f"{row[name]:>18.2%}" for name in LEVELS)
        lines.append(f"{p:<8}{row['n']:>7}{cells}")
    return "\n".join(lines)


def _column(table: Table, name: str) -> np.ndarray:
    """A float column of the predictions, with a clear error when absent."""
    if name not in table.colnames:
        raise CatalogError(
            f"predictions table lacks column '{name}'",
            allowed="the columns gampen predict writes (P_ci68_lo, P_ci68_hi, ...)",
        )
    return np.ma.filled(np.ma.asarray(table[name], dtype=np.float64), np.nan)
