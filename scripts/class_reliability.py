"""Are the predicted class probabilities right?  The reliability of ``p_disk`` (the posterior
probability that bt < 0.1) and ``p_bulge`` (bt > 0.9): in bins of the predicted probability,
its mean against the share of galaxies whose true bt is in the class.  For galaxies whose
truth is exactly 0 or 1 this is the fair check of a posterior with a point mass there,
where interval coverage exceeds nominal by construction.  Then, for the galaxies whose
true bt is exactly 0 or exactly 1 (pure disks and pure bulges), the median of their
posterior medians of bt and their mean class probability.

    .venv/bin/python scripts/class_reliability.py PREDICTIONS TRUTH [--out table.md]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from error_breakdown import table_command

#: column -> (membership of the class by true bt, description)
CLASSES = {
    "p_disk": (lambda bt: bt < 0.1, "bt < 0.1"),
    "p_bulge": (lambda bt: bt > 0.9, "bt > 0.9"),
}
#: Bin edges of the predicted probability.
EDGES = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]


def reliability(table: pd.DataFrame) -> str:
    """A markdown table per class: n, mean predicted probability and observed share per
    bin, for the galaxies of ``error_breakdown.joined`` (fatal flags left out)."""
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
    return "\n".join([*lines, "", pure_summary(table)])


def pure_summary(table: pd.DataFrame) -> str:
    """A markdown table: for true bt exactly 0 and exactly 1, n, the median of the bt
    posterior medians and the mean p_disk / p_bulge (empty rows left out)."""
    lines = ["| truth | n | median of bt medians | mean p_disk | mean p_bulge |"]
    lines.append("|---|---|---|---|---|")
    for value, name in ((0.0, "pure disks (bt = 0)"), (1.0, "pure bulges (bt = 1)")):
        group = table[table["bt"] == value]
        if len(group):
            lines.append(
                f"| {name} | {len(group)} | {group['bt_median'].median():.3f} | "
                f"{group['p_disk'].mean():.3f} | {group['p_bulge'].mean():.3f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    table_command(__doc__.split("\n\n")[0], reliability)
