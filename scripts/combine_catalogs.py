"""Combine catalogs of cutouts (e.g. two ``gampen simulate`` sets) into one training catalog.

    .venv/bin/python scripts/combine_catalogs.py OUT.csv CATALOG[:N] CATALOG[:N] ...

Takes the first ``N`` rows of each catalog (all without ``:N``), stacks them (columns one
catalog lacks are left empty), rewrites ``file_name`` (and a ``psf_image`` column, where
present) relative to ``OUT``'s folder so the images stay where they are, numbers the rows
0..n-1 as ``object_id``, keeps each row's origin in ``source`` and ``source_id``, and
writes ``OUT`` with ``combine.json`` beside it (each source's ``simulate.json``, seed and
preset, so the mixture's provenance stays readable).  The half-clean candidates of
scripts/train_candidates.sh train on sets combined this way.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from astropy.table import Table, vstack

from gampen.data.catalog import PSF_COLUMN, read_catalog, write_table
from gampen.data.provenance import SIMULATION_FILE


def parse_source(text: str) -> tuple[Path, int | None]:
    """``CATALOG[:N]`` -> (path, N or None); N must be a positive integer."""
    path, _, count = text.rpartition(":") if ":" in text else (text, "", "")
    if not count:
        return Path(text), None
    if not count.isdigit() or int(count) < 1:
        raise SystemExit(f"{text}: expected CATALOG or CATALOG:N with N a positive integer")
    return Path(path), int(count)


def relocated(table: Table, column: str, source: Path, out_dir: Path) -> None:
    """Rewrite ``column``'s non-empty relative paths from ``source``'s folder to ``out_dir``."""
    folder = source.parent.resolve()
    values = np.asarray(np.ma.getdata(table[column])).astype(str)
    empty = np.ma.getmaskarray(table[column]) | (np.char.strip(values) == "")
    table[column] = [
        "" if e else v if os.path.isabs(v) else os.path.relpath(folder / v, out_dir)
        for v, e in zip(values.tolist(), empty.tolist(), strict=True)
    ]


def load_part(source: Path, count: int | None, out_dir: Path) -> Table:
    """The first ``count`` rows of ``source``, paths relative to ``out_dir``, origin kept."""
    table = read_catalog(source)
    table.meta.clear()  # each source's own metadata; combine.json keeps what matters
    if count is not None:
        if count > len(table):
            raise SystemExit(f"{source}: asked for {count} rows, the catalog has {len(table)}")
        table = table[:count]
    if "file_name" not in table.colnames:
        raise SystemExit(f"{source}: no 'file_name' column (the cutout of each row)")
    for column in ("file_name", PSF_COLUMN):
        if column in table.colnames:
            relocated(table, column, source, out_dir)
    has_ids = "object_id" in table.colnames
    table["source_id"] = table["object_id"] if has_ids else np.arange(len(table))
    table["source"] = source.as_posix()
    if has_ids:
        table.remove_column("object_id")
    return table


def simulation_record(source: Path) -> dict | None:
    """The ``simulate.json`` beside ``source``, if there is one."""
    path = source.parent / SIMULATION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="catalog to write (.csv, .ecsv, .fits, .parquet)")
    parser.add_argument("sources", nargs="+", help="CATALOG or CATALOG:N (its first N rows)")
    args = parser.parse_args()
    out_dir = args.out.parent.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [parse_source(text) for text in args.sources]
    combined = vstack([load_part(p, n, out_dir) for p, n in parts], join_type="outer")
    combined.add_column(np.arange(len(combined)), name="object_id", index=0)
    write_table(combined, args.out)
    record = [
        {"catalog": p.as_posix(), "rows": n, "simulation": simulation_record(p)} for p, n in parts
    ]
    (out_dir / "combine.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{len(combined)} rows from {len(parts)} catalogs in {args.out}")


if __name__ == "__main__":
    main()
