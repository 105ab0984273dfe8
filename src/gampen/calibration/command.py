"""``gampen calibrate``: fit the recalibration of a bundle's posteriors on held-out galaxies.

The calibration catalog (with true ``bt``, ``r_e``, ``flux``) is split at random, by
``--seed``, into a fitting part and a checking part.  The spread factors
(:mod:`gampen.calibration.fit`) are fitted on the first, refitted on ``--bootstrap``
resamples of it for the spread of every number, coverage before and after is measured on
the second, printed, and stored with the factors and their spreads in the new bundle's
``calibration`` field, which ``gampen predict`` applies.  The bundle's own calibration,
if any, is ignored while fitting: the fit always starts from the network's raw mixture.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gampen.checks import refuse_existing, refuse_inputs_as_outputs

#: Bootstrap refits by default: 20 measure a spread to +-16 % (1 / sqrt(2 x 19)), enough to
#: tell a number pinned to a few per cent from one that is not, for 20 refits' time (about
#: 10 s each for 6,000 galaxies on two CPU cores).  Here, not in the workflow module, so
#: that ``gampen --help`` imports nothing heavy.
BOOTSTRAP = 20


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``gampen calibrate``."""
    p = subparsers.add_parser(
        "calibrate",
        help="recalibrate a model's posteriors on held-out galaxies with known truth",
        description="Fit spread factors per parameter, and a shrink of the correlations, so "
        "that the MC-dropout posteriors' credible intervals and joint regions hold the truth "
        "as often as they claim, on galaxies the model never trained on (CATALOG needs the "
        "true parameter columns). Crowded galaxies, or those below the median predicted value "
        "of one parameter (small, faint, disk-like), get core factors of their own only "
        "where held-out halves of the fitting part show it helps. Coverage before and "
        "after is measured on a part of CATALOG not used for the fit, printed with the "
        "bootstrap spread of every fitted number, and stored in the new bundle, which "
        "'gampen predict' then applies.",
    )
    p.add_argument("bundle", help="model bundle to calibrate (directory or .zip)")
    p.add_argument("--catalog", required=True, help="held-out catalog with true labels")
    p.add_argument("--out", required=True, help="calibrated bundle to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument(
        "--force",
        action="store_true",
        help="write the calibration even when it makes the check part's coverage worse "
        "than no calibration at all",
    )
    p.add_argument(
        "--check-fraction",
        type=float,
        default=0.5,
        help="share of CATALOG kept out of the fit to check it (default 0.5)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=BOOTSTRAP,
        metavar="N",
        help="refit on N resamples of the fitting part and report the spread of every "
        f"fitted number and of the checked coverage (default {BOOTSTRAP}; 0: skip)",
    )
    p.add_argument(
        "--allow-training-galaxies",
        action="store_true",
        help="calibrate even on a CATALOG holding the model's training galaxies (refused "
        "otherwise; the overlap is recorded in the bundle's calibration.fit)",
    )
    p.add_argument("--image-dir", help="folder file_name is relative to")
    p.add_argument("--hdu", help="FITS HDU holding the image (name or index)")
    p.add_argument("--n-passes", type=int, default=100, help="MC passes (default 100)")
    p.add_argument("--n-samples", type=int, default=1000, help="samples (default 1000)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--num-workers", type=int, default=2, help="cutout-reading processes (default 2)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the sampling")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Sample the catalog, fit, check, and write the calibrated bundle."""
    from gampen.calibration.workflow import calibrate, write_calibrated
    from gampen.infer.options import PredictOptions

    out = Path(args.out)
    refuse_inputs_as_outputs([out], [args.catalog])
    refuse_existing([out], overwrite=args.overwrite)
    fields = ("n_passes", "n_samples", "batch_size", "num_workers", "seed", "image_dir", "hdu")
    options = PredictOptions(
        **{name: getattr(args, name) for name in fields}, progress=args.progress
    )
    result = calibrate(
        args.bundle,
        args.catalog,
        options=options,
        check_fraction=args.check_fraction,
        bootstrap=args.bootstrap,
        allow_training_galaxies=args.allow_training_galaxies,
    )
    print(result.table())
    write_calibrated(result, out, force=args.force)
    print(f"calibrated bundle written to {out}")
    return 0
