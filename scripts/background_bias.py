"""How far the border background estimate is from the truth under each galaxy, with and
without masking the border's sources: for simulated sets whose true residual sky is zero
(the `hsc` preset and its shifts), the estimated plane is all error.

    .venv/bin/python scripts/background_bias.py SET_DIR [SET_DIR ...] [--n 250]

Per set and method: the plane summed within twice the galaxy's true r_e (at least 1
arcsec) as a fraction of its true flux (median, rms, 95th percentile of its size), and the
plane's mean over the central 16 x 16 pixels in units of the sky sigma.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from gampen.data.background import BorderBackground

METHODS = {"clipped": BorderBackground(), "masked": BorderBackground(mask_sources=True)}


def errors(folder: Path, n: int, pixel_scale: float) -> dict[str, np.ndarray]:
    """Per method, (n, 2): the aperture error / flux and the central error / sky sigma."""
    table = Table.read(folder / "info.csv")[:n]
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in METHODS}
    for row in table:
        image = fits.getdata(folder / row["file_name"], 0).astype(np.float64)[None]
        side = image.shape[-1]
        y, x = np.mgrid[:side, :side] - (side - 1) / 2.0
        aperture = np.hypot(x, y) * pixel_scale < max(2.0 * row["r_e"], 1.0)
        middle = slice(side // 2 - 8, side // 2 + 8)
        for name, method in METHODS.items():
            plane = method.estimate(image)[0]
            in_aperture = plane[aperture].sum() / row["flux"]
            out[name].append((in_aperture, plane[middle, middle].mean() / row["sky_sigma"]))
    return {name: np.array(values) for name, values in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=250)
    parser.add_argument("--pixel-scale", type=float, default=0.168)
    args = parser.parse_args()
    print("| set | method | median | rms | 95th pct of abs | centre / sky sigma |")
    print("|---|---|---|---|---|---|")
    for folder in args.sets:
        for name, values in errors(folder, args.n, args.pixel_scale).items():
            flux, centre = values[:, 0], values[:, 1]
            print(
                f"| {folder} | {name} | {np.median(flux):+.4f} | {np.sqrt(np.mean(flux**2)):.4f}"
                f" | {np.quantile(np.abs(flux), 0.95):.4f} | {centre.mean():+.3f} |"
            )


if __name__ == "__main__":
    main()
