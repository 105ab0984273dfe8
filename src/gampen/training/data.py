"""The training data module: source, splits, label scaling, samplers and loaders.

The source is a catalog (FITS cutouts) or a ``gampen pack`` HDF5 file.  Label transforms
are fitted on the training split only (or taken from ``--init-from``'s bundle).  Each
training item gets its augmentation seed from the sampler, derived from (seed, epoch,
position), so an epoch is the same whatever the worker count and after ``--resume``;
with ``--psf-image`` the same seed decides whether the item's PSF image is hidden
(``--psf-drop``, :class:`~gampen.training.augment.PsfDrop`).  Validation is never
augmented nor dropped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from astropy.table import Table
from torch.utils.data import DataLoader, Dataset, Sampler

from gampen.data.background import BorderBackground
from gampen.data.catalog import Catalog, load_catalog
from gampen.data.cutouts import header_photometry
from gampen.data.dataset import CutoutDataset, GalaxyDataset, PackedDataset
from gampen.data.labels import LabelTransform
from gampen.data.normalize import ArcsinhStretch
from gampen.data.packfile import is_pack
from gampen.data.scalars import ScalarInputs
from gampen.errors import CatalogError, ConfigError
from gampen.flags import is_fatal
from gampen.seeding import derive_seed
from gampen.training.augment import Augment, PsfDrop
from gampen.training.config import TrainConfig
from gampen.training.splits import column_splits, random_splits

log = logging.getLogger(__name__)

#: Catalogs up to this many rows are cached in memory automatically.
AUTO_CACHE_ROWS = 20_000
#: Training galaxies the scalar inputs' mean and std are measured on (at most).
SCALAR_STATISTICS_ROWS = 5_000
#: Smallest standard deviation the PSF features are standardised with: they are fractions
#: of order 0.1-1, and a training set of near-identical PSFs (round Moffats: |e| ~ 0)
#: must not turn a real PSF's small difference into tens of standard deviations.
PSF_STD_FLOOR = 0.05


class SeededSampler(Sampler):
    """This rank's share of ``n`` positions, shuffled per epoch, each with an augmentation seed.

    Yields ``(position, seed)``.  Padding repeats positions so every rank gets the same
    count (as DistributedSampler does).  Lightning calls :meth:`set_epoch` every epoch.
    """

    def __init__(self, n: int, *, seed: int, shuffle: bool, rank: int = 0, world: int = 1):
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.epoch = 0
        self.per_rank = math.ceil(n / world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.arange(self.n)
        if self.shuffle:
            order = np.random.default_rng(derive_seed(self.seed, self.epoch)).permutation(self.n)
        order = np.resize(order, self.per_rank * self.world)[self.rank :: self.world]
        for position in order.tolist():
            yield position, derive_seed(self.seed, self.epoch, position)


class SplitView(Dataset):
    """The rows of one split, optionally augmented (and their PSF images dropped) with the
    seed the sampler hands over."""

    def __init__(
        self,
        base: GalaxyDataset,
        rows: np.ndarray,
        augment: Augment | None,
        psf_drop: PsfDrop | None = None,
    ) -> None:
        self.base, self.rows, self.augment, self.psf_drop = base, rows, augment, psf_drop

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        position, seed = key
        item = self.base[int(self.rows[position])]
        if self.augment is not None:
            item["image"] = self.augment(item["image"], seed)
        if self.psf_drop is not None:
            item["scalars"] = self.psf_drop(item["scalars"], seed)
        return item


class TrainingData(pl.LightningDataModule):
    """Builds the datasets once; hands each rank its loaders."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        labels: LabelTransform | None = None,
        scalars: ScalarInputs | None = None,
        background: BorderBackground | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.scalars = scalars or config.scalars
        #: The background removed from every cutout first (None: none).
        self.background = background
        source = Path(config.catalog)
        self.stretch = ArcsinhStretch(softening=tuple(config.softening))
        if labels is not None and list(labels.names) != list(config.targets):
            raise ConfigError(
                "--init-from: the bundle predicts other parameters than --targets",
                value=list(config.targets),
                allowed=list(labels.names),
            )
        #: The catalog (or the pack's rows), read once.
        self.catalog = load_catalog(
            source,
            image_dir=config.image_dir,
            bands=config.bands,
            images=not is_pack(source),
            conditions=self.scalars.conditions,
            targets=config.targets,
            # sky_sigma, where the catalog has it, gives the contract its noise range
            keep_columns=[c for c in (config.split_column, "sky_sigma") if c],
        )
        self.object_ids = self.catalog.object_ids
        values = _label_values(self.catalog, config.targets)
        #: The label columns (n, k) of every catalog row, physical units.
        self.label_values = values
        self.splits = _splits(self.catalog, values, config)
        train_rows = np.flatnonzero(self.splits == "train")
        self.labels = labels or LabelTransform.fit(
            config.targets, values[train_rows], eps=config.label_eps
        )
        self.dataset = self._dataset(source)
        self.rows = {name: np.flatnonzero(self.splits == name) for name in ("train", "val", "test")}
        if len(self.rows["val"]) == 0:
            raise ConfigError(
                "the validation split is empty",
                value=config.val_fraction,
                allowed="a val_fraction (or split column) giving >= 1 galaxy",
            )
        self.val_targets = self.labels.forward(values[self.rows["val"]])
        self.train_targets = self.labels.forward(values[train_rows])
        self.pixel_scale, self.zero_point = _photometry(source, self.dataset, config)
        self.dataset.psf_pixel_scale = self.pixel_scale  # for PSF images stating none

    def scalar_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (float32) of the scalar inputs over the training split's usable
        galaxies (at most ``SCALAR_STATISTICS_ROWS`` of them, evenly spaced).  The PSF
        features' are those the network sees in training: of the mixture in which a share
        ``psf_drop`` of them is zero, their std at least :data:`PSF_STD_FLOOR`."""
        rows = self.rows["train"]
        step = max(1, math.ceil(len(rows) / SCALAR_STATISTICS_ROWS))
        items = (self.dataset[int(i)] for i in rows[::step])
        values = [item["scalars"].numpy() for item in items if not is_fatal(item["flags"])]
        if not values:
            raise ConfigError("no usable training galaxy to measure the scalar inputs on")
        stacked = np.stack(values).astype(np.float64)
        mean, std = stacked.mean(0), stacked.std(0)
        if self.scalars.psf_image:
            where, kept = self.scalars.psf_slice(len(self.bands)), 1.0 - self.config.psf_drop
            psf = stacked[:, where]
            mean[where] = kept * psf.mean(0)
            spread = np.sqrt(np.maximum(kept * (psf**2).mean(0) - mean[where] ** 2, 0.0))
            std[where] = np.maximum(spread, PSF_STD_FLOOR)
        return mean.astype(np.float32), std.astype(np.float32)

    @property
    def bands(self) -> list[str]:
        """Band names: the config's, else the pack's, else one unnamed band."""
        if self.config.bands:
            return list(self.config.bands)
        if isinstance(self.dataset, PackedDataset):
            return list(self.dataset.pack.bands)
        return ["band0"]

    def train_dataloader(self) -> DataLoader:
        c = self.config
        augment = Augment(flips=c.flips, rotations=c.rotations, max_shift=c.max_shift)
        drop = None
        if self.scalars.psf_image and c.psf_drop > 0:
            drop = PsfDrop(c.psf_drop, self.scalars.psf_slice(len(self.bands)))
        view = SplitView(self.dataset, self.rows["train"], augment, drop)
        return self._loader(view, shuffle=True)

    def val_dataloader(self, *, rank: int | None = None, world: int | None = None) -> DataLoader:
        """This rank's validation loader (or the given rank's share, e.g. 0 of 1: all)."""
        view = SplitView(self.dataset, self.rows["val"], None)
        return self._loader(view, shuffle=False, rank=rank, world=world)

    def split_table(self) -> Table:
        """object_id and split of every galaxy (written beside the checkpoints)."""
        return Table({"object_id": self.object_ids, "split": self.splits})

    def _loader(
        self, view: SplitView, *, shuffle: bool, rank: int | None = None, world: int | None = None
    ) -> DataLoader:
        if rank is None or world is None:
            trainer = self.trainer
            rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        sampler = SeededSampler(
            len(view), seed=self.config.seed, shuffle=shuffle, rank=rank, world=world
        )
        # Lightning iterates a resumed run's loaders (and loader workers prefetch) before it
        # calls set_epoch: start at the epoch it will set, its processed-epochs count.
        sampler.set_epoch(
            self.trainer.fit_loop.epoch_progress.current.processed if self.trainer else 0
        )
        workers = self.config.num_workers
        return DataLoader(
            view,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    def _dataset(self, source: Path) -> GalaxyDataset:
        c = self.config
        if is_pack(source):
            packed = PackedDataset(
                source,
                self.catalog,
                stretch=self.stretch,
                label_transform=self.labels,
                scalars=self.scalars,
                background=self.background,
            )
            if packed.input_size != c.input_size:
                raise ConfigError(
                    f"{source} holds {packed.input_size}-pixel cutouts",
                    value=c.input_size,
                    allowed=f"--input-size {packed.input_size}",
                )
            return packed
        cache = c.cache if c.cache is not None else len(self.catalog) <= AUTO_CACHE_ROWS
        return CutoutDataset(
            self.catalog,
            input_size=c.input_size,
            n_bands=len(c.bands) if c.bands else None,
            hdu=c.hdu,
            stretch=self.stretch,
            label_transform=self.labels,
            cache=cache,
            scalars=self.scalars,
            background=self.background,
        )


def _label_values(catalog: Catalog, targets: list[str]) -> np.ndarray:
    """The catalog's label columns (n, k); an error naming those it lacks."""
    if catalog.labels is None:
        missing = [t for t in targets if t not in catalog.column_names]
        raise CatalogError(
            f"{catalog.source}: label column(s) {missing} not found",
            allowed=f"columns among {list(catalog.column_names)}",
        )
    return catalog.labels


