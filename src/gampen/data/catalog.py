"""Catalog reading, checking and writing through astropy Table (docs/architecture.md).

:func:`load_catalog` reads a catalog once into a :class:`Catalog`: ids, image files,
conditions, labels and pass-through columns, every check done there, so the commands and
their datasets never go back to the raw table.  Formats are chosen by extension only: an
unknown extension is an error, never a silent fallback to CSV.  Writes are atomic.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from gampen.atomic import atomic_path
from gampen.data.contract import InputContract
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


#: What :attr:`Catalog.source` says of an astropy Table that was not read from a file.
IN_MEMORY = "the given astropy Table"
#: Sky positions, which travel with the rows (as ``file_name`` does) whenever the catalog
#: has them, in any case.
POSITIONS: tuple[str, ...] = ("ra", "dec")
#: The optional column naming each galaxy's PSF image file (docs/inputs.md, "PSF image").
PSF_COLUMN = "psf_image"


@dataclass(frozen=True, eq=False)
class Catalog:
    """A catalog read and checked once: what predict, train, calibrate, evaluate and their
    datasets take, so none of them goes back to the raw table.  Built by
    :func:`load_catalog`; its arrays are read-only."""

    #: Where the rows came from (the path as given; for a table, the file it was read
    #: from, else :data:`IN_MEMORY`): named in messages and in run records.
    source: str
    #: Every column the source has, in order (for messages saying what is there).
    column_names: tuple[str, ...]
    #: (n,) unique ids in native byte order; row numbers when there is no object_id column.
    object_ids: np.ndarray
    #: The folder ``files`` are relative to (None without image files).
    image_dir: Path | None
    #: (n, m) each row's image file(s), one per band column, as UTF-8 bytes: compact, and
    #: shared copy-on-write with loader workers (None without image files).
    files: np.ndarray | None
    #: (n, c) float32 conditions in the contract's units; NaN where a value is missing or
    #: is read from each cutout's header (``header_keys``).
    conditions: np.ndarray
    #: Position in ``conditions`` -> FITS keyword, for the conditions the catalog has no
    #: column for: each cutout's header gives them.
    header_keys: dict[int, str]
    #: Where each condition comes from, in words (recorded in prediction files).
    condition_sources: dict[str, str]
    #: (n, k) float64 values of the target columns, in their order; None when one is absent.
    labels: np.ndarray | None
    #: The columns carried through to outputs, row for row: those asked for, and
    #: ``file_name``, RA and Dec whenever present.
    kept: Table
    #: SHA-256 of every column's name and values: a resumed run checks its catalog is
    #: the one it started with.
    digest: str
    #: (n,) each row's ``psf_image`` file as UTF-8 bytes, ``b""`` where the cell is empty
    #: (None without such a column or image files).
    psf_files: np.ndarray | None = None
    #: Where relative ``psf_image`` names are looked for, first found wins: the image
    #: folder, then the catalog's own.
    psf_folders: tuple[Path, ...] = ()

    def __len__(self) -> int:
        return len(self.object_ids)

    @property
    def given_ids(self) -> np.ndarray | None:
        """The ``object_id`` values; None when the catalog has no such column (its ids
        are then row numbers, which say nothing about which galaxy a row is)."""
        return self.object_ids if "object_id" in self.column_names else None

    def paths(self, row: int) -> list[Path]:
        """The image file(s) of ``row``, one per band column."""
        if self.files is None or self.image_dir is None:
            raise CatalogError(f"{self.source}: no image files were read for its rows")
        return [self.image_dir / name.decode() for name in self.files[row]]

    def psf_path(self, row: int) -> Path | None:
        """The ``psf_image`` file of ``row`` (None: no column, or an empty cell)."""
        if self.psf_files is None:
            return None
        return find_psf(self.psf_files[row], self.psf_folders)


def find_psf(name: bytes, folders: Sequence[Path]) -> Path | None:
    """The PSF file a ``psf_image`` cell names: in the first of ``folders`` holding it
    (an absolute name as it is), else in the first folder (to be reported missing);
    None for an empty cell."""
    text = name.decode().strip()
    if not text:
        return None
    candidates = [folder / text for folder in folders] or [Path(text)]
    return next((path for path in candidates if path.exists()), candidates[0])


def load_catalog(
    source: str | os.PathLike[str] | Table,
    *,
    image_dir: str | os.PathLike[str] | None = None,
    bands: Sequence[str] | None = None,
    images: bool = True,
    conditions: Sequence[str] = (),
    condition_columns: Mapping[str, str] | None = None,
    contract: InputContract | None = None,
    targets: Sequence[str] = (),
    keep_columns: Sequence[str] | str = (),
) -> Catalog:
    """Read and check a catalog once: a catalog file, a folder of FITS images, an astropy
    Table, or (with ``images=False``) a ``gampen pack``.

    ``images``: the rows must name cutout files (``file_name``, or ``file_name_<band>``
    for each of ``bands``), relative to ``image_dir``, else to the catalog's folder or its
    ``cutouts/`` sub-folder.  ``conditions``: the condition values to read, in order, each
    from the column ``condition_columns`` maps it to (default: its own name), put into the
    ``contract``'s units when the column has a unit; where there is no such column they
    come from each cutout's header keyword of that name, upper-cased (an error when the
    rows name no cutout files).  A ``psf_image`` column (each galaxy's PSF image file,
    relative like ``file_name``; empty cells for none) is read with the image files.
    ``targets``: the label columns, read when all are present.  ``keep_columns``: names
    (those the catalog lacks are skipped) or ``"all"``.
    Every problem with the table itself is a :class:`CatalogError` naming the file, the
    column and the value.
    """
    table, name = _read(source, images)
    ids = _object_ids(table, name)
    folder = _image_dir(table, name, image_dir) if images else None
    values, keys, sources = _conditions(
        table, name, tuple(conditions), dict(condition_columns or {}), contract, images
    )
    files = psf_files = None
    if images:
        columns = _band_columns(table, bands, name)
        files = np.stack([np.char.encode(np.asarray(table[c], dtype=str)) for c in columns], 1)
        psf_files = _psf_files(table)
    labels = None
    if targets and all(t in table.colnames for t in targets):
        labels = _labels(table, targets, ids, name)
    for array in (ids, files, values, labels, psf_files):
        if array is not None:
            array.flags.writeable = False
    return Catalog(
        source=name,
        column_names=tuple(table.colnames),
        object_ids=ids,
        image_dir=folder,
        files=files,
        conditions=values,
        header_keys=keys,
        condition_sources=sources,
        labels=labels,
        kept=_kept(table, keep_columns),
        digest=_digest(table),
        psf_files=psf_files,
        psf_folders=_psf_folders(folder, name) if psf_files is not None else (),
    )


def _psf_files(table: Table) -> np.ndarray | None:
    """The ``psf_image`` column as (n,) UTF-8 bytes, ``b""`` for an empty or masked cell;
    None without the column."""
    if PSF_COLUMN not in table.colnames:
        return None
    column = table[PSF_COLUMN]
    names = np.char.strip(np.asarray(np.ma.getdata(column)).astype(str))
    names[np.ma.getmaskarray(column)] = ""
    return np.char.encode(names)


def _psf_folders(image_dir: Path | None, source: str) -> tuple[Path, ...]:
    """Where relative ``psf_image`` names are looked for: the image folder, then the
    catalog's own folder."""
    folders = [image_dir] if image_dir is not None else []
    if source != IN_MEMORY:
        folders.append(Path(source) if Path(source).is_dir() else Path(source).parent)
    return tuple(dict.fromkeys(folders))


