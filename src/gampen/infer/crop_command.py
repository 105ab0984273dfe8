"""``gampen crop``: the STN's crop of every galaxy as FITS, with the WCS moved to match."""

from __future__ import annotations

import argparse

from gampen.cli import add_cutout_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``gampen crop``."""
    p = subparsers.add_parser(
        "crop",
        help="write each galaxy's spatial-transformer crop as FITS with a matching WCS",
        description="Writes OUT/<object_id>.fits: the cutout as the model's spatial "
        "transformer crops it (linear pixels, flux conserved), with the WCS updated for the "
        "zoom so every pixel keeps its sky position, and the zoom in the header (GAMZOOM); "
        "OUT/crops.ecsv lists every galaxy's crop file, zoom and flags. Cutouts without a "
        "WCS give crops without one (with a warning).",
    )
    add_cutout_arguments(p, out_help="folder for the crops and crops.ecsv")
    p.add_argument("--overwrite", action="store_true", help="replace an existing crops.ecsv")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Crop every galaxy and say where the crops went."""
    from gampen.infer.crop import CROP_CATALOG, crop

    table = crop(
        args.catalog,
        out=args.out,
        model=args.model,
        image_dir=args.image_dir,
        hdu=args.hdu,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    written = int((table["file_name"] != "").sum())
    print(f"wrote {written} crops and {CROP_CATALOG} to {args.out}")
    return 0
