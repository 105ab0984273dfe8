"""Copy a ``gampen simulate`` set with every cutout changed: the shared loop of
``scripts/survey_edge.py`` and ``scripts/bright_stars.py``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from astropy.io import fits
from astropy.table import Row, Table

from gampen.data.catalog import read_catalog, write_table


def alter_set(
    source: Path, out: Path, alter: Callable[[fits.HDUList, Row], None], what: str
) -> Table:
    """Write ``source``'s cutouts to ``out`` (replaced if it exists), each changed in place
    by ``alter(hdus, row)``, then its catalog, with any columns ``alter`` filled in."""
    catalog = read_catalog(source / "info.csv")
    if out.exists():
        shutil.rmtree(out)
    for row in catalog:
        with fits.open(source / row["file_name"]) as hdus:
            alter(hdus, row)
            (out / row["file_name"]).parent.mkdir(parents=True, exist_ok=True)
            hdus.writeto(out / row["file_name"])
    write_table(catalog, out / "info.csv")
    print(f"wrote {len(catalog)} cutouts {what} to {out}")
    return catalog
