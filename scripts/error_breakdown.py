"""Where a model's errors come from: its point-estimate errors in bins of true size and
magnitude, and of every nuisance column the truth catalog holds (PSF-model error, PSF
profile, Sersic indices, clumps), so a loss of accuracy can be traced to its cause.

    .venv/bin/python scripts/error_breakdown.py PREDICTIONS TRUTH [--out table.md]

Errors as in ``gampen evaluate`` and the robustness battery: bt's mean absolute error, the
median absolute fractional error of r_e and flux, of the posterior medians; galaxies with a
fatal flag are left out.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from gampen.flags import is_fatal

#: column -> bin edges (None: one bin per distinct value)
BINS: dict[str, list[float] | None] = {
    "r_e": [0.0, 0.3, 0.5, 0.8, 1.2, 2.0, 10.0],
    "mag": [17.0, 19.0, 21.0, 23.5],
    "psf_error": [-1.0, -0.06, -0.02, 0.02, 0.06, 1.0],
    "psf_model": None,
    "bulge_n": [0.0, 2.5, 3.5, 4.5, 10.0],
    "disk_n": [0.0, 0.85, 1.15, 3.0],
    "clumpy": None,
}


def joined(predictions: Path, truth: Path) -> pd.DataFrame:
    """Truth and predictions of the galaxies without a fatal flag, with their errors."""
    table = pd.read_csv(truth).merge(
        pd.read_parquet(predictions), on="object_id", suffixes=("", "_pred")
    )
    table = table[[not is_fatal(int(f)) for f in table["flags"]]].copy()
    table["bt_err"] = np.abs(table["bt_median"] - table["bt"])
    for p in ("r_e", "flux"):
        table[f"{p}_err"] = np.abs(table[f"{p}_median"] / table[p] - 1.0)
    if "psf_fwhm_true" in table:
        table["psf_error"] = np.log(table["psf_fwhm"] / table["psf_fwhm_true"])
    if "clump_fraction" in table:
        table["clumpy"] = np.where(table["clump_fraction"] > 0, "clumps", "none")
    return table


def breakdown(table: pd.DataFrame) -> str:
    """A markdown table: one row per bin of each column in :data:`BINS` the table holds."""
    lines = ["| bin | n | bt | r_e | flux |", "|---|---|---|---|---|"]
    lines.append(_row("all", table))
    for column, edges in BINS.items():
        if column not in table:
            continue
        keys = pd.cut(table[column], edges) if edges else table[column]
        for key, group in table.groupby(keys, observed=True):
            lines.append(_row(f"{column} {key}", group))
    return "\n".join(lines)


def _row(label: str, group: pd.DataFrame) -> str:
    """One table row: the bin, its size and its three errors."""
    return (
        f"| {label} | {len(group)} | {group['bt_err'].mean():.3f} | "
        f"{100 * group['r_e_err'].median():.1f} % | {100 * group['flux_err'].median():.2f} % |"
    )


def table_command(description: str, table: Callable[[pd.DataFrame], str]) -> None:
    """The command line of a script that prints a markdown ``table`` of :func:`joined`
    PREDICTIONS and TRUTH (and writes it to ``--out``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("predictions", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    text = table(joined(args.predictions, args.truth))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    table_command(__doc__.split("\n\n")[0], breakdown)
