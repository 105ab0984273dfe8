"""Check that a code change leaves gampen's outputs unchanged, bit for bit.

Run ``make`` once on the code before the change and once after, with different labels,
then ``compare``: predictions (every column), posterior samples, evaluate's metrics, the
calibration ``calibrate`` fits and the weights a short training run writes must be equal.
Used for the restructuring of issue 21 (layout changes must not move any number)::

    python scripts/same_outputs.py make WORK --model M --catalog C --image-dir D --label before
    (change the code)
    python scripts/same_outputs.py make WORK --model M --catalog C --image-dir D --label after
    python scripts/same_outputs.py compare WORK before after

``--catalog`` needs the true parameters (a ``gampen simulate`` catalog of >= 1,000
galaxies; predict and evaluate use its first 200, calibrate all, training its first 200).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
from astropy.table import Table

#: Metadata that records when and how an output was made, not what it holds.
VOLATILE = {"created", "command", "out", "splits", "training_seconds", "calibrated_at"}
#: Entries naming an input file: they differ by label when they are paths (strings).
PATHS = {"predictions", "samples", "samples_out"}


def _gampen(*args: str) -> None:
    """Run one gampen command, stopping on failure."""
    subprocess.run(["gampen", *args, "--no-progress"], check=True)


def make(work: Path, model: str, catalog: Path, image_dir: str, label: str) -> None:
    """Predict, evaluate, calibrate and train once, writing ``WORK/<label>-*``."""
    work.mkdir(parents=True, exist_ok=True)
    head = work / "head.csv"
    Table.read(catalog)[:200].write(head, overwrite=True)
    pred, samples = work / f"{label}.parquet", work / f"{label}-samples.h5"
    _gampen(
        "predict",
        str(head),
        "--model",
        model,
        "--image-dir",
        image_dir,
        "--out",
        str(pred),
        "--samples-out",
        str(samples),
        "--overwrite",
    )
    _gampen(
        "evaluate",
        str(pred),
        "--truth",
        str(head),
        "--samples",
        str(samples),
        "--model",
        model,
        "--out",
        str(work / f"eval-{label}"),
    )
    _gampen(
        "calibrate",
        model,
        "--catalog",
        str(catalog),
        "--image-dir",
        image_dir,
        "--out",
        str(work / f"cal-{label}"),
        "--bootstrap",
        "2",
        "--force",
        "--overwrite",
    )
    _gampen(
        "train",
        str(head),
        "--image-dir",
        image_dir,
        "--out",
        str(work / f"train-{label}"),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--train-passes",
        "2",
        "--seed",
        "1",
    )


def _strip(value: object) -> object:
    """A bundle's JSON without its volatile entries."""
    if isinstance(value, dict):
        return {
            k: _strip(v)
            for k, v in value.items()
            if k not in VOLATILE and not (k in PATHS and isinstance(v, str))
        }
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def compare(work: Path, before: str, after: str) -> list[str]:
    """Every difference between the two labels' outputs (empty when all are equal)."""
    diffs = []
    a, b = Table.read(work / f"{before}.parquet"), Table.read(work / f"{after}.parquet")
    if a.colnames != b.colnames:
        diffs.append(f"prediction columns differ: {a.colnames} vs {b.colnames}")
    diffs += [
        f"column {c} differs"
        for c in a.colnames
        if c in b.colnames and not np.array_equal(np.asarray(a[c]), np.asarray(b[c]))
    ]
    with (
        h5py.File(work / f"{before}-samples.h5") as fa,
        h5py.File(work / f"{after}-samples.h5") as fb,
    ):
        names: list[str] = []
        fa.visit(names.append)
        for name in names:
            same = not isinstance(fa[name], h5py.Dataset) or (
                name in fb and np.array_equal(fa[name][()], fb[name][()])
            )
            if not same:
                diffs.append(f"samples {name} differ")
    for kind in ("eval", "cal", "train"):
        for path in sorted((work / f"{kind}-{before}").glob("*.json")):
            other = work / f"{kind}-{after}" / path.name
            if _strip(json.loads(path.read_text())) != _strip(json.loads(other.read_text())):
                diffs.append(f"{kind} {path.name} differs")
        for path in sorted((work / f"{kind}-{before}").glob("*.safetensors")):
            other = work / f"{kind}-{after}" / path.name
            if path.read_bytes() != other.read_bytes():
                diffs.append(f"{kind} {path.name} differs")
    return diffs


def main() -> int:
    """Command line: ``make`` or ``compare``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    m = sub.add_parser("make")
    m.add_argument("work", type=Path)
    m.add_argument("--model", required=True)
    m.add_argument("--catalog", type=Path, required=True)
    m.add_argument("--image-dir", required=True)
    m.add_argument("--label", required=True)
    c = sub.add_parser("compare")
    c.add_argument("work", type=Path)
    c.add_argument("before")
    c.add_argument("after")
    args = parser.parse_args()
    if args.step == "make":
        make(args.work, args.model, args.catalog, args.image_dir, args.label)
        return 0
    diffs = compare(args.work, args.before, args.after)
    print(
        "\n".join(diffs)
        if diffs
        else "identical: predictions, samples, metrics, calibration, weights"
    )
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
