"""PyTorch datasets that stream galaxies from FITS cutouts or from an HDF5 pack.

Nothing is read at construction: an item is read from disk when asked for, so memory
stays bounded for million-row catalogs (GaMPEN preloads one ``.pt`` file per image; we
don't).  A bad cutout never raises inside a batch: its item is a zero image with its
:class:`~gampen.flags.Flag` bits set, and the reason is logged.

Each item is a dict: ``image`` (bands, size, size) float32 tensor after the stretch,
``index`` (row number), ``flags``, ``n_bad_pixels``, ``scalars`` (the
:class:`~gampen.data.scalars.ScalarInputs` numbers, float32, possibly empty), ``crowding``
(:func:`~gampen.data.scalars.crowding_index`, which picks the calibration map),
``sources`` (where the pixel scale and zero point came from and, for models that take
one, the PSF image) and, when a label transform is given, ``target`` (k,) float32 in
standardised space.

For models that take a PSF image (:attr:`ScalarInputs.psf_image`), each galaxy's comes
from the catalog's ``psf_image`` column, else from its cutout's ``PSF`` HDU (or a pack's
copy of either); a galaxy without one gets the absent features, unflagged, and one whose
PSF image cannot be used is flagged ``BAD_CONDITION`` (fatal) with a warning naming it.

Given a model's :class:`~gampen.data.contract.InputContract` (as ``predict`` and
``calibrate`` do), each galaxy is checked against it before anything is measured: its
pixels are put on the model's zero point, and a pixel scale, unit, flux or condition the
model cannot take is flagged (:mod:`gampen.data.contract`).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from gampen.data.background import BorderBackground, border_noise
from gampen.data.catalog import Catalog
from gampen.data.contract import InputContract
from gampen.data.cutouts import Cutout, read_cutout, read_psf
from gampen.data.labels import LabelTransform
from gampen.data.missing import filled
from gampen.data.normalize import ArcsinhStretch
from gampen.data.packfile import PackReader
from gampen.data.psf_features import (
    ABSENT,
    PsfImage,
    measure_psf,
    size_factors,
    widened_features,
)
from gampen.data.scalars import (
    ScalarInputs,
    annulus_fluxes,
    crowding_index,
    largest_aperture_flux,
)
from gampen.errors import CatalogError, CutoutError
from gampen.flags import Flag, is_fatal

log = logging.getLogger(__name__)
#: Fatally flagged galaxies logged one by one (per process) before the log goes quiet.
WARNINGS_SHOWN = 20


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
        background: BorderBackground | None = None,
    ) -> None:
        self._n = n_items
        #: The background estimate removed before anything is measured (None: none).
        self.background = background
        self.stretch = stretch
        self._targets = None if targets is None else np.asarray(targets, dtype=np.float32)
        self.scalars = scalars or ScalarInputs()
        self._conditions = np.zeros((n_items, 0), np.float32) if conditions is None else conditions
        #: The model's input contract, checked per galaxy when given.
        self.contract: InputContract | None = None
        #: The pixel scale (arcsec) of PSF images whose header states none: the model's.
        self.psf_pixel_scale: float | None = None
        #: Each row's PSF features once measured (None: measured at every read).
        self._psf_memo: dict[tuple[int, float | None], tuple[np.ndarray, str, str]] | None = None
        #: Each row's PSF FWHM error; where it is given, items also carry
        #: ``node_scalars`` at :attr:`psf_nodes` PSF sizes (:mod:`gampen.infer.psf_error`).
        self.psf_sigmas: np.ndarray | None = None
        self.psf_nodes = 1
        self._warned = 0

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> dict[str, Any]:
        cutout = self.read(index)
        row = self.conditions(index, cutout)
        psf, psf_problem, psf_source = self._psf_features(index, cutout)
        if self.contract is not None:
            image, fluxes, flags, sources = self._checked(index, cutout, row, psf_problem)
        else:
            flags = cutout.flags | (0 if np.isfinite(row).all() else Flag.BAD_CONDITION)
            if psf_problem:
                flags |= Flag.BAD_CONDITION
                self.report(f"{self.describe(index)}: {psf_problem}")
            image = self._without_background(cutout.image, flags, cutout.missing)
            fluxes, sources = annulus_fluxes(image), {}
        if psf_source:
            sources["psf_image"] = psf_source
        if is_fatal(flags):
            row = np.zeros_like(row)  # a fatal row: never used, but keep NaN out of the net
            psf = ABSENT
        scalars = self.scalars.values(fluxes, self.stretch.softening, row, psf)
        item: dict[str, Any] = {
            "image": torch.from_numpy(self.stretch(image)),
            "index": index,
            "flags": int(flags),
            "n_bad_pixels": cutout.n_bad_pixels,
            "scalars": torch.from_numpy(scalars),
            "crowding": crowding_index(fluxes, self.stretch.softening),
            "sources": sources,
        }
        if self.psf_sigmas is not None:
            sigma = float(self.psf_sigmas[index])
            if sigma and not is_fatal(flags):
                factors = size_factors(sigma, self.psf_nodes)
                nodes = self._node_scalars(index, cutout, fluxes, row, factors)
            else:  # one PSF size: the sampler sees identical rows and spreads nothing
                nodes = np.repeat(scalars[None], self.psf_nodes, axis=0)
            item["node_scalars"] = torch.from_numpy(nodes)
        if self._targets is not None:
            item["target"] = torch.from_numpy(self._targets[index])
        return item

    def _node_scalars(
        self, index: int, cutout: Cutout, fluxes: np.ndarray, row: np.ndarray, factors: np.ndarray
    ) -> np.ndarray:
        """The galaxy's scalar inputs with its PSF widened by each of ``factors``
        (n_factors, n_scalars): the ``psf_fwhm`` condition times the factor, the PSF
        image's features as if it were that much wider."""
        conditions = list(self.scalars.conditions)
        fwhm = conditions.index("psf_fwhm") if "psf_fwhm" in conditions else None
        psf = self.psf(index, cutout)[0] if self.scalars.psf_image else None
        scale = None if psf is None else psf.pixel_scale or self.psf_pixel_scale
        features = np.repeat(ABSENT[None], len(factors), axis=0)
        if psf is not None and scale:  # usable: an unusable one is fatal, never here
            features = widened_features(psf.pixels, scale, factors)
        out = []
        for factor, node_features in zip(factors, features, strict=True):
            widened = np.array(row, dtype=np.float64)
            if fwhm is not None:
                widened[fwhm] *= factor
            out.append(self.scalars.values(fluxes, self.stretch.softening, widened, node_features))
        return np.stack(out)

    def _without_background(
        self, image: np.ndarray, flags: int, missing: np.ndarray | None
    ) -> np.ndarray:
        """The image with its ``missing`` pixels filled (:mod:`gampen.data.missing`), less
        the background estimate (none: as it is); as it is for a fatally flagged one."""
        if is_fatal(flags):
            return image
        image = filled(image, missing)
        return image if self.background is None else self.background(image)

    def _psf_features(self, index: int, cutout: Cutout) -> tuple[np.ndarray, str, str]:
        """The galaxy's PSF features, why its PSF image is unusable ('' when it is not),
        and where it came from ('' for models without PSF images; ``unread`` for a
        cutout that could not be read).  Remembered per row when the cutouts are."""
        if not self.scalars.psf_image:
            return ABSENT, "", ""
        if cutout.flags & (Flag.UNREADABLE | Flag.BAD_SHAPE):
            return ABSENT, "", "unread"
        key = (index, self.psf_pixel_scale)
        if self._psf_memo is not None and key in self._psf_memo:
            return self._psf_memo[key]
        psf, source = self.psf(index, cutout)
        features, problem = _measured(psf, self.psf_pixel_scale)
        found = (features, problem, "unusable" if problem else source)
        if self._psf_memo is not None:
            self._psf_memo[key] = found
        return found

    def psf(self, index: int, cutout: Cutout) -> tuple[PsfImage | None, str]:
        """The PSF image of row ``index`` (None: none given) and where it came from."""
        return cutout.psf, "PSF HDU" if cutout.psf is not None else "none"

    def _checked(
        self, index: int, cutout: Cutout, row: np.ndarray, psf_problem: str = ""
    ) -> tuple[np.ndarray, np.ndarray, int, dict[str, str]]:
        """The image on the model's zero point less its background, its annulus fluxes,
        the flags the contract adds (and ``BAD_CONDITION`` for the unusable PSF image
        ``psf_problem`` describes), and where the pixel scale and zero point came from.
        The flux is checked after the background is removed: a sky pedestal the model
        removes must not flag a faint galaxy."""
        contract = self.contract
        assert contract is not None
        flags, reasons = cutout.flags, []
        sources = {"pixel_scale": "unread", "zero_point": "unread"}
        image = cutout.image
        if not flags & (Flag.UNREADABLE | Flag.BAD_SHAPE):  # the header was read
            check = contract.check_image(cutout.facts)
            sources = {
                "pixel_scale": check.pixel_scale_source,
                "zero_point": check.zero_point_source,
            }
            if check.factor != 1.0:
                image = image * np.float32(check.factor)
            flags |= check.flags
            reasons.append(check.reason)
        image = self._without_background(image, flags, cutout.missing)
        fluxes = annulus_fluxes(image)
        if not is_fatal(flags):
            flux_flags, reason = contract.check_flux(largest_aperture_flux(fluxes))
            neighbour_flags, neighbour = contract.check_neighbours(image)
            noise_flags, noise = self._check_noise(image)
            flags |= flux_flags | neighbour_flags | noise_flags
            reasons += [reason, neighbour, noise]
        condition_flags, reason = contract.check_conditions(self.scalars.conditions, row)
        flags |= condition_flags | (Flag.BAD_CONDITION if psf_problem else 0)
        reasons += [reason, psf_problem]
        text = "; ".join(r for r in reasons if r)
        if text:
            self.report(f"{self.describe(index)}: {text}", fatal=is_fatal(flags))
        return image, fluxes, flags, sources

    def _check_noise(self, image: np.ndarray) -> tuple[int, str]:
        """The contract's sky-noise check of a one-band ``image`` (model units): its
        training range is of one band's noise, so other images are not checked."""
        contract = self.contract
        assert contract is not None
        if image.shape[0] != 1 or "sky_sigma" not in contract.ranges:
            return 0, ""
        return contract.check_noise(float(border_noise(image)[0]))

    def report(self, text: str, *, fatal: bool = True) -> None:
        """Log why a galaxy was flagged: fatal reasons as warnings, the first
        :data:`WARNINGS_SHOWN` of them (per process), then only at debug level, so a
        survey-wide mistake does not print a line per galaxy; others at debug level."""
        if not fatal:
            log.debug("flagged %s", text)
            return
        self._warned += 1
        if self._warned <= WARNINGS_SHOWN:
            log.warning("flagged %s", text)
        else:
            if self._warned == WARNINGS_SHOWN + 1:
                log.warning(
                    "more galaxies are flagged; not logged one by one (-v shows them; the "
                    "flags column has every one)"
                )
            log.debug("flagged %s", text)

    @property
    def catalog_conditions(self) -> np.ndarray:
        """The conditions (n, c) as the catalog gives them, in the contract's units; NaN
        where they come from the cutouts' headers."""
        return self._conditions

    def read(self, index: int) -> Cutout:
        """The raw (cropped, unstretched) cutout of row ``index``."""
        raise NotImplementedError

    def conditions(self, index: int, cutout: Cutout | None = None) -> np.ndarray:
        """The condition values of row ``index`` (NaN where missing)."""
        return self._conditions[index]

    def describe(self, index: int) -> str:
        """Which galaxy row ``index`` is, for messages."""
        return f"row {index}"


