"""Catalog reading, checking and writing through astropy Table (DESIGN §4.1).

Formats are chosen by extension only: an unknown extension is an error, never a silent
fallback to CSV.  Writes are atomic.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from gampen.atomic import atomic_path
from gampen.errors import CatalogError

#: astropy format name for each supported table extension (lower case).
TABLE_FORMATS: dict[str, str] = {
    ".csv": "ascii.csv",
    ".ecsv": "ascii.ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".parquet": "parquet",
    ".pq": "parquet",
}

#: Extensions recognised as FITS images when a directory is used instead of a catalog.
FITS_IMAGE_SUFFIXES: tuple[str, ...] = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz")


def table_format(path: str | os.PathLike[str]) -> str:
    """The astropy format name for ``path``, from its extension; error if unknown."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise CatalogError(
            f"{path}: cannot tell the table format from the extension",
            value=suffix or "(none)",
            allowed=", ".join(sorted(TABLE_FORMATS)),
        )
    return TABLE_FORMATS[suffix]


def read_catalog(path: str | os.PathLike[str]) -> Table:
    """Read a catalog (CSV, ECSV, FITS or Parquet, by extension) into an astropy Table."""
    fmt = table_format(path)
    if not Path(path).is_file():
        raise CatalogError(f"catalog file not found: {path}")
    try:
        with warnings.catch_warnings():
            # Parquet files from other writers lack astropy's string-width metadata.
            warnings.filterwarnings("ignore", message="No table::len::")
            table = Table.read(path, format=fmt)
    except Exception as exc:  # astropy raises many types for a broken file
        raise CatalogError(f"{path}: cannot be read as {fmt}: {exc}") from exc
    table.meta["gampen_source"] = str(path)
    return table


