#!/usr/bin/env python
"""One markdown row per ``gampen evaluate`` report: the figures a model change is judged by.

    python scripts/calibration_table.py NAME=REPORT_DIR [NAME=REPORT_DIR ...]

Columns: coverage of the 68.27/95.45/99.73 % intervals per parameter (all galaxies); the
largest deviation from nominal over those 9 numbers, and over the same numbers in each
half (isolated / with neighbours, bright / faint); joint (Mahalanobis) coverage at 68 and
95 %; bt mean absolute error and the r_e and flux median absolute fractional errors of
the posterior median; the median spread of the posterior modes over the 8 dihedral
orientations (bt absolute, r_e and flux fractional), where the report ran ``--rotation``.
Deviations are in percentage points.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PARAMS = ("bt", "r_e", "flux")
LEVELS = {"ci68": 0.6827, "ci95": 0.9545, "ci99": 0.9973}
HALVES = ("isolated", "with neighbours", "bright (mag < 21)", "faint (mag >= 21)")


def worst(coverage: dict) -> float:
    """Largest |coverage - nominal| in points over the parameters and levels."""
    return 100 * max(abs(coverage[p][c] - v) for p in PARAMS for c, v in LEVELS.items())


def row(name: str, report: Path) -> str:
    """The table row of one report's metrics.json."""
    metrics = json.loads((report / "metrics.json").read_text())
    head, acc = metrics["headline"], metrics["accuracy"]
    cov = head["coverage"]
    cells = [" / ".join(f"{100 * cov['all'][p][c]:.1f}" for c in LEVELS) for p in PARAMS]
    halves = max(worst(cov[h]) for h in HALVES if h in cov)
    joint = head.get("joint") or {}
    joint_text = f"{100 * joint['68']:.1f} / {100 * joint['95']:.1f}" if joint else "n/a"
    return (
        f"| {name} | "
        + " | ".join(cells)
        + f" | {worst(cov['all']):.1f} | {halves:.1f} | {joint_text}"
        + f" | {acc['bt']['median']['mean_abs_error']:.3f}"
        + f" | {100 * acc['r_e']['median']['median_abs_fractional_error']:.1f} %"
        + f" | {100 * acc['flux']['median']['median_abs_fractional_error']:.1f} %"
        + f" | {rotation_text(metrics)} |"
    )


def rotation_text(metrics: dict) -> str:
    """Median dihedral spread of the modes: bt absolute, r_e and flux in per cent."""
    spread = metrics.get("rotation", {}).get("dihedral", {}).get("params")
    if not spread:
        return "n/a"
    bt = spread["bt"]["median_spread"]
    return f"{bt:.3f} / " + " / ".join(
        f"{100 * spread[p]['median_spread']:.1f} %" for p in PARAMS[1:]
    )


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    print(
        "| model | bt 68/95/99.7 | r_e 68/95/99.7 | flux 68/95/99.7 | worst dev. (pts) "
        "| worst dev. in a half | joint 68 / 95 | bt MAE | r_e MdAFE | flux MdAFE "
        "| rotation spread bt / r_e / flux |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for item in argv:
        name, _, folder = item.partition("=")
        print(row(name, Path(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
