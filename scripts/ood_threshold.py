"""The distances of a catalog's galaxies under a calibrated bundle's stored OOD model, and
the threshold at a few quantiles of them: how the shipped bundle's threshold was refitted
(2026-12-07: the 99.7 % point of its 12,000 calibration galaxies, seed 23), without
touching the rest of its OOD model.

    .venv/bin/python scripts/ood_threshold.py BUNDLE CATALOG [--quantiles 0.995 0.997]

Prints, per quantile, the distance that share of the galaxies stays below, and the share
above the bundle's stored threshold.  Writes nothing.
"""

from __future__ import annotations

import argparse

import numpy as np

from gampen.calibration.workflow import standardised_samples
from gampen.infer.options import PredictOptions
from gampen.infer.predict import bundle_catalog
from gampen.model.bundle import load_bundle
from gampen.model.ood import OodModel


def main() -> None:
    """Print the quantiles of the catalog's OOD distances under the bundle's model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("catalog", help="in-distribution galaxies with true labels")
    parser.add_argument("--quantiles", type=float, nargs="+", default=[0.995, 0.997, 0.998])
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    if "ood" not in (bundle.calibration or {}):
        raise SystemExit(f"{args.bundle}: no OOD model (calibrate it first)")
    model = OodModel.from_dict(bundle.calibration["ood"])
    loaded = bundle_catalog(bundle, args.catalog, targets=bundle.param_names)
    *_, features = standardised_samples(bundle, loaded, PredictOptions(progress=False))
    distance = model.distance(features)
    print(
        f"{len(distance)} galaxies; stored threshold {model.threshold:.6g} flags "
        f"{np.mean(distance > model.threshold):.2%}"
    )
    for q in args.quantiles:
        print(f"quantile {q}: distance {float(np.quantile(distance, q)):.6g}")


if __name__ == "__main__":
    main()