def _splits(catalog: Catalog, values: np.ndarray, config: TrainConfig) -> np.ndarray:
    """Split labels from a column or drawn by seed (stratified when asked)."""
    if config.split_column:
        return column_splits(catalog, config.split_column)
    stratify = values[:, config.targets.index(config.balance_on)] if config.balance_on else None
    return random_splits(
        len(catalog),
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        stratify=stratify,
    )


def _photometry(source: Path, dataset: GalaxyDataset, config: TrainConfig) -> tuple[float, float]:
    """Pixel scale and zero point: the config's, else the pack's or first cutout's header."""
    found: dict[str, Any] = {}
    if isinstance(dataset, PackedDataset):
        found = dataset.pack.photometry
    elif isinstance(dataset, CutoutDataset) and len(dataset):
        found = header_photometry(dataset.paths(0)[0], dataset.hdu)
    pixel_scale = config.pixel_scale if config.pixel_scale is not None else found.get("pixel_scale")
    zero_point = config.zero_point if config.zero_point is not None else found.get("zero_point")
    if pixel_scale is None or zero_point is None:
        raise CatalogError(
            f"{source}: pixel scale or zero point unknown (no PIXSCALE/MAGZP header found)",
            allowed="--pixel-scale ARCSEC and --zero-point MAG on the command line",
        )
    return float(pixel_scale), float(zero_point)
