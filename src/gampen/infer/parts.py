"""Resumable output: completed chunks are written as part files, merged at the end.

A prediction run owns ``<out>.partial/``: ``settings.json`` (what the run computes; a
rerun with other settings is refused) and, per finished chunk ``c``, ``c.parquet`` (its
summary rows, with the chunk's ``counts`` (e.g. where its pixel scales came from) in
the Parquet key-value metadata) and, when samples are kept, ``c.npy``.  Each part is
written atomically, so a killed run leaves only whole parts; rerunning the same command
skips them.  Merging reads the parts in chunk order into the final table (written
atomically, with its units and metadata) and streams the samples into their file, then
removes the folder.  Every rank of a multi-device run writes its own chunks into the
same folder, so the merge is the only shared step.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.table import Table, vstack

from gampen.atomic import atomic_path
from gampen.data.catalog import write_table
from gampen.errors import GampenValueError


class PartStore:
    """The ``<out>.partial`` folder of one prediction run."""

    def __init__(self, out: str | Path, settings: dict[str, Any]) -> None:
        self.out = Path(out)
        self.folder = self.out.with_name(self.out.name + ".partial")
        self.settings = settings

    def open(self) -> None:
        """Create the folder, or check an existing one was made with the same settings."""
        saved = self.folder / "settings.json"
        if saved.exists():
            before = json.loads(saved.read_text())
            changed = sorted(
                k for k in {*before, *self.settings} if before.get(k) != self.settings.get(k)
            )
            if changed:
                raise GampenValueError(
                    f"{self.folder} holds an unfinished run with other settings "
                    f"({', '.join(changed)}); rerun with the same options, or delete that "
                    "folder to start afresh",
                    value={k: self.settings.get(k) for k in changed},
                    allowed={k: before.get(k) for k in changed},
                )
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(saved) as tmp:
            tmp.write_text(json.dumps(self.settings, indent=2, sort_keys=True) + "\n")

    def done(self, chunk: int) -> bool:
        """True once chunk ``chunk``'s summary part exists (written last, atomically)."""
        return (self.folder / f"{chunk:07d}.parquet").exists()

    def write(
        self,
        chunk: int,
        rows: Table,
        samples: np.ndarray | None,
        counts: dict[str, dict[str, int]] | None = None,
    ) -> None:
        """Store one finished chunk: samples first, then the summary that marks it done,
        carrying ``counts`` (``{what: {value: n}}``, summed over chunks by :meth:`merge`)."""
        if samples is not None:
            with atomic_path(self.folder / f"{chunk:07d}.npy") as tmp, open(tmp, "wb") as handle:
                np.save(handle, samples.astype(np.float32, copy=False))
        arrow = _to_arrow(rows).replace_schema_metadata({COUNTS_KEY: json.dumps(counts or {})})
        with atomic_path(self.folder / f"{chunk:07d}.parquet") as tmp:
            pq.write_table(arrow, tmp)

    def merge(
        self,
        n_chunks: int,
        *,
        samples_out: str | Path | None,
        param_names: list[str],
        attrs: dict[str, Any],
        finish: Callable[[Table, dict[str, dict[str, int]]], Table] | None = None,
    ) -> Table:
        """Write the final table (and samples file) from every part; returns the table.

        ``finish`` turns the merged rows and the chunks' summed counts into the table to
        write (extra columns, units, metadata)."""
        missing = [c for c in range(n_chunks) if not self.done(c)]
        if missing:
            raise GampenValueError(f"{self.folder}: chunks {missing[:5]} are not finished")
        parts = list(self._parts(n_chunks))
        table = vstack([_from_arrow(part) for part in parts])
        if finish is not None:
            table = finish(table, _summed_counts(parts))
        write_table(table, self.out)
        if samples_out is not None:
            self._merge_samples(n_chunks, Path(samples_out), table, param_names, attrs)
        shutil.rmtree(self.folder)
        return table

    def _parts(self, n_chunks: int) -> Iterator[pa.Table]:
        for chunk in range(n_chunks):
            yield pq.read_table(self.folder / f"{chunk:07d}.parquet")

    def _merge_samples(
        self, n_chunks: int, path: Path, table: Table, names: list[str], attrs: dict[str, Any]
    ) -> None:
        """Stream the sample parts into one chunked, compressed HDF5 file."""
        first = np.load(self.folder / f"{0:07d}.npy", mmap_mode="r")
        n, shape = len(table), first.shape[1:]
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
            data = h5.create_dataset(
                "samples",
                shape=(n, *shape),
                dtype="f4",
                chunks=(min(64, max(n, 1)), *shape),
                compression="gzip",
                compression_opts=4,
                shuffle=True,
            )
            start = 0
            for chunk in range(n_chunks):
                block = np.load(self.folder / f"{chunk:07d}.npy")
                data[start : start + len(block)] = block
                start += len(block)
            ids = np.asarray(table["object_id"])
            if ids.dtype.kind in "US":
                h5.create_dataset(
                    "object_id", data=ids.astype(str).tolist(), dtype=h5py.string_dtype()
                )
            else:
                h5["object_id"] = ids
            h5.create_dataset("param_names", data=names, dtype=h5py.string_dtype())
            h5.attrs["settings"] = json.dumps(attrs, sort_keys=True)
            for key, value in attrs.items():
                if isinstance(value, bool | int | float | str):
                    h5.attrs[key] = value


#: Key of the per-chunk counts in a part's Parquet metadata.
COUNTS_KEY = b"gampen_counts"


def _summed_counts(parts: list[pa.Table]) -> dict[str, dict[str, int]]:
    """The parts' ``{what: {value: n}}`` counts, added up."""
    total: dict[str, dict[str, int]] = {}
    for part in parts:
        add_counts(total, json.loads((part.schema.metadata or {}).get(COUNTS_KEY, b"{}")))
    return total


def add_counts(total: dict[str, dict[str, int]], counts: dict[str, dict[str, int]]) -> None:
    """Add ``{what: {value: n}}`` counts into ``total``, in place."""
    for what, values in counts.items():
        into = total.setdefault(what, {})
        for value, n in values.items():
            into[value] = into.get(value, 0) + int(n)


def _to_arrow(rows: Table) -> pa.Table:
    """An astropy table of plain columns as a pyarrow table."""
    return pa.table({name: np.asarray(rows[name]) for name in rows.colnames})


def _from_arrow(part: pa.Table) -> Table:
    """A pyarrow table of plain columns as an astropy table (strings as str arrays)."""
    columns = {}
    for name in part.column_names:
        values = part[name].to_numpy(zero_copy_only=False)
        columns[name] = values.astype(str) if values.dtype == object else values
    return Table(columns)
