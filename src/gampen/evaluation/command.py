"""``gampen evaluate``: calibration and accuracy of predicted posteriors against known truth."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``gampen evaluate``."""
    p = subparsers.add_parser(
        "evaluate",
        help="judge predicted posteriors against known truth: coverage, accuracy, figures",
        description="Compare the posteriors of PREDICTIONS (the table 'gampen predict' writes) "
        "with the true parameters of CATALOG, matched by object_id: marginal, conditional "
        "and joint coverage, PIT histograms, accuracy of the median and mode, and, with the "
        "model, what the network sees (--show) and rotation stability (--rotation). Writes "
        "REPORT_DIR/metrics.json, PNG figures and REPORT_DIR/report.md.",
    )
    p.add_argument(
        "predictions", metavar="PREDICTIONS", help="predictions table (.fits/.parquet/.csv/.ecsv)"
    )
    p.add_argument(
        "--truth",
        required=True,
        metavar="CATALOG",
        help="catalog with object_id and the true parameters",
    )
    p.add_argument(
        "--samples",
        metavar="SAMPLES.h5",
        help="samples file of the same run (gampen predict --samples-out)",
    )
    p.add_argument(
        "--out", required=True, metavar="REPORT_DIR", help="report folder (created if missing)"
    )
    p.add_argument(
        "--model",
        metavar="BUNDLE",
        help="the model bundle that made PREDICTIONS: CATALOG is refused if it holds the "
        "model's training galaxies, and the joint tests use its B/T logit epsilon "
        "(without --model: 0.001); also runs --show/--rotation (default: the shipped model)",
    )
    p.add_argument(
        "--allow-training-galaxies",
        action="store_true",
        help="with --model: evaluate even a CATALOG of the model's training galaxies (the "
        "overlap is recorded in metrics.json and report.md)",
    )
    p.add_argument(
        "--show",
        type=int,
        default=0,
        metavar="N",
        help="draw N galaxies' cutouts, STN windows and corner plots (default 0)",
    )
    p.add_argument(
        "--rotation",
        action="store_true",
        help="predict galaxies at the 8 dihedral orientations and report the mode spread",
    )
    p.add_argument(
        "--rotation-galaxies",
        type=int,
        metavar="N",
        default=200,
        help="galaxies in the rotation test (default 200)",
    )
    p.add_argument(
        "--image-dir", metavar="DIR", help="folder file_name is relative to (default as predict)"
    )
    p.add_argument(
        "--n-passes",
        type=int,
        metavar="N",
        default=50,
        help="MC passes for model runs (default 50)",
    )
    p.add_argument(
        "--n-samples",
        type=int,
        metavar="N",
        default=500,
        help="samples for model runs (default 500)",
    )
    p.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="COLUMN",
        help="also judge coverage in quartiles of this column of CATALOG, e.g. "
        "noise_correlation or sky_sigma (a column of names, e.g. psf_model: one bin per "
        "name); repeatable",
    )
    p.add_argument("--seed", type=int, metavar="N", default=0, help="seed of every random choice")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the report and print the headline coverage table."""
    from pathlib import Path

    from gampen.evaluation.options import EvaluateOptions
    from gampen.evaluation.pipeline import evaluate
    from gampen.evaluation.report import coverage_section, json_ready

    options = EvaluateOptions(
        model=args.model,
        allow_training_galaxies=args.allow_training_galaxies,
        image_dir=args.image_dir,
        show=args.show,
        rotation=args.rotation,
        rotation_galaxies=args.rotation_galaxies,
        n_passes=args.n_passes,
        n_samples=args.n_samples,
        seed=args.seed,
        progress=args.progress,
        by=args.by,
    )
    metrics = evaluate(
        args.predictions, args.truth, out=args.out, samples=args.samples, options=options
    )
    print(coverage_section(json_ready(metrics)))
    out = Path(args.out)
    print(
        f"\nreport: {out / 'report.md'}; metrics: {out / 'metrics.json'}; "
        f"{len(metrics['figures'])} figures"
    )
    return 0
