"""How a model's errors grow with the number of neighbours, and whether counting them in
the image could flag the crowded galaxies.

Reads finished robustness-battery rows (``scripts/robustness.py --out DIR``; the rows
``none`` and ``crowded`` by default) and prints, per true neighbour count, the unflagged
galaxies' median absolute fractional flux error and 68 % flux coverage. With ``--peaks``
it also counts each cutout's neighbour peaks: local maxima (5 x 5 pixels) beyond 2.5
arcsec of the centre of the border-background-free image smoothed by a 1.5-pixel
Gaussian, above 5 robust sigmas of the smoothed border; then, for each least count, the
share of each row it would flag and the flux error of the rest.

    python scripts/crowding.py BATTERY_DIR [--rows none crowded] [--peaks]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from robustness import error, with_truth
from scipy import ndimage

from gampen.data import background, neighbours
from gampen.data.background import BorderBackground

#: Peak search: smoothing (pixels) and significance (robust sigmas); the 5-pixel box and
#: the 2.5-arcsec separation are the bright-star check's (``gampen.data.neighbours``).
SMOOTH, SIGNIFICANCE = 1.5, 5.0


def load_row(folder: Path) -> Table:
    """A battery row's predictions with the truth beside them, unflagged galaxies only."""
    truth = Table.read(folder / "sims" / "info.csv", format="ascii.csv")
    table = with_truth(Table.read(folder / "predictions.parquet"), truth)
    count = dict(zip(truth["object_id"], truth["n_neighbours"], strict=True))
    table["n_neighbours"] = [count[o] for o in table["object_id"]]
    return table[np.asarray(table["flags"]) == 0]


def neighbour_peaks(path: Path, pixel_scale: float, width: int = 8) -> int:
    """Neighbour peaks of one cutout (the module docstring says how they are found): the
    bright-star check's peak search (:mod:`gampen.data.neighbours`) on an image smoothed
    more, kept above :data:`SIGNIFICANCE` robust sigmas of the smoothed border frame."""
    image = np.asarray(fits.getdata(path), dtype=np.float64)
    total = BorderBackground(width=width, recentre=True)(image.reshape(-1, *image.shape[-2:]))
    smoothed = ndimage.gaussian_filter(total.sum(axis=0).astype(np.float64), SMOOTH)
    edge = smoothed.ravel()[background._geometry(smoothed.shape[0], width)[1]]
    sigma = background.MAD_TO_SD * np.median(np.abs(edge - np.median(edge)))
    peaks = neighbours._peaks(smoothed, neighbours._radius(smoothed.shape[0], pixel_scale))
    return int(np.count_nonzero(peaks & (smoothed > SIGNIFICANCE * sigma)))


def by_count(table: Table) -> list[str]:
    """One line per true neighbour count: galaxies, flux error, 68 % flux coverage."""
    lines = []
    for count in np.unique(np.asarray(table["n_neighbours"])):
        rows = table[np.asarray(table["n_neighbours"]) == count]
        truth = rows["true_flux"]
        inside = (rows["flux_ci68_lo"] <= truth) & (truth <= rows["flux_ci68_hi"])
        lines.append(
            f"  {count} neighbours: {len(rows):4d} galaxies, flux error "
            f"{100 * error(rows, 'flux'):.2f} %, 68 % coverage {100 * np.mean(inside):.1f} %"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("battery", type=Path, help="a robustness battery's --out folder")
    parser.add_argument("--rows", nargs="+", default=["none", "crowded"])
    parser.add_argument("--peaks", action="store_true", help="also count neighbour peaks")
    parser.add_argument("--pixel-scale", type=float, default=0.168, help="arcsec per pixel")
    args = parser.parse_args()
    for row in args.rows:
        table = load_row(args.battery / row)
        print(f"{row}: {len(table)} unflagged, flux error {100 * error(table, 'flux'):.2f} %")
        print("\n".join(by_count(table)))
        if not args.peaks:
            continue
        sims = args.battery / row / "sims"
        files = [sims / str(name) for name in table["file_name"]]
        peaks = np.array([neighbour_peaks(f, args.pixel_scale) for f in files])
        for least in (4, 5, 6):
            kept = table[peaks < least]
            print(
                f"  flag {least}+ peaks: {100 * (1 - len(kept) / len(table)):.1f} % flagged, "
                f"flux error of the rest {100 * error(kept, 'flux'):.2f} %"
            )


if __name__ == "__main__":
    main()
