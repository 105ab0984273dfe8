"""``scripts/combine_catalogs.py``: the combined catalog loads with every cutout found, its
labels are the sources' rows (checked against the source files read here), and bad
``CATALOG:N`` arguments stop with a message."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from gampen.data.catalog import load_catalog

from ..scripts import load_script


def _script():
    return load_script("combine_catalogs")


def _catalog(folder: Path, n: int, start: float, extra: str | None) -> Path:
    """A catalog of ``n`` rows naming cutouts in ``folder/cutouts`` (empty files: only
    their paths matter here), labels from ``start``, with an ``extra`` column if named."""
    (folder / "cutouts").mkdir(parents=True)
    names = [f"cutouts/{i}.fits" for i in range(n)]
    for name in names:
        (folder / name).write_bytes(b"")
    table = Table({"object_id": np.arange(n), "file_name": names, "bt": start + np.arange(n)})
    if extra:
        table[extra] = np.ones(n)
    (folder / "simulate.json").write_text(json.dumps({"seed": int(start)}))
    table.write(folder / "info.csv")
    return folder / "info.csv"


def _run(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["combine_catalogs.py", *args])
    _script().main()


def test_combined_rows_paths_and_record(tmp_path, monkeypatch):
    a = _catalog(tmp_path / "a", 5, 10.0, "psf_beta")
    b = _catalog(tmp_path / "deep" / "b", 4, 20.0, None)
    out = tmp_path / "mix" / "info.csv"
    _run(monkeypatch, str(out), f"{a}:3", str(b))
    table = Table.read(out)
    assert list(table["object_id"]) == list(range(7))
    assert list(table["bt"]) == [10.0, 11.0, 12.0, 20.0, 21.0, 22.0, 23.0]
    assert list(table["source_id"]) == [0, 1, 2, 0, 1, 2, 3]
    assert table["psf_beta"].mask.tolist() == [False] * 3 + [True] * 4
    catalog = load_catalog(out)  # the gampen loader finds every cutout from the new folder
    for i in range(len(table)):
        assert (catalog.image_dir / catalog.files[i, 0].decode()).is_file()
    record = json.loads((out.parent / "combine.json").read_text())
    assert [r["rows"] for r in record] == [3, None]
    assert [r["simulation"]["seed"] for r in record] == [10, 20]


@pytest.mark.parametrize("suffix", [":0", ":x", ":9"])
def test_bad_row_counts_stop(tmp_path, monkeypatch, suffix):
    a = _catalog(tmp_path / "a", 5, 10.0, None)
    with pytest.raises(SystemExit, match=r"info\.csv"):
        _run(monkeypatch, str(tmp_path / "out.csv"), f"{a}{suffix}")
