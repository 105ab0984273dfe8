"""gampen tutorial: simulate galaxies, predict their posteriors, judge them, crop them and
fine-tune the model, all from Python.

    python docs/tutorial.py [--out tutorial] [--n 300] [--passes 100] [--epochs 2]

The test suite runs it on a few galaxies with few passes (tests/test_tutorial.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.table import Table

import gampen
from gampen.infer.crop import crop
from gampen.models import default_model_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="tutorial", help="working folder")
    parser.add_argument("--n", type=int, default=300, help="galaxies to simulate")
    parser.add_argument("--passes", type=int, default=100, help="MC-dropout passes")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs")
    args = parser.parse_args(argv)
    out = Path(args.out)

    # 1. Simulate HSC-like galaxies with exact truth (info.csv) and FITS cutouts.
    truth_path = gampen.simulate(out / "sims", args.n, preset="hsc", seed=2024, progress=False)
    truth = Table.read(truth_path, format="ascii.csv")
    print(
        f"simulated {len(truth)} galaxies; {np.mean(truth['n_neighbours'] > 0):.0%} have neighbours"
    )

    # 2. Predict posteriors with the shipped model.  A Table works as well as a path; the
    #    result is an astropy Table with units, and the truth columns kept beside it.
    result = gampen.predict(
        truth,
        image_dir=str(truth_path.parent),
        n_passes=args.passes,
        n_samples=10 * args.passes,
        keep_columns=["mag", "n_neighbours"],
        progress=False,
    )
    inside = (truth["r_e"] >= result["r_e_ci68_lo"]) & (truth["r_e"] <= result["r_e_ci68_hi"])
    print(
        f"r_e: median {result['r_e_median'][0]:.3f} {result['r_e_median'].unit} for galaxy 0; "
        f"68 % intervals hold the truth for {inside.mean():.0%} of galaxies"
    )

    # 3. Judge them: coverage, PIT, accuracy and figures in out/report.
    result.write(out / "pred.ecsv", overwrite=True)
    metrics = gampen.evaluate(out / "pred.ecsv", truth_path, out=out / "report", progress=False)
    flux_mdafe = metrics["accuracy"]["flux"]["median"]["median_abs_fractional_error"]
    print(f"flux median absolute fractional error: {flux_mdafe:.3f}; report in {out / 'report'}")

    # 4. What the spatial transformer crops, as FITS with a matching WCS.
    crops = crop(truth_path, out=out / "crops", overwrite=True, progress=False)
    print(f"crops written; median STN zoom {np.nanmedian(crops['stn_zoom']):.2f}")

    # 5. Fine-tune the shipped model's head on these galaxies (real labelled galaxies in
    #    practice), keeping its spatial transformer and trunk fixed.
    bundle = gampen.train(
        truth_path,
        out / "finetuned",
        init_from=str(default_model_path()),
        freeze=["stn", "backbone"],
        epochs=args.epochs,
        batch_size=16,
        val_fraction=0.2,
        test_fraction=0.0,
        progress=False,
        logger=["csv"],
    )
    print(
        f"fine-tuned model: {bundle} ({gampen.load_model(bundle).metrics['epochs_trained']} epochs)"
    )


if __name__ == "__main__":
    main()
