"""Galaxies beside bright stars: a copy of a simulated set with a star added to every cutout
(the figures of gampen.data.neighbours and docs/inputs.md, "Bright neighbours").

    .venv/bin/python scripts/bright_stars.py SET OUT [--mag 15 19] [--distance 3 7]
        [--seed 8]
    gampen predict OUT/info.csv --out OUT.parquet
    gampen evaluate OUT.parquet --truth OUT/info.csv --out OUT-report

Per cutout of ``SET`` (a ``gampen simulate`` folder): a Moffat (beta 3) star of the
row's ``psf_fwhm``, magnitude uniform in ``--mag``, at a distance uniform in
``--distance`` arcsec and a uniform angle from the centre, drawn with GalSim and added to
the pixels (no noise of its own: a bright star's photon noise is not the point here).
The truth catalog gains ``star_mag``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import galsim
import numpy as np
from altered_set import alter_set
from astropy.io import fits
from astropy.table import Row

from gampen.data.catalog import write_table


def star_image(
    shape: tuple[int, int], scale: float, fwhm: float, flux: float, dx: float, dy: float
) -> np.ndarray:
    """A Moffat star of ``flux`` at (``dx``, ``dy``) pixels from the image's centre."""
    star = galsim.Moffat(beta=3.0, fwhm=fwhm, flux=flux)
    return star.drawImage(nx=shape[1], ny=shape[0], scale=scale, offset=(dx, dy)).array


def star_change(
    seed: int, mag: tuple[float, float], distance: tuple[float, float], mags: list[float]
) -> Callable[[fits.HDUList, Row], None]:
    """The change :func:`altered_set.alter_set` makes to each cutout: a star of magnitude
    uniform in ``mag`` at ``distance`` arcsec (uniform) and a uniform angle, each star's
    magnitude appended to ``mags`` (the draws in catalog order from ``seed``)."""
    rng = np.random.default_rng(seed)

    def change(hdus: fits.HDUList, row: Row) -> None:
        header = hdus[0].header
        scale, zero_point = float(header["PIXSCALE"]), float(header["MAGZP"])
        star_mag, away = rng.uniform(*mag), rng.uniform(*distance) / scale
        angle = rng.uniform(0.0, 2.0 * np.pi)
        flux = 10 ** (-0.4 * (star_mag - zero_point))
        offset = (away * np.cos(angle), away * np.sin(angle))
        star = star_image(hdus[0].data.shape, scale, float(row["psf_fwhm"]), flux, *offset)
        hdus[0].data = (hdus[0].data + star).astype(np.float32)
        mags.append(star_mag)

    return change


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", type=Path, help="a gampen simulate folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--mag", type=float, nargs=2, default=[15.0, 19.0])
    parser.add_argument("--distance", type=float, nargs=2, default=[3.0, 7.0], help="arcsec")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    mags: list[float] = []
    change = star_change(args.seed, tuple(args.mag), tuple(args.distance), mags)
    catalog = alter_set(args.set, args.out, change, "with a bright star")
    catalog["star_mag"] = mags
    write_table(catalog, args.out / "info.csv")


if __name__ == "__main__":
    main()
