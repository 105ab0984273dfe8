#!/usr/bin/env python
"""Print the coverage of a prediction table's credible intervals against known truth.

    python scripts/coverage.py PREDICTIONS TRUTH_CATALOG [--params bt,r_e,flux]

PREDICTIONS is the output of ``gampen predict``; TRUTH_CATALOG any catalog with
``object_id`` and the true parameter columns (e.g. the ``info.csv`` of ``gampen simulate``).
"""

from __future__ import annotations

import argparse

from gampen.data.catalog import read_catalog
from gampen.evaluate.coverage import format_coverage, interval_coverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions")
    parser.add_argument("truth")
    parser.add_argument("--params", default="bt,r_e,flux")
    args = parser.parse_args()
    coverage = interval_coverage(
        read_catalog(args.predictions), read_catalog(args.truth), args.params.split(",")
    )
    print(format_coverage(coverage))


if __name__ == "__main__":
    main()