class CutoutDataset(GalaxyDataset):
    """Galaxies read one by one from the FITS files a :class:`Catalog` names
    (docs/architecture.md), with its conditions (the cutouts' headers giving those it has
    no column for).

    ``contract`` (a model's) is checked per galaxy; ``n_bands``: the bands each cutout
    holds (default: one per file column).
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        input_size: int,
        n_bands: int | None = None,
        hdu: str | int | None = None,
        stretch: ArcsinhStretch | None = None,
        label_transform: LabelTransform | None = None,
        cache: bool = False,
        scalars: ScalarInputs | None = None,
        contract: InputContract | None = None,
        background: BorderBackground | None = None,
    ) -> None:
        scalars = scalars or ScalarInputs()
        if catalog.files is None or catalog.image_dir is None:
            raise CatalogError(f"{catalog.source}: its rows name no cutout files")
        if catalog.conditions.shape[1] != len(scalars.conditions):
            raise CatalogError(
                f"{catalog.source}: read with {catalog.conditions.shape[1]} condition(s)",
                allowed=f"the model's {list(scalars.conditions)}",
            )
        super().__init__(
            n_items=len(catalog),
            stretch=stretch or ArcsinhStretch(),
            targets=_targets(catalog, label_transform),
            scalars=scalars,
            conditions=catalog.conditions,
            background=background,
        )
        self.contract = contract
        self.psf_pixel_scale = contract.pixel_scale if contract else None
        self.source = catalog.source
        self._catalog = catalog
        self.input_size = int(input_size)
        self.n_bands = n_bands or catalog.files.shape[1]
        self.hdu = hdu
        self._cache: dict[int, Cutout] | None = {} if cache else None
        self._psf_memo = {} if cache else None
        self._header_keys = catalog.header_keys
        #: Where each condition comes from, in words (recorded in prediction files).
        self.condition_sources = catalog.condition_sources
        self._check_header_conditions()

    def paths(self, index: int) -> list[Path]:
        """The file(s) holding row ``index`` (one per band column)."""
        return self._catalog.paths(index)

    def describe(self, index: int) -> str:
        return str(self.paths(index)[0])

    def psf_path(self, index: int) -> Path | None:
        """The PSF image file the catalog's ``psf_image`` column names for row ``index``
        (None: no such column, or an empty cell)."""
        return self._catalog.psf_path(index)

    def psf(self, index: int, cutout: Cutout) -> tuple[PsfImage | None, str]:
        """The ``psf_image`` file's PSF (it wins), else the cutout's ``PSF`` HDU."""
        path = self.psf_path(index)
        if path is not None:
            return read_psf(path), "column psf_image"
        return super().psf(index, cutout)

    def conditions(self, index: int, cutout: Cutout | None = None) -> np.ndarray:
        """Catalog values, and for columns the catalog lacks, the cutout header's."""
        row = self._conditions[index]
        if not self._header_keys:
            return row
        row = row.copy()
        cutout = cutout if cutout is not None else self.read(index)
        for j, key in self._header_keys.items():
            row[j] = cutout.facts.numbers.get(key, np.nan)
        return row

    def _check_header_conditions(self) -> None:
        """Refuse up front when a condition is neither a column nor in the first header
        (of a cutout that is usable: a broken first file says nothing about the rest)."""
        if not self._header_keys or len(self) == 0:
            return
        first = self.paths(0)[0]
        if not first.is_file():
            return
        cutout = self.read(0)
        row = self.conditions(0, cutout)
        absent = [k for j, k in self._header_keys.items() if not np.isfinite(row[j])]
        if absent and not is_fatal(cutout.flags):
            names = [self.scalars.conditions[j] for j in self._header_keys]
            raise CatalogError(
                f"{self.source}: the model needs the condition(s) {names} (it was "
                f"trained with them as inputs): no such catalog column, and no {absent} "
                f"keyword in {first}",
                allowed="a catalog with the column(s), cutouts with the header keyword(s), "
                "or --conditions NAME=COLUMN naming where they are",
            )

    def read(self, index: int) -> Cutout:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        paths = self.paths(index)
        try:
            cutout = read_cutout(
                paths if len(paths) > 1 else paths[0],
                self.input_size,
                n_bands=self.n_bands,
                hdu=self.hdu,
                header_keys=tuple(self._header_keys.values()),
                pixel_scale=self.contract.pixel_scale if self.contract else None,
                psf=self.scalars.psf_image and self.psf_path(index) is None,
            )
        except CutoutError as exc:
            self.report(str(exc))
            cutout = Cutout(
                image=np.zeros((self.n_bands, self.input_size, self.input_size), np.float32),
                flags=exc.flag,
                n_bad_pixels=0,
            )
        if self._cache is not None:
            self._cache[index] = cutout
        return cutout


