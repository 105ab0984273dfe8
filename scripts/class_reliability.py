"""Are the predicted class probabilities right?  The reliability of ``p_disk`` (the posterior
probability that bt < 0.1) and ``p_bulge`` (bt > 0.9): in bins of the predicted probability,
its mean against the share of galaxies whose true bt is in the class.  For galaxies whose
truth is exactly 0 or 1 this is the fair check of a posterior with a point mass there,
where interval coverage exceeds nominal by construction.

    .venv/bin/python scripts/class_reliability.py PREDICTIONS TRUTH [--out table.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from gampen.flags import is_fatal

#: column -> (threshold test on the true bt, description)
CLASSES = {
    "p_disk": (lambda bt: bt < 0.1, "bt < 0.1"),
    "p_bulge": (lambda bt: bt > 0.9, "bt > 0.9"),
}
#: Bin edges of the predicted probability.
EDGES = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]


def reliability(predictions: Path, truth: Path) -> str:
    """A markdown table per class: n, mean predicted probability and observed share per bin."""
    table = pd.read_csv(truth).merge(
        pd.read_parquet(predictions), on="object_id", suffixes=("", "_pred")
    )
    table = table[[not is_fatal(int(f)) for f in table["flags"]]]
    lines = ["| class | predicted in | n | mean predicted | observed |", "|---|---|---|---|---|"]
    for column, (member, label) in CLASSES.items():
        observed = member(table["bt"].to_numpy()).astype(float)
        bins = pd.cut(table[column], EDGES, include_lowest=True)
        frame = pd.DataFrame({"pred": table[column], "obs": observed})
        for key, group in frame.groupby(bins, observed=True):
            lines.append(
                f"| {column} ({label}) | {key} | {len(group)} | {group['pred'].mean():.3f} | "
                f"{group['obs'].mean():.3f} |"
            )
        lines.append(
            f"| {column} ({label}) | all | {len(frame)} | {frame['pred'].mean():.3f} | "
            f"{np.mean(observed):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    text = reliability(args.predictions, args.truth)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
