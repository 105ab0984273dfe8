"""``gampen predict``: posterior summaries (and samples) for a catalog or folder of cutouts."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from gampen.cli import add_cutout_arguments, count_or_auto


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``gampen predict``."""
    p = subparsers.add_parser(
        "predict",
        help="estimate posteriors of bt, r_e and flux for every galaxy of a catalog",
        description="Monte Carlo dropout posteriors for every galaxy of CATALOG (or every FITS "
        "file of a folder). Writes mean, median, mode, std and 68.27/95.45/99.73 % intervals "
        "per parameter (and mag), the STN zoom and quality flags. Interrupted runs resume "
        "when rerun with the same command.",
    )
    add_cutout_arguments(p, out_help="output table: .fits, .parquet, .csv or .ecsv")
    p.add_argument(
        "--n-passes",
        type=int,
        default=100,
        help="MC-dropout forward passes per galaxy (default 100)",
    )
    p.add_argument(
        "--n-samples",
        type=int,
        default=1000,
        help="posterior samples per galaxy, drawn across the passes (default 1000)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="galaxies per forward batch")
    p.add_argument(
        "--chunk-size", type=int, default=512, help="galaxies per resumable chunk (default 512)"
    )
    p.add_argument("--samples-out", help="also write every sample to this HDF5 file")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--num-workers",
        type=int,
        default=2,
        help="cutout-reading processes (default 2: reading, background and PSF features "
        "keep one busy)",
    )
    p.add_argument(
        "--devices", type=count_or_auto, default=1, help="devices per node (int or 'auto')"
    )
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp")
    p.add_argument("--accelerator", default="auto", help="cpu, gpu or auto")
    p.add_argument(
        "--keep-columns",
        type=column_list,
        default=(),
        metavar="COLS",
        help="catalog columns to copy into the output, comma-separated, or 'all' (every "
        "column whose name is not one of gampen's own); columns named ra and dec are "
        "always copied, with their units",
    )
    p.add_argument(
        "--conditions",
        type=condition_map,
        default={},
        metavar="NAME=COLUMN[,...]",
        help="where the model's conditions are, when not under their own names: e.g. "
        "psf_fwhm=SEEING takes the PSF FWHM from the catalog column SEEING (or, without "
        "such a column, from each cutout's SEEING header keyword); a column's astropy "
        "unit (arcsec, mas, pix ...) is converted",
    )
    p.add_argument(
        "--psf-fwhm-error",
        type=number_or_column,
        default=0.0,
        metavar="SIGMA|COLUMN",
        help="how wrong the PSF model's sizes may be: the rms of ln(true / reported FWHM), "
        "e.g. 0.05 for 5 %%, or the catalog column holding each galaxy's (copied to the "
        "output). Each posterior is then marginalised over PSFs that much wider or "
        "narrower, and widens where the PSF matters (default 0: the PSF is exact)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace --out and --samples-out if they exist"
    )
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=run)


def number_or_column(text: str) -> float | str:
    """A number, or else the name of a catalog column."""
    try:
        return float(text)
    except ValueError:
        return text


def column_list(text: str) -> tuple[str, ...] | str:
    """``"all"``, or comma-separated column names as a tuple."""
    if text.strip() == "all":
        return "all"
    return tuple(name.strip() for name in text.split(",") if name.strip())


def condition_map(text: str) -> dict[str, str]:
    """``"psf_fwhm=SEEING,other=COL"`` as ``{"psf_fwhm": "SEEING", "other": "COL"}``."""
    pairs = [item.strip() for item in text.split(",") if item.strip()]
    mapping = {}
    for pair in pairs:
        name, _, column = pair.partition("=")
        if not name.strip() or not column.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=COLUMN, got {pair!r}")
        mapping[name.strip()] = column.strip()
    return mapping


def run(args: argparse.Namespace) -> int:
    """Predict and report where the results went; exit status 1 when every galaxy was
    flagged fatal (nothing was estimated)."""
    import numpy as np

    from gampen.flags import is_fatal, summarise
    from gampen.infer.options import PredictOptions
    from gampen.infer.predict import predict

    fields = [f.name for f in dataclasses.fields(PredictOptions)]
    options = PredictOptions(**{name: getattr(args, name) for name in fields})
    table = predict(args.catalog, out=args.out, model=args.model, options=options)
    if table is None:
        return 0
    flags = np.asarray(table["flags"])
    if len(table) and is_fatal(flags).all():
        counts = ", ".join(f"{name} {n}" for name, n in summarise(flags).items())
        print(
            f"gampen predict: error: every one of the {len(table)} galaxies was flagged fatal "
            f"({counts}); nothing was estimated (the reasons are logged above; "
            f"{args.out} lists the flags)",
            file=sys.stderr,
        )
        return 1
    print(
        f"wrote posteriors of {len(table)} galaxies to {args.out}"
        + (f" and samples to {args.samples_out}" if args.samples_out else "")
    )
    return 0