class PackedDataset(GalaxyDataset):
    """Galaxies read from a ``gampen pack`` HDF5 file; identical tensors to the FITS path.
    ``catalog`` is the pack's rows (:func:`~gampen.data.catalog.load_catalog` of the pack
    with ``images=False``): their labels and conditions."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        catalog: Catalog,
        *,
        stretch: ArcsinhStretch | None = None,
        label_transform: LabelTransform | None = None,
        scalars: ScalarInputs | None = None,
        background: BorderBackground | None = None,
    ) -> None:
        self.pack = PackReader(path)
        super().__init__(
            n_items=len(self.pack),
            stretch=stretch or ArcsinhStretch(),
            targets=_targets(catalog, label_transform),
            scalars=scalars or ScalarInputs(),
            conditions=catalog.conditions,
            background=background,
        )
        self.input_size = self.pack.input_size
        if self.scalars.psf_image and not self.pack.has_psf:
            raise CatalogError(
                f"{path}: this pack holds no PSF images (written by an older gampen), and "
                "the model takes them",
                allowed="a pack written again with 'gampen pack', or training from the catalog",
            )

    def read(self, index: int) -> Cutout:
        return self.pack.cutout(index)

    def psf(self, index: int, cutout: Cutout) -> tuple[PsfImage | None, str]:
        """The PSF image the pack stored for row ``index``."""
        psf = self.pack.psf(index)
        return psf, "pack" if psf is not None else "none"


@lru_cache(maxsize=1024)
def _measured(psf: PsfImage | None, pixel_scale: float | None) -> tuple[np.ndarray, str]:
    """:func:`measure_psf`, once per PSF image read (a ``psf_image`` file shared by many
    galaxies is read once: :func:`gampen.data.cutouts.read_psf`)."""
    return measure_psf(psf, pixel_scale)


def _targets(catalog: Catalog, transform: LabelTransform | None) -> np.ndarray | None:
    """The catalog's labels standardised by ``transform`` (None without one)."""
    if transform is None:
        return None
    if catalog.labels is None:
        raise CatalogError(
            f"{catalog.source}: its label columns were not read",
            allowed=f"columns {list(transform.names)}",
        )
    return transform.forward(catalog.labels)
