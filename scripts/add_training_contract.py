"""Give a bundle made before bundle format 2 the input contract and training marks that
``gampen train`` now records, from the catalog it was trained on.

    .venv/bin/python scripts/add_training_contract.py BUNDLE --catalog TRAIN_CATALOG

The catalog must be the training file itself: its SHA-256 is checked against the
bundle's ``provenance.data_sha256``.  Ranges are taken over all its rows (training and
validation: the split file of an old run may be gone); the weights are not touched.
The shipped ``hsc-compact`` was upgraded this way from its training set, which
``gampen simulate --preset hsc --n 24000 --seed 3`` rebuilds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gampen.checksum import file_sha256
from gampen.data.catalog import load_catalog
from gampen.data.contract import DEFAULT_CONDITION_UNITS, InputContract, training_ranges
from gampen.data.provenance import training_marks
from gampen.model.bundle import FORMAT_VERSION, METADATA_NAME, load_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="bundle directory to upgrade in place")
    parser.add_argument("--catalog", required=True, type=Path, help="its training catalog")
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    expected = bundle.provenance.get("data_sha256")
    if expected and file_sha256(args.catalog) != expected:
        raise SystemExit(f"{args.catalog} is not the catalog {args.bundle} was trained on")
    conditions = bundle.preprocessing.get("scalars", {}).get("conditions", [])
    catalog = load_catalog(args.catalog, images=False, targets=[*bundle.param_names, *conditions])
    if catalog.labels is None:
        raise SystemExit(f"{args.catalog} lacks a column of {bundle.param_names + conditions}")
    k = len(bundle.param_names)
    labels = catalog.labels[:, :k]
    ranges = training_ranges(
        bundle.param_names,
        labels,
        bundle.zero_point,
        {name: catalog.labels[:, k + j] for j, name in enumerate(conditions)},
    )
    contract = InputContract(
        pixel_scale=bundle.pixel_scale,
        zero_point=bundle.zero_point,
        input_size=bundle.input_size,
        condition_units={name: DEFAULT_CONDITION_UNITS.get(name, "") for name in conditions},
        ranges=ranges,
    )
    path = args.bundle / METADATA_NAME
    metadata = json.loads(path.read_text())
    metadata["format_version"] = FORMAT_VERSION
    metadata["contract"] = contract.to_dict()
    metadata["provenance"].update(training_marks(labels, catalog.given_ids, args.catalog))
    path.write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")
    upgraded = load_bundle(args.bundle)  # validates the result
    print(f"{args.bundle}: format {upgraded.format_version}, trained on", contract.ranges)


if __name__ == "__main__":
    main()