def write_table(table: Table, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` atomically in the format its extension names; returns the path."""
    fmt = table_format(path)
    with atomic_path(path) as tmp:
        out = table.copy(copy_data=False)
        out.meta.pop("gampen_source", None)
        if fmt == "fits":
            _fits_with_descriptions(out).writeto(tmp)
        else:
            out.write(tmp, format=fmt)
    return Path(path)


def _fits_with_descriptions(table: Table) -> fits.HDUList:
    """The table as FITS, each column's description as the comment of its TTYPEn card
    (astropy keeps units in TUNITn but drops descriptions), cut to fit the card.

    FITS has no signed byte, and astropy writes int8 columns as logicals (every nonzero
    value becomes True): they are widened to int16 first.
    """
    for name in table.colnames:
        if table[name].dtype.kind == "i" and table[name].dtype.itemsize == 1:
            table[name] = table[name].astype(np.int16)
    hdu = fits.table_to_hdu(table)
    for i, column in enumerate(table.itercols(), start=1):
        text = column.info.description
        if text:
            value_end = max(len(hdu.header.cards[f"TTYPE{i}"].image.rstrip()), 30)  # fixed format
            room = 80 - value_end - 3
            text = text if len(text) <= room else text[: room - 3] + "..."
            hdu.header.comments[f"TTYPE{i}"] = text
    return fits.HDUList([fits.PrimaryHDU(), hdu])


def table_digest(table: Table) -> str:
    """SHA-256 of a table's column names and values (not its metadata): a resumed run
    checks that its catalog was not edited in between."""
    digest = hashlib.sha256()
    for name in table.colnames:
        column = table[name]
        digest.update(f"{name}\x00{column.dtype.str}\x00".encode())
        values = np.ma.getdata(column)
        if values.dtype.kind in "OUS":
            digest.update("\x1f".join(map(str, values.tolist())).encode())
        else:
            digest.update(np.ascontiguousarray(values).tobytes())
        digest.update(np.ma.getmaskarray(column).tobytes())
    return digest.hexdigest()


def catalog_from_directory(directory: str | os.PathLike[str]) -> Table:
    """A catalog of every FITS image in ``directory`` (sorted); object_id is the file stem."""
    folder = Path(directory)
    names = sorted(p.name for p in folder.iterdir() if p.name.lower().endswith(FITS_IMAGE_SUFFIXES))
    if not names:
        raise CatalogError(
            f"{folder}: no FITS images found", allowed=f"files ending in {FITS_IMAGE_SUFFIXES}"
        )
    ids = [name.split(".")[0] for name in names]
    table = Table({"object_id": ids, "file_name": names})
    table.meta["gampen_source"] = str(folder)
    return table


def band_columns(table: Table, bands: Sequence[str] | None) -> list[str]:
    """The file-name column(s) to read: ``file_name`` or one ``file_name_<band>`` per band."""
    if bands and all(f"file_name_{b}" in table.colnames for b in bands):
        return [f"file_name_{b}" for b in bands]
    if "file_name" in table.colnames:
        return ["file_name"]
    wanted = [f"file_name_{b}" for b in bands] if bands else []
    found = [c.removeprefix("file_name_") for c in table.colnames if c.startswith("file_name_")]
    expects = f"the bands {list(bands)}" if bands else "one band"
    has = f"; the catalog has image columns for the bands {found}" if found else ""
    raise CatalogError(
        f"{source_name(table)}: no image column for {expects}{has}",
        value=table.colnames,
        allowed="a 'file_name' column" + (f" or columns {wanted}" if wanted else ""),
    )


def object_ids(table: Table) -> np.ndarray:
    """The ``object_id`` column (or row numbers when absent), checked to be unique."""
    if "object_id" not in table.colnames:
        return np.arange(len(table), dtype=np.int64)
    ids = np.asarray(table["object_id"])
    if ids.dtype.byteorder not in "=|":  # FITS columns are big-endian; Arrow refuses those
        ids = ids.astype(ids.dtype.newbyteorder("="))
    if np.ma.is_masked(table["object_id"]):
        raise CatalogError(f"{source_name(table)}: column 'object_id' has empty values")
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        dup = unique[counts > 1][:5].tolist()
        raise CatalogError(
            f"{source_name(table)}: column 'object_id' has {len(ids) - len(unique)} duplicate "
            f"value(s), e.g. {dup}",
            allowed="unique object_id values",
        )
    return ids


def label_array(table: Table, names: Sequence[str]) -> np.ndarray:
    """The label columns as a float64 (n, k) array; error on a missing or non-finite value."""
    missing = [n for n in names if n not in table.colnames]
    if missing:
        raise CatalogError(
            f"{source_name(table)}: label column(s) {missing} not found",
            allowed=f"columns among {table.colnames}",
        )
    out = np.empty((len(table), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        column = table[name]
        values = np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            ids = object_ids(table)[bad[:5]].tolist()
            raise CatalogError(
                f"{source_name(table)}: label column '{name}' has {bad.size} missing or "
                f"non-finite value(s), e.g. at object_id {ids}",
                allowed="finite numbers",
            )
        out[:, j] = values
    return out


def resolve_image_dir(
    table: Table,
    catalog_path: str | os.PathLike[str] | None,
    image_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Where ``file_name`` paths are relative to (DESIGN §4.1).

    An explicit ``image_dir`` wins; otherwise the catalog's folder, or its ``cutouts/``
    sub-folder when the first file is found there and not beside the catalog.
    """
    if image_dir is not None:
        folder = Path(image_dir)
        if not folder.is_dir():
            raise CatalogError(f"image directory not found: {folder}")
        return folder
    base = Path(catalog_path).parent if catalog_path is not None else Path.cwd()
    if Path(catalog_path or "").is_dir():
        return Path(catalog_path)  # a directory of FITS files used as the catalog
    if len(table) == 0:
        return base
    columns = [c for c in table.colnames if c == "file_name" or c.startswith("file_name_")]
    first = str(table[columns[0]][0]) if columns else ""
    if first and not (base / first).exists() and (base / "cutouts" / first).exists():
        return base / "cutouts"
    return base


def source_name(table: Table) -> str:
    """The file a table was read from, for error messages."""
    return str(table.meta.get("gampen_source", "catalog"))
