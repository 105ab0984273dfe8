"""PyTorch datasets that stream galaxies from FITS cutouts or from an HDF5 pack.

Nothing is read at construction: an item is read from disk when asked for, so memory
stays bounded for million-row catalogs (GaMPEN preloads one ``.pt`` file per image; we
don't).  A bad cutout never raises inside a batch: its item is a zero image with its
:class:`~gampen.flags.Flag` bits set, and the reason is logged.

Each item is a dict: ``image`` (bands, size, size) float32 tensor after the stretch,
``index`` (row number), ``flags``, ``n_bad_pixels``, ``scalars`` (the
:class:`~gampen.data.scalars.ScalarInputs` numbers, float32, possibly empty), ``crowding``
(:func:`~gampen.data.scalars.crowding_index`, which picks the calibration map) and, when a
label transform is given, ``target`` (k,) float32 in standardised space.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from astropy.table import Table
from torch.utils.data import Dataset

from gampen.data.catalog import band_columns, label_array, object_ids, source_name
from gampen.data.cutouts import Cutout, header_number, read_cutout
from gampen.data.labels import LabelTransform
from gampen.data.normalize import ArcsinhStretch
from gampen.data.packfile import PackReader
from gampen.data.scalars import ScalarInputs, annulus_fluxes, crowding_index
from gampen.errors import CatalogError, CutoutError
from gampen.flags import Flag

log = logging.getLogger(__name__)


class GalaxyDataset(Dataset):
    """Shared item assembly: stretch, scalar inputs and standardised targets."""

    def __init__(
        self,
        *,
        n_items: int,
        stretch: ArcsinhStretch,
        targets: np.ndarray | None,
        scalars: ScalarInputs | None = None,
        conditions: np.ndarray | None = None,
    ) -> None:
        self._n = n_items
        self.stretch = stretch
        self._targets = None if targets is None else np.asarray(targets, dtype=np.float32)
        self.scalars = scalars or ScalarInputs()
        self._conditions = np.zeros((n_items, 0), np.float32) if conditions is None else conditions

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> dict[str, Any]:
        cutout = self.read(index)
        image = torch.from_numpy(self.stretch(cutout.image))
        row = self.conditions(index)
        flags = cutout.flags
        if not np.isfinite(row).all():
            flags |= Flag.BAD_CONDITION
            row = np.zeros_like(row)  # a fatal row: never used, but keep NaN out of the net
        fluxes = annulus_fluxes(cutout.image)
        scalars = self.scalars.values(fluxes, self.stretch.softening, row)
        item: dict[str, Any] = {
            "image": image,
            "index": index,
            "flags": flags,
            "n_bad_pixels": cutout.n_bad_pixels,
            "scalars": torch.from_numpy(scalars),
            "crowding": crowding_index(fluxes, self.stretch.softening),
        }
        if self._targets is not None:
            item["target"] = torch.from_numpy(self._targets[index])
        return item

    def read(self, index: int) -> Cutout:
        """The raw (cropped, unstretched) cutout of row ``index``."""
        raise NotImplementedError

    def conditions(self, index: int) -> np.ndarray:
        """The condition values of row ``index`` (NaN where missing)."""
        return self._conditions[index]


class CutoutDataset(GalaxyDataset):
    """Galaxies read one by one from FITS files named in a catalog (DESIGN §4.1, §4.2)."""

    def __init__(
        self,
        catalog: Table,
        *,
        image_dir: str | os.PathLike[str],
        input_size: int,
        bands: Sequence[str] | None = None,
        hdu: str | int | None = None,
        stretch: ArcsinhStretch | None = None,
        label_transform: LabelTransform | None = None,
        cache: bool = False,
        scalars: ScalarInputs | None = None,
    ) -> None:
        targets = None
        if label_transform is not None:
            targets = label_transform.forward(label_array(catalog, label_transform.names))
        scalars = scalars or ScalarInputs()
        super().__init__(
            n_items=len(catalog),
            stretch=stretch or ArcsinhStretch(),
            targets=targets,
            scalars=scalars,
            conditions=scalars.condition_array(catalog, source_name(catalog), from_headers=True),
        )
        object_ids(catalog)  # checks uniqueness up front
        columns = band_columns(catalog, bands)
        # Fixed-width bytes: compact, and shared copy-on-write with loader workers.
        self._files = np.stack(
            [np.char.encode(np.asarray(catalog[c], dtype=str)) for c in columns], 1
        )
        self.image_dir = Path(image_dir)
        self.input_size = int(input_size)
        self.n_bands = len(bands) if bands else len(columns)
        self.hdu = hdu
        self._cache: dict[int, Cutout] | None = {} if cache else None
        self._header_keys = self.scalars.header_keys(catalog)
        self._headers_read = np.zeros(len(catalog), dtype=bool)
        self._check_header_conditions(catalog)

    def paths(self, index: int) -> list[Path]:
        """The file(s) holding row ``index`` (one per band column)."""
        return [self.image_dir / name.decode() for name in self._files[index]]

    def conditions(self, index: int) -> np.ndarray:
        """Catalog values, and for columns the catalog lacks, the cutout header's (read
        once per row)."""
        row = self._conditions[index]
        if self._header_keys and not self._headers_read[index]:
            for j, key in self._header_keys.items():
                row[j] = header_number(self.paths(index)[0], key)
            self._headers_read[index] = True
        return row

    def _check_header_conditions(self, catalog: Table) -> None:
        """Refuse up front when a condition is neither a column nor in the first header."""
        if not self._header_keys or len(catalog) == 0:
            return
        first = self.paths(0)[0]
        absent = [k for j, k in self._header_keys.items() if not np.isfinite(self.conditions(0)[j])]
        if absent and first.is_file():
            names = [self.scalars.conditions[j] for j in self._header_keys]
            raise CatalogError(
                f"{source_name(catalog)}: the model needs the condition(s) {names} (it was "
                f"trained with them as inputs): no such catalog column, and no {absent} "
                f"keyword in {first}",
                allowed="a catalog with the column(s), or cutouts with the header keyword(s)",
            )

    def read(self, index: int) -> Cutout:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        cutout = _read_or_flag(self.paths(index), self.input_size, self.n_bands, self.hdu)
        if self._cache is not None:
            self._cache[index] = cutout
        return cutout


class PackedDataset(GalaxyDataset):
    """Galaxies read from a ``gampen pack`` HDF5 file; identical tensors to the FITS path."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        stretch: ArcsinhStretch | None = None,
        label_transform: LabelTransform | None = None,
        scalars: ScalarInputs | None = None,
    ) -> None:
        self.pack = PackReader(path)
        targets = None
        if label_transform is not None:
            targets = label_transform.forward(self.pack.labels(label_transform.names))
        scalars = scalars or ScalarInputs()
        super().__init__(
            n_items=len(self.pack),
            stretch=stretch or ArcsinhStretch(),
            targets=targets,
            scalars=scalars,
            conditions=scalars.condition_array(self.pack.table(), str(path))
            if scalars.conditions
            else None,
        )
        self.input_size = self.pack.input_size

    def read(self, index: int) -> Cutout:
        return self.pack.cutout(index)


def _read_or_flag(paths: list[Path], size: int, n_bands: int, hdu: str | int | None) -> Cutout:
    """Read a cutout; a fatal problem gives a zero image carrying its flag instead."""
    try:
        return read_cutout(paths if len(paths) > 1 else paths[0], size, n_bands=n_bands, hdu=hdu)
    except CutoutError as exc:
        log.warning("flagged: %s", exc)
        return Cutout(
            image=np.zeros((n_bands, size, size), dtype=np.float32),
            flags=exc.flag,
            n_bad_pixels=0,
        )
