"""The packed training-set format: every cutout, flag and catalog column in one HDF5 file.

Shared filesystems on clusters choke on millions of small files; ``gampen pack`` writes
one file the datasets read directly.  Layout (format ``gampen-pack`` version 1):

- ``images``  (n, bands, size, size) float32, one chunk per galaxy (fast random access);
  cropped, unstretched pixels exactly as :func:`~gampen.data.cutouts.read_cutout` returns
  them (fatal rows are zeros);
- ``flags``, ``n_bad_pixels`` (n,) int32; ``message`` (n,) the reason a row was flagged;
- ``object_id`` and ``file_name`` (n,);
- ``columns/<name>`` (n,) float64 for every numeric catalog column (labels live here);
- ``psf/`` each galaxy's PSF image (its catalog's ``psf_image`` file, else its cutout's
  ``PSF`` HDU), so that models taking one see the same numbers as from the FITS files:
  ``pixels`` (n,) variable-length float32 (flattened; empty for none or an unusable
  one), ``shape`` (n, 2) int32, ``scale`` (n,) float64 (the pixel scale its header
  states; NaN for none), ``name`` (n,) where it came from ('' for none) and ``problem``
  (n,) why it cannot be used ('' when it can).  Packs written before PSF images were
  read lack the group: :attr:`PackReader.has_psf` is False, and training with
  ``--psf-image`` refuses them rather than take every PSF for absent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from astropy.table import Table
from tqdm.auto import tqdm

from gampen import __version__
from gampen.atomic import atomic_path
from gampen.data.catalog import IN_MEMORY, Catalog
from gampen.data.cutouts import Cutout, header_photometry, read_cutout, read_psf
from gampen.data.missing import blank_pixels
from gampen.data.psf_features import PsfImage, psf_problem
from gampen.errors import CatalogError, CutoutError
from gampen.flags import is_fatal, summarise

PACK_FORMAT = "gampen-pack"
PACK_VERSION = 1
PACK_SUFFIXES = (".h5", ".hdf5")


def is_pack(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` names an HDF5 pack (by extension)."""
    return Path(path).suffix.lower() in PACK_SUFFIXES


