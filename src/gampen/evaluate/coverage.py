"""Coverage of credible intervals: how often the truth falls inside them.

For a calibrated posterior, the x % interval holds the truth x % of the time, for every
parameter and level.  Matching is by ``object_id``; rows with a fatal flag or NaN
estimates are left out (and counted).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.table import Table, join

from gampen.errors import CatalogError
from gampen.flags import is_fatal
from gampen.infer.summary import LEVELS


def interval_coverage(
    predictions: Table, truth: Table, params: Sequence[str] = ("bt", "r_e", "flux")
) -> dict[str, dict[str, float]]:
    """Fraction of galaxies whose truth lies in each interval: ``{param: {level: fraction}}``.

    Also reports ``n`` (galaxies used) per parameter.
    """
    for name, table in (("predictions", predictions), ("truth", truth)):
        if "object_id" not in table.colnames:
            raise CatalogError(f"{name} table has no 'object_id' column")
    missing = [p for p in params if p not in truth.colnames]
    if missing:
        raise CatalogError(
            "truth table lacks parameter column(s)", value=missing, allowed=truth.colnames
        )
    truth_cols = truth[["object_id", *params]]
    for p in params:
        truth_cols.rename_column(p, f"true_{p}")
    matched = join(predictions, truth_cols, keys="object_id", metadata_conflicts="silent")
    usable = ~is_fatal(np.asarray(matched["flags"])) if "flags" in matched.colnames else True
    result: dict[str, dict[str, float]] = {}
    for p in params:
        true = np.asarray(matched[f"true_{p}"], dtype=float)
        ok = usable & np.isfinite(np.asarray(matched[f"{p}_median"], dtype=float))
        result[p] = {"n": int(ok.sum())}
        for level in LEVELS:
            lo = np.asarray(matched[f"{p}_{level}_lo"], dtype=float)[ok]
            hi = np.asarray(matched[f"{p}_{level}_hi"], dtype=float)[ok]
            result[p][level] = float(np.mean((true[ok] >= lo) & (true[ok] <= hi)))
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