def _read(source: str | os.PathLike[str] | Table, images: bool) -> tuple[Table, str]:
    """The table and the name of where it came from."""
    if isinstance(source, Table):
        origin = source.meta.get("gampen_source")
        return source, str(origin) if origin else IN_MEMORY
    path = Path(source)
    if path.is_dir():
        return _directory_table(path), str(source)
    if not images:
        from gampen.data.packfile import PackReader, is_pack  # packfile needs h5py

        if is_pack(path):
            return PackReader(path).table(), str(source)
    return read_catalog(source), str(source)


def _digest(table: Table) -> str:
    """SHA-256 of a table's column names and values (not its metadata)."""
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


def _directory_table(folder: Path) -> Table:
    """A catalog of every FITS image in ``folder`` (sorted); object_id is the file stem."""
    names = sorted(p.name for p in folder.iterdir() if p.name.lower().endswith(FITS_IMAGE_SUFFIXES))
    if not names:
        raise CatalogError(
            f"{folder}: no FITS images found", allowed=f"files ending in {FITS_IMAGE_SUFFIXES}"
        )
    ids = [name.split(".")[0] for name in names]
    table = Table({"object_id": ids, "file_name": names})
    table.meta["gampen_source"] = str(folder)
    return table


def _band_columns(table: Table, bands: Sequence[str] | None, source: str) -> list[str]:
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
        f"{source}: no image column for {expects}{has}",
        value=table.colnames,
        allowed="a 'file_name' column" + (f" or columns {wanted}" if wanted else ""),
    )


