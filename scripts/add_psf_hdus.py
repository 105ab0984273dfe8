"""Give the cutouts of a set simulated before cutouts had a ``PSF`` HDU the one that
``gampen simulate`` now writes: the galaxy's PSF as a PSF model reports it.

    .venv/bin/python scripts/add_psf_hdus.py SET/info.csv [--preset-from SET/simulate.json]
                                             [--image-dir PSF_IMAGES]

Each galaxy's PSF comes from its row of the truth catalog (``psf_fwhm``, and for a set
with nuisances ``psf_fwhm_true``, ``psf_model``, ``psf_beta``, ``psf_g1``, ``psf_g2``,
``psf_file``) and the set's configuration (``simulate.json`` beside the catalog unless
``--preset-from`` names another, or a preset); it is drawn by the simulator's own code
(``gampen.simulation.cutout.add_psf_hdu``), so the HDU is byte for byte the one a fresh
run writes.  ``--image-dir`` is the folder of the survey PSF images (``psf.images``) when
it is no longer where the configuration says.

Each cutout is rewritten atomically, its image HDU unchanged; cutouts that already have a
``PSF`` HDU are skipped, so an interrupted run is finished by running it again.  Cutouts
in a symlinked folder shared by several sets are updated in place, for all of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
from astropy.table import Table
from tqdm import tqdm

from gampen.simulation.config import SimulationConfig
from gampen.simulation.cutout import add_psf_hdu
from gampen.simulation.presets import load_config, preset_names
from gampen.simulation.truth import psf_galaxy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("catalog", type=Path, help="the set's truth catalog (info.csv)")
    parser.add_argument(
        "--preset-from",
        help="the set's simulate.json (default: the one beside the catalog), or a preset name",
    )
    parser.add_argument(
        "--image-dir", type=Path, help="folder of the survey PSF images (psf.images)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    config = set_config(args.catalog, args.preset_from, args.image_dir)
    csv = args.catalog.suffix.lower() == ".csv"
    table = Table.read(args.catalog, format="ascii.csv") if csv else Table.read(args.catalog)
    images = "psf_file" in table.colnames and any(_named(v) for v in table["psf_file"])
    if images and not config.psf.images:
        raise SystemExit("the set was drawn with survey PSF images: give --image-dir")
    added = 0
    bar = tqdm(table, desc="PSF HDUs", unit="gal", disable=args.no_progress)
    for row in bar:
        galaxy = psf_galaxy(row, config)
        added += add_psf_hdu(args.catalog.parent / row["file_name"], galaxy, config)
    print(f"{added} cutouts given a PSF HDU, {len(table) - added} already had one")


def set_config(catalog: Path, preset_from: str | None, image_dir: Path | None) -> SimulationConfig:
    """The configuration the set was simulated with (``psf.images`` replaced by
    ``image_dir`` when given)."""
    source = preset_from or str(catalog.parent / "simulate.json")
    if Path(source).is_file():
        stored = json.loads(Path(source).read_text())
        config = SimulationConfig.from_mapping(stored.get("config", stored))
    elif source in preset_names():
        config = load_config(source)
    else:
        raise SystemExit(f"--preset-from: {source} is neither a simulate.json nor a preset")
    if image_dir is not None:
        if not config.psf.images:
            raise SystemExit("--image-dir: the set was not drawn with survey PSF images")
        if not image_dir.is_dir():
            raise SystemExit(f"--image-dir: {image_dir} is not a folder")
        psf = dataclasses.replace(config.psf, images=str(image_dir))
        config = dataclasses.replace(config, psf=psf)
    return config


def _named(value: object) -> bool:
    """True for a catalog cell holding a file name (not masked, not empty)."""
    return not (np.ma.is_masked(value) or str(value) == "")


if __name__ == "__main__":
    main()
