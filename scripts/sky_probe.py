"""Does a sky that is not a plane across the cutout move the posteriors?  The border plane
removes a pedestal and a linear gradient exactly; a star's halo or scattered light curves
across 16 arcsec.  This probe injects the same simulated galaxies (``gampen simulate
--backgrounds``) into two sets of sky files made here: white noise alone, and the same
noise plus a broad Gaussian bump (sigma 40-80 pixels, peak +-BUMP sky sigma, centred
anywhere within 100 pixels of the file's centre), and reports what a model makes of each.

    .venv/bin/python scripts/sky_probe.py [--model BUNDLE] [--n 600] [--seed 4343]
        [--bump 1.0] [--out sky-probe/]

The rows use scripts/robustness.py's summary (coverage of the table's intervals among
unflagged galaxies; bt MAE, r_e and flux median absolute fractional errors).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from robustness import predicted, summary, table

import gampen

#: Sky files: their side (pixels), how many, and the white noise (ADU) of hsc-like depth.
SIDE, FILES, SIGMA = 320, 40, 0.07


def write_skies(folder: Path, bump: float, seed: int) -> Path:
    """``FILES`` sky files of white noise (the same noise in both sets), plus, when
    ``bump`` is not 0, a Gaussian bump of peak +-``bump`` sigma in each."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIDE, :SIDE].astype(float)
    for i in range(FILES):
        noise = rng.normal(0.0, SIGMA, (SIDE, SIDE))
        width = rng.uniform(40.0, 80.0)
        cy, cx = SIDE / 2 + rng.uniform(-100.0, 100.0, 2)
        peak = bump * SIGMA * rng.choice([-1.0, 1.0])
        sky = noise + peak * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * width**2))
        header = fits.Header({"PIXSCALE": 0.168})
        fits.PrimaryHDU(sky.astype(np.float32), header).writeto(
            folder / f"sky{i:03d}.fits", overwrite=True
        )
    return folder


def run(name: str, skies: Path, args: argparse.Namespace) -> Table:
    """Simulate the galaxies into ``skies`` (resumable) and predict them."""
    folder = args.out / name
    catalog = gampen.simulate(
        folder / "sims",
        args.n,
        preset="hsc",
        seed=args.seed,
        backgrounds=skies,
        workers=2,
        progress=False,
    )
    return predicted(catalog, folder / "predictions.parquet", args.model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model bundle (default: the shipped one)")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=4343)
    parser.add_argument("--bump", type=float, default=1.0, help="peak, in sky sigma")
    parser.add_argument("--out", type=Path, default=Path("sky-probe"))
    args = parser.parse_args()
    flat = write_skies(args.out / "skies-flat", 0.0, args.seed)
    bumpy = write_skies(args.out / "skies-bump", args.bump, args.seed)
    rows = {"flat": summary(run("flat", flat, args)), "bump": summary(run("bump", bumpy, args))}
    labels = {"flat": "white-noise sky", "bump": f"the same plus a bump of +-{args.bump:g} sigma"}
    text = table(rows, labels)
    (args.out / "sky-probe.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