def write_pack(
    catalog: Catalog,
    out: str | os.PathLike[str],
    *,
    input_size: int,
    bands: Sequence[str] | None = None,
    hdu: str | int | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Read every cutout ``catalog`` names into one HDF5 pack, with its numeric kept
    columns (load it with ``keep_columns="all"`` and the same ``bands``); returns flag
    counts.

    Bad cutouts are stored as zero images with their flag and message, never skipped, so
    row ``i`` of the pack is always row ``i`` of the catalog.  Written atomically.
    """
    if len(catalog.kept.colnames) != len(catalog.column_names) or catalog.files is None:
        raise CatalogError(
            f"{catalog.source}: a pack needs every column and the cutout files",
            allowed='load_catalog(..., keep_columns="all")',
        )
    n = len(catalog)
    n_bands = len(bands) if bands else catalog.files.shape[1]
    flags = np.zeros(n, dtype=np.int32)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h5:
        _write_header(h5, catalog, input_size, bands, n_bands)
        images = h5.create_dataset(
            "images",
            shape=(n, n_bands, input_size, input_size),
            dtype="f4",
            chunks=(1, n_bands, input_size, input_size),
        )
        n_bad = np.zeros(n, dtype=np.int32)
        messages = [""] * n
        psfs = _PsfWriter(h5, n)
        for i in tqdm(range(n), desc="packing", unit="gal", disable=not progress):
            paths = catalog.paths(i)
            psf_path = catalog.psf_path(i)
            try:
                cutout = read_cutout(
                    paths if len(paths) > 1 else paths[0],
                    input_size,
                    n_bands=n_bands,
                    hdu=hdu,
                    psf=psf_path is None,
                )
            except CutoutError as exc:
                flags[i], messages[i] = exc.flag, str(exc)
                continue  # the row stays zeros
            images[i] = cutout.image
            flags[i], n_bad[i] = cutout.flags, cutout.n_bad_pixels
            psfs.write(i, read_psf(psf_path) if psf_path is not None else cutout.psf)
        psfs.close()
        h5["flags"], h5["n_bad_pixels"] = flags, n_bad
        h5.create_dataset("message", data=messages, dtype=h5py.string_dtype())
        _write_columns(h5, catalog)
        first_good = np.flatnonzero(~is_fatal(flags))
        if first_good.size:
            for name, value in header_photometry(catalog.paths(first_good[0])[0]).items():
                h5.attrs[name] = value
    return summarise(flags)


class PackReader:
    """Random access to a pack; opens the HDF5 file lazily, once per process."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CatalogError(f"pack file not found: {self.path}")
        try:
            with h5py.File(self.path, "r") as h5:
                attrs = dict(h5.attrs)
                self._n = int(h5["flags"].shape[0])
                self.flags = h5["flags"][:]
                self.n_bad_pixels = h5["n_bad_pixels"][:]
                self.column_names = tuple(h5["columns"].keys())
        except (OSError, KeyError) as exc:
            raise CatalogError(f"{self.path}: not a readable gampen pack ({exc})") from exc
        if attrs.get("format") != PACK_FORMAT or int(attrs.get("version", -1)) > PACK_VERSION:
            raise CatalogError(
                f"{self.path}: unsupported pack format",
                value=(attrs.get("format"), attrs.get("version")),
                allowed=f"({PACK_FORMAT!r}, version <= {PACK_VERSION})",
            )
        self.input_size = int(attrs["input_size"])
        self.bands = tuple(json.loads(attrs["bands"]))
        #: ``pixel_scale`` and ``zero_point`` from the first good cutout's header, if any.
        self.photometry = {k: float(attrs[k]) for k in ("pixel_scale", "zero_point") if k in attrs}
        self._h5: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self._n

    @property
    def has_psf(self) -> bool:
        """Whether the pack holds its galaxies' PSF images (packs written before gampen
        read them do not)."""
        return "psf" in self._file()

    def psf(self, index: int) -> PsfImage | None:
        """The stored PSF image of row ``index`` (None: it had none)."""
        group = self._file()["psf"]
        name = _as_text(group["name"][index : index + 1])[0]
        if not name:
            return None
        pixels = np.asarray(group["pixels"][index], dtype=np.float32)
        pixels = pixels.reshape(tuple(int(v) for v in group["shape"][index]))
        scale = float(group["scale"][index])
        problem = _as_text(group["problem"][index : index + 1])[0]
        return PsfImage(pixels, scale if np.isfinite(scale) else None, name, problem)

    def cutout(self, index: int) -> Cutout:
        """The stored cutout of row ``index``; its pixels without data were stored as 0,
        so they are the blocks of exact zeros again (single stray pixels are left)."""
        image = self._file()["images"][index]
        n_bad = int(self.n_bad_pixels[index])
        missing = blank_pixels(image) if n_bad else None
        return Cutout(
            image=image,
            flags=int(self.flags[index]),
            n_bad_pixels=n_bad,
            missing=missing if missing is not None and missing.any() else None,
        )

    def table(self) -> Table:
        """object_id, file_name and every stored numeric column, as an astropy Table."""
        with h5py.File(self.path, "r") as h5:
            data = {"object_id": _as_text(h5["object_id"][:])}
            data["file_name"] = _as_text(h5["file_name"][:])
            data.update({name: h5["columns"][name][:] for name in h5["columns"]})
        return Table(data, meta={"gampen_source": str(self.path)})

    def _file(self) -> h5py.File:
        """This process's read-only handle (h5py handles must not cross a fork)."""
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_h5"], state["_pid"] = None, None
        return state


def _write_header(
    h5: h5py.File, catalog: Catalog, input_size: int, bands: Sequence[str] | None, n_bands: int
) -> None:
    """File-level attributes describing the pack."""
    h5.attrs["format"] = PACK_FORMAT
    h5.attrs["version"] = PACK_VERSION
    h5.attrs["input_size"] = input_size
    h5.attrs["bands"] = json.dumps(list(bands) if bands else ["band0"] * n_bands)
    h5.attrs["gampen_version"] = __version__
    h5.attrs["source"] = "" if catalog.source == IN_MEMORY else catalog.source


def _write_columns(h5: h5py.File, catalog: Catalog) -> None:
    """Object ids, (first-band) file names and every numeric kept column."""
    ids = catalog.object_ids
    if ids.dtype.kind in "US":
        h5.create_dataset("object_id", data=ids.astype(str).tolist(), dtype=h5py.string_dtype())
    else:
        h5["object_id"] = ids
    files = [name.decode() for name in catalog.files[:, 0]]
    h5.create_dataset("file_name", data=files, dtype=h5py.string_dtype())
    group = h5.create_group("columns")
    for name in catalog.kept.colnames:
        column = catalog.kept[name]
        if name != "object_id" and column.dtype.kind in "biuf" and column.ndim == 1:
            group[name] = np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)


class _PsfWriter:
    """Fills a pack's ``psf`` group row by row (see the module docstring)."""

    def __init__(self, h5: h5py.File, n: int) -> None:
        group = h5.create_group("psf")
        self.pixels = group.create_dataset("pixels", (n,), dtype=h5py.vlen_dtype(np.float32))
        self.shape = np.zeros((n, 2), dtype=np.int32)
        self.scale = np.full(n, np.nan)
        self.name, self.problem = [""] * n, [""] * n
        self.group = group

    def write(self, row: int, psf: PsfImage | None) -> None:
        """Store the PSF image of ``row`` (None: none); only its problem when unusable."""
        if psf is None:
            return
        self.name[row] = psf.source
        self.problem[row] = psf.problem or psf_problem(psf.pixels)
        if psf.pixel_scale is not None:
            self.scale[row] = psf.pixel_scale
        if not self.problem[row]:
            self.pixels[row] = np.asarray(psf.pixels, dtype=np.float32).ravel()
            self.shape[row] = psf.pixels.shape

    def close(self) -> None:
        """Write the per-row arrays."""
        self.group["shape"], self.group["scale"] = self.shape, self.scale
        for key in ("name", "problem"):
            self.group.create_dataset(key, data=getattr(self, key), dtype=h5py.string_dtype())


def _as_text(values: np.ndarray) -> np.ndarray:
    """h5py returns variable-length strings as bytes; decode them (numbers pass through)."""
    if values.dtype.kind in "OS":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
    return values
