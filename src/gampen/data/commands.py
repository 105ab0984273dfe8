"""Command-line sub-commands of the data layer: ``gampen pack`` and ``gampen selfcheck``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``pack`` and ``selfcheck``."""
    pack = subparsers.add_parser(
        "pack",
        help="pack a catalog's cutouts and labels into one HDF5 file for training",
        description="Read every cutout named in CATALOG (centre-cropped to --size) and write "
        "them, with every numeric catalog column, into one HDF5 file the training reads "
        "directly. Bad cutouts are kept as flagged zero images.",
    )
    pack.add_argument("catalog", help="catalog file (.csv, .ecsv, .fits, .parquet)")
    pack.add_argument("--out", required=True, help="output pack, e.g. train.h5")
    pack.add_argument(
        "--image-dir",
        help="folder file_name is relative to (default: the "
        "catalog's folder, else its cutouts/ sub-folder)",
    )
    pack.add_argument("--size", type=int, default=96, help="cutout size in pixels (default 96)")
    pack.add_argument(
        "--bands",
        help="comma-separated band names (file_name_<band> columns or the planes of a cube)",
    )
    pack.add_argument("--hdu", help="name or index of the FITS HDU holding the image")
    pack.set_defaults(func=_pack)

    check = subparsers.add_parser(
        "selfcheck",
        help="check the data layer on example cutouts it makes itself",
        description="Write a few example cutouts (good, cropped, NaN, blank, too small, "
        "missing, truncated), read them back through the dataset and a pack, and report.",
    )
    check.add_argument("--out", default="selfcheck", help="folder for the examples")
    check.set_defaults(func=_selfcheck)


def _pack(args: argparse.Namespace) -> int:
    from gampen.data.catalog import load_catalog
    from gampen.data.packfile import write_pack

    bands = args.bands.split(",") if args.bands else None
    catalog = load_catalog(args.catalog, image_dir=args.image_dir, bands=bands, keep_columns="all")
    counts = write_pack(catalog, args.out, input_size=args.size, bands=bands, hdu=args.hdu)
    print(f"wrote {len(catalog)} galaxies to {args.out}; flags: {counts or 'none'}")
    return 0


def _selfcheck(args: argparse.Namespace) -> int:
    from gampen.data.selfcheck import run_selfcheck

    return 0 if run_selfcheck(Path(args.out)) else 1
