"""Does a model widen its posteriors where a shift makes it err more?

Reads a finished robustness battery (``scripts/robustness.py --out DIR``) and prints, per
shift and parameter, the median ratio of each galaxy's predicted sd to its sd in the
unshifted row (the same galaxies), beside the ratio of the errors of the medians as the
battery measures them (bt: mean absolute error; r_e, flux: median absolute fractional
error). An honest model moves both together; a sd ratio near 1 with errors grown is a
shift the network does not see. Galaxies flagged in either row are left out.

    python scripts/battery_widths.py BATTERY_DIR [SHIFT ...]   (default: every row)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.table import Table
from robustness import PARAMS, error, with_truth


def load_row(folder: Path) -> Table:
    """A battery row's predictions with the truth of each galaxy beside them."""
    predictions = Table.read(folder / "predictions.parquet")
    return with_truth(predictions, Table.read(folder / "sims" / "info.csv", format="ascii.csv"))


def ratios(shifted: Table, unshifted: Table) -> dict[str, tuple[float, float]]:
    """Per parameter: (median sd ratio, error ratio) over galaxies unflagged in both."""
    ids = np.intersect1d(shifted["object_id"], unshifted["object_id"])
    a = shifted[np.isin(shifted["object_id"], ids)]
    b = unshifted[np.isin(unshifted["object_id"], ids)]
    a.sort("object_id")
    b.sort("object_id")
    keep = (np.asarray(a["flags"]) == 0) & (np.asarray(b["flags"]) == 0)
    out = {}
    for p in PARAMS:
        sd = np.asarray(a[f"{p}_std"], float)[keep] / np.asarray(b[f"{p}_std"], float)[keep]
        out[p] = (float(np.median(sd)), error(a[keep], p) / error(b[keep], p))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("battery", type=Path, help="folder written by scripts/robustness.py")
    parser.add_argument("shifts", nargs="*", help="rows to show (default: all but none)")
    args = parser.parse_args()
    if not (args.battery / "none" / "predictions.parquet").exists():
        parser.error(f"{args.battery}: no none/predictions.parquet (not a finished battery)")
    names = args.shifts or sorted(
        d.name for d in args.battery.iterdir() if (d / "predictions.parquet").exists()
    )
    unshifted = load_row(args.battery / "none")
    print("| shift | " + " | ".join(f"{p}: sd x / error x" for p in PARAMS) + " |")
    print("|---|" + "---|" * len(PARAMS))
    for name in (n for n in names if n != "none"):
        found = ratios(load_row(args.battery / name), unshifted)
        cells = " | ".join(f"{found[p][0]:.3f} / {found[p][1]:.2f}" for p in PARAMS)
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