def _object_ids(table: Table, source: str) -> np.ndarray:
    """The ``object_id`` column (or row numbers when absent), checked to be unique."""
    if "object_id" not in table.colnames:
        return np.arange(len(table), dtype=np.int64)
    ids = np.array(table["object_id"])  # a copy: the catalog does not change with the table
    if ids.dtype.byteorder not in "=|":  # FITS columns are big-endian; Arrow refuses those
        ids = ids.astype(ids.dtype.newbyteorder("="))
    if np.ma.is_masked(table["object_id"]):
        raise CatalogError(f"{source}: column 'object_id' has empty values")
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        dup = unique[counts > 1][:5].tolist()
        raise CatalogError(
            f"{source}: column 'object_id' has {len(ids) - len(unique)} duplicate "
            f"value(s), e.g. {dup}",
            allowed="unique object_id values",
        )
    return ids


def _labels(table: Table, names: Sequence[str], ids: np.ndarray, source: str) -> np.ndarray:
    """The label columns as a float64 (n, k) array; error on a non-finite value."""
    out = np.empty((len(table), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        values = np.ma.filled(np.ma.asarray(table[name], dtype=np.float64), np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise CatalogError(
                f"{source}: label column '{name}' has {bad.size} missing or "
                f"non-finite value(s), e.g. at object_id {ids[bad[:5]].tolist()}",
                allowed="finite numbers",
            )
        out[:, j] = values
    return out


def _conditions(
    table: Table,
    source: str,
    names: tuple[str, ...],
    columns: dict[str, str],
    contract: InputContract | None,
    from_headers: bool,
) -> tuple[np.ndarray, dict[int, str], dict[str, str]]:
    """The condition values (n, c) float32 in the contract's units, the header keyword of
    each condition without a column, and where each comes from in words."""
    unknown = sorted(set(columns) - set(names))
    if unknown:
        raise CatalogError(
            f"{source}: --conditions names condition(s) the model does not take",
            value=unknown,
            allowed=f"conditions among {list(names)}",
        )
    where = [columns.get(name, name) for name in names]
    missing = [c for c in where if c not in table.colnames]
    if missing and not from_headers:
        raise CatalogError(
            f"{source}: the model needs the condition column(s) {missing} "
            "(it was trained with them as inputs)",
            allowed=f"columns among {table.colnames}",
        )
    values = np.empty((len(table), len(names)), dtype=np.float32)
    for j, column in enumerate(where):
        if column in missing:
            values[:, j] = np.nan
            continue
        try:
            data = np.ma.asarray(table[column], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CatalogError(
                f"{source}: condition column '{column}' is not numeric",
                value=str(table[column].dtype),
            ) from exc
        values[:, j] = np.ma.filled(data, np.nan)
    keys = {j: column.upper() for j, column in enumerate(where) if column in missing}
    sources = {}
    for j, (name, column) in enumerate(zip(names, where, strict=True)):
        wanted = contract.condition_units.get(name, "") if contract else ""
        if j in keys:
            sources[name] = f"header keyword {keys[j]}" + (f", {wanted} assumed" if wanted else "")
            continue
        unit = table[column].unit
        if contract is not None and unit is not None:
            values[:, j] = contract.condition_in_unit(
                name, values[:, j].astype(np.float64), unit, f"{source}: column '{column}'"
            )
        given = f" [{unit}] converted to {wanted}" if unit is not None and wanted else ""
        assumed = f", no unit: {wanted} assumed" if unit is None and wanted else ""
        sources[name] = f"catalog column {column}{given}{assumed}"
    return values, keys, sources


def _kept(table: Table, keep: Sequence[str] | str) -> Table:
    """The pass-through columns (no copy), in catalog order."""
    wanted = set(table.colnames) if keep == "all" else set(keep)
    names = [c for c in table.colnames if c in wanted or c == "file_name" or c.lower() in POSITIONS]
    return Table([table[c] for c in names], names=names, copy=False)


def _image_dir(table: Table, source: str, image_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where ``file_name`` paths are relative to (docs/architecture.md, "Input catalog").

    An explicit ``image_dir`` wins; otherwise the catalog's folder (a folder of FITS files:
    that folder), or its ``cutouts/`` sub-folder when the first file is found there and
    not beside the catalog.
    """
    if image_dir is not None:
        folder = Path(image_dir)
        if not folder.is_dir():
            raise CatalogError(f"image directory not found: {folder}")
        return folder
    if Path(source).is_dir():
        return Path(source)
    base = Path(source).parent
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
