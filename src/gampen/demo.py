"""``gampen demo``: the built-in default job, end to end, on galaxies it simulates itself.

Simulates a small HSC-like set (``gampen simulate --preset hsc``, the images the shipped
default's intervals are calibrated on; ``--preset hsc-real`` adds the nuisances of real
coadds, where they are narrower than nominal), predicts
posteriors with the shipped default model, prints the coverage of the credible intervals and
writes a figure of predicted against true values with their 68 % intervals — what a newcomer
wants to see first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.table import Table, join

#: The three panels: catalog column, axis label, logarithmic axes.
PANELS = (("bt", "B/T", False), ("r_e", "r_e [arcsec]", True), ("mag", "magnitude", False))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``gampen demo``."""
    p = subparsers.add_parser(
        "demo",
        help="simulate HSC-like galaxies, predict them with the default model, report",
        description="Simulate N HSC-like galaxies, predict their posteriors with the model "
        "shipped with gampen (or --model), print the coverage of the 68/95/99.7 % intervals "
        "and write DIR/demo.png (predicted vs true).",
    )
    p.add_argument(
        "--out", default="gampen-demo", help="folder for everything (default gampen-demo)"
    )
    p.add_argument("--n", type=int, default=200, help="galaxies to simulate (default 200)")
    p.add_argument("--model", help="model bundle (default: the shipped one)")
    p.add_argument("--seed", type=int, default=12345, help="simulation seed")
    p.add_argument(
        "--preset",
        default="hsc",
        help="simulation preset (default hsc: the clean images the shipped model's intervals "
        "are calibrated on; hsc-real adds the nuisances of real coadds)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate, predict, report."""
    from gampen.evaluation.marginal import format_coverage, interval_coverage
    from gampen.infer.options import PredictOptions
    from gampen.infer.predict import predict
    from gampen.simulation import load_config, simulate
    from gampen.simulation.command import default_workers

    folder = Path(args.out)
    summary = simulate(
        load_config(args.preset, None),
        folder / "sims",
        n=args.n,
        seed=args.seed,
        workers=min(2, default_workers()),
    )
    truth = Table.read(summary.catalog)
    predictions = predict(
        summary.catalog,
        out=folder / "predictions.fits",
        model=args.model,
        options=PredictOptions(overwrite=True),
    )
    print(
        f"\nposteriors of {len(predictions)} {args.preset} galaxies in "
        f"{folder / 'predictions.fits'}"
    )
    print("coverage of the credible intervals (calibrated: equal to the nominal level):")
    print(format_coverage(interval_coverage(predictions, truth)))
    figure = plot_predicted_vs_true(predictions, truth, folder / "demo.png")
    print(f"figure: {figure}")
    return 0


def plot_predicted_vs_true(predictions: Table, truth: Table, path: Path) -> Path:
    """Median and 68 % interval against the truth for bt, r_e and magnitude."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matched = join(
        predictions,
        truth[["object_id", "bt", "r_e", "mag"]],
        keys="object_id",
        table_names=["pred", "true"],
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    for ax, (name, label, log) in zip(axes, PANELS, strict=True):
        true = np.asarray(
            matched[f"{name}_true"] if f"{name}_true" in matched.colnames else matched[name]
        )
        median = np.asarray(matched[f"{name}_median"])
        errors = [
            median - np.asarray(matched[f"{name}_ci68_lo"]),
            np.asarray(matched[f"{name}_ci68_hi"]) - median,
        ]
        ax.errorbar(true, median, yerr=errors, fmt="o", ms=3, alpha=0.6, elinewidth=0.8)
        lo, hi = np.nanmin(true), np.nanmax(true)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(f"true {label}")
        ax.set_ylabel(f"predicted {label} (median, 68 %)")
    fig.suptitle(f"gampen demo: {len(matched)} simulated HSC-like galaxies")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
