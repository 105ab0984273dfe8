"""Cutouts at a survey's edge: a copy of a simulated set with a strip of each cutout holding
no data (the figures of docs/inputs.md, "Pixels without data").

    .venv/bin/python scripts/survey_edge.py SET OUT [--fill zero|nan] [--pedestal 0.5]
        [--width 10 30] [--seed 6]
    gampen predict OUT/info.csv --out OUT.parquet
    gampen evaluate OUT.parquet --truth SET/info.csv --out OUT-report

Per cutout of ``SET`` (a ``gampen simulate`` folder): optionally a residual sky pedestal,
uniform in +-``pedestal`` times the cutout's ``sky_sigma``, is added, then a strip of
``width`` pixels (uniform in the range) along a random side is set to ``fill``: zeros,
as some pipelines leave pixels without data, or NaN.  The truth catalog is copied as it
is; the galaxies are the same.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from altered_set import alter_set
from astropy.io import fits
from astropy.table import Row


def damaged(image: np.ndarray, width: int, side: int, fill: float, pedestal: float) -> np.ndarray:
    """``image`` plus ``pedestal``, its first ``width`` columns after ``side`` quarter
    turns set to ``fill`` (the image is turned back)."""
    turned = np.rot90(image.astype(np.float32) + np.float32(pedestal), side).copy()
    turned[:, :width] = fill
    return np.rot90(turned, -side).copy()


def edge_change(
    seed: int, fill: float, pedestal: float, width: tuple[int, int]
) -> Callable[[fits.HDUList, Row], None]:
    """The change :func:`altered_set.alter_set` makes to each cutout: a pedestal uniform
    in +-``pedestal`` sky sigmas, then a strip of ``width`` pixels on a random side set to
    ``fill`` (the draws in catalog order from ``seed``)."""
    rng = np.random.default_rng(seed)

    def change(hdus: fits.HDUList, row: Row) -> None:
        level = rng.uniform(-pedestal, pedestal) * row["sky_sigma"]
        strip = int(rng.integers(width[0], width[1]))
        side = int(rng.integers(4))
        hdus[0].data = damaged(hdus[0].data, strip, side, fill, level)

    return change


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", type=Path, help="a gampen simulate folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--fill", choices=["zero", "nan"], default="zero")
    parser.add_argument("--pedestal", type=float, default=0.0, help="in sky sigmas (+-)")
    parser.add_argument("--width", type=int, nargs=2, default=[10, 30], metavar=("MIN", "MAX"))
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    fill = 0.0 if args.fill == "zero" else np.nan
    change = edge_change(args.seed, fill, args.pedestal, tuple(args.width))
    alter_set(args.set, args.out, change, "at a survey's edge")


if __name__ == "__main__":
    main()
