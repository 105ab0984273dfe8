"""``predict()``: calibrated posteriors for a whole catalog, streamed, resumable, multi-device.

Work is cut into fixed chunks of catalog rows.  Lightning runs a chunk per step (across
devices and nodes with DDP; chunk ``c`` goes to rank ``c mod world``); each chunk's rows
and samples are written as a part file when done, and a rerun skips finished chunks.
Rank zero merges the parts into the final table and samples file.  Galaxy ``i``'s random
numbers depend only on ``(seed, i)``, so the output is the same for any batch size, worker
count or device count, interrupted or not.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from astropy.table import Table
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from gampen.calibration.maps import Recalibration
from gampen.checks import refuse_existing, refuse_inputs_as_outputs
from gampen.data.background import BorderBackground
from gampen.data.catalog import Catalog, load_catalog, table_format
from gampen.data.dataset import CutoutDataset
from gampen.data.labels import LabelTransform
from gampen.data.normalize import ArcsinhStretch
from gampen.data.scalars import ScalarInputs
from gampen.errors import CatalogError
from gampen.flags import Flag, is_fatal, summarise
from gampen.infer.options import PredictOptions
from gampen.infer.output import (
    file_metadata,
    finish_table,
    input_metadata,
    kept_columns,
    refuse_unwritable_text,
)
from gampen.infer.parts import PartStore, add_counts
from gampen.infer.psf_error import NODES, psf_sigmas
from gampen.infer.sampling import galaxy_keys, posterior_samples
from gampen.infer.summary import LEVELS, min_samples
from gampen.infer.summary import summarise as summarise_samples
from gampen.model.bundle import Bundle, load_bundle
from gampen.model.ood import OodModel
from gampen.models import default_model_path
from gampen.quiet import quiet_lightning

log = logging.getLogger(__name__)


def predict(
    source: str | Path | Table,
    *,
    out: str | Path | None = None,
    model: str | Path | None = None,
    options: PredictOptions | None = None,
) -> Table | None:
    """Posterior summaries for every galaxy of a catalog: a file, a folder of FITS files
    or an astropy ``Table`` (its ``file_name`` paths relative to ``options.image_dir``,
    else to the folder of the file it was read from, else to the current folder).

    Writes ``out`` (format by extension) when given and returns the table (``None`` on
    ranks other than zero of a multi-process run).
    """
    options = options or PredictOptions()
    out_format = table_format(out) if out is not None else None  # refused before any work
    model_path = Path(model or default_model_path())
    inputs = [model_path, *([] if isinstance(source, Table) else [Path(source)])]
    refuse_inputs_as_outputs([out, options.samples_out], inputs)
    if out is not None:
        # An unfinished run (its part folder still there) may replace what a merge killed
        # half-way wrote; anything else is only replaced when asked.
        unfinished = PartStore(out, {}).folder.is_dir()
        refuse_existing([out, options.samples_out], overwrite=options.overwrite or unfinished)
    bundle = load_bundle(model_path)
    warn_about_sampling(bundle, options, model_path.name)
    catalog = bundle_catalog(
        bundle,
        source,
        image_dir=options.image_dir,
        conditions=options.conditions,
        keep_columns=_keep_also(options.keep_columns, options.psf_fwhm_error),
    )
    if len(catalog) == 0:
        raise CatalogError(
            f"{catalog.source}: the catalog has no rows", allowed="one galaxy or more"
        )
    kept = kept_columns(catalog, options.keep_columns, bundle.param_names)
    if out_format == "fits":
        refuse_unwritable_text(catalog, kept, out)
    model_name = model_path.name.removesuffix(".zip")
    with quiet_lightning():
        if out is None:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "predictions.parquet"
                return _run(bundle, model_name, catalog, kept, out, options)
        return _run(bundle, model_name, catalog, kept, Path(out), options)


def _run(
    bundle: Bundle,
    model_name: str,
    catalog: Catalog,
    kept: list[str],
    out: Path,
    options: PredictOptions,
) -> Table | None:
    """Set up the part store and Lightning, predict the pending chunks, merge."""
    n_chunks = max(1, math.ceil(len(catalog) / options.chunk_size))
    store = PartStore(out, _settings(bundle, catalog, options))
    dataset = bundle_dataset(bundle, catalog, hdu=options.hdu)
    dataset.psf_sigmas = psf_sigmas(dataset.scalars, options.psf_fwhm_error, catalog)
    dataset.psf_nodes = min(NODES, options.n_passes)
    module = PosteriorModule(bundle, store, options, catalog)
    trainer = pl.Trainer(
        accelerator=options.accelerator,
        devices=options.devices,
        num_nodes=options.num_nodes,
        strategy=options.strategy,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    data = ChunkData(dataset, n_chunks, options)
    if trainer.is_global_zero:
        store.open()
    trainer.strategy.barrier()
    data.pending = [c for c in range(n_chunks) if not store.done(c)]
    done = data.n_done()
    if done and trainer.is_global_zero:
        log.info("resuming: %d of %d galaxies already done", done, len(catalog))
    if data.pending:
        trainer.predict(module, datamodule=data, return_predictions=False)
    trainer.strategy.barrier()
    if not trainer.is_global_zero:
        return None
    meta = file_metadata(model_name, bundle, options)

    def finish(rows: Table, counts: dict[str, dict[str, int]]) -> Table:
        return finish_table(rows, catalog.kept, kept, {**meta, **input_metadata(catalog, counts)})

    result = store.merge(
        n_chunks,
        samples_out=options.samples_out,
        param_names=list(bundle.param_names),
        attrs=store.settings,
        finish=finish,
    )
    counts = summarise(np.asarray(result["flags"]))
    log.info("%d galaxies; flags: %s", len(result), counts or "none")
    return result


def bundle_catalog(
    bundle: Bundle,
    source: str | Path | Table,
    *,
    image_dir: str | None = None,
    conditions: dict[str, str] | None = None,
    targets: Sequence[str] = (),
    keep_columns: Sequence[str] | str = (),
) -> Catalog:
    """The catalog read as the bundle's network takes it: its bands' image files, its
    conditions (``conditions`` maps one to another column or header keyword) in its
    contract's units, and the ``targets`` and ``keep_columns`` asked for."""
    scalars = ScalarInputs.from_dict(bundle.preprocessing.get("scalars"))
    return load_catalog(
        source,
        image_dir=image_dir,
        bands=bundle.bands if len(bundle.bands) > 1 else None,
        conditions=scalars.conditions,
        condition_columns=conditions,
        contract=bundle.contract,
        targets=targets,
        keep_columns=keep_columns,
    )


def bundle_dataset(
    bundle: Bundle,
    catalog: Catalog,
    *,
    hdu: str | None = None,
    label_transform: LabelTransform | None = None,
) -> CutoutDataset:
    """The catalog's cutouts as the bundle's network expects them (size, bands, stretch),
    each checked against the bundle's input contract."""
    return CutoutDataset(
        catalog,
        input_size=bundle.input_size,
        n_bands=len(bundle.bands) if len(bundle.bands) > 1 else None,
        hdu=hdu,
        stretch=ArcsinhStretch.from_dict(bundle.preprocessing["stretch"]),
        label_transform=label_transform,
        scalars=ScalarInputs.from_dict(bundle.preprocessing.get("scalars")),
        contract=bundle.contract,
        background=BorderBackground.from_dict(bundle.preprocessing.get("background")),
    )


class ChunkDataset(Dataset):
    """Item ``c`` is chunk ``c``: the stretched images and flags of its catalog rows."""

    def __init__(self, dataset: CutoutDataset, chunk_size: int) -> None:
        self.dataset, self.chunk_size = dataset, chunk_size

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.chunk_size)

    def n_rows(self, chunk: int) -> int:
        """How many catalog rows chunk ``chunk`` holds (the last may be short)."""
        return min(len(self.dataset), (chunk + 1) * self.chunk_size) - chunk * self.chunk_size

    def __getitem__(self, chunk: int) -> dict[str, Any]:
        if chunk == NO_CHUNK:
            return {"chunk": NO_CHUNK}
        rows = range(chunk * self.chunk_size, min(len(self.dataset), (chunk + 1) * self.chunk_size))
        items = [self.dataset[i] for i in rows]
        nodes = {}
        if items and "node_scalars" in items[0]:
            nodes["node_scalars"] = torch.stack([item["node_scalars"] for item in items])
        return {
            **nodes,
            "chunk": chunk,
            "rows": np.asarray(rows, dtype=np.int64),
            "images": torch.stack([item["image"] for item in items]),
            "scalars": torch.stack([item["scalars"] for item in items]),
            "crowding": np.array([item["crowding"] for item in items], dtype=np.float64),
            "flags": np.array([item["flags"] for item in items], dtype=np.int64),
            "n_bad_pixels": np.array([item["n_bad_pixels"] for item in items], dtype=np.int64),
            "counts": _source_counts(items),
        }


def _source_counts(items: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """How many of a chunk's galaxies took their pixel scale and zero point from where."""
    counts: dict[str, dict[str, int]] = {}
    for item in items:
        add_counts(counts, {what: {where: 1} for what, where in item["sources"].items()})
    return counts


#: The chunk a rank with no pending chunk is handed: Lightning refuses an empty loader,
#: so that rank runs one step that does nothing (and its peers are not left waiting).
NO_CHUNK = -1


class RankChunks(Sampler):
    """This rank's share of the pending chunks: every ``world``-th, from ``rank``
    (:data:`NO_CHUNK` alone when that leaves none)."""

    def __init__(self, pending: list[int], rank: int, world: int) -> None:
        self.chunks = pending[rank::world] or [NO_CHUNK]

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator[int]:
        return iter(self.chunks)


class ChunkData(pl.LightningDataModule):
    """Hands each rank a loader over its pending chunks (one chunk per step)."""

    def __init__(self, dataset: CutoutDataset, n_chunks: int, options: PredictOptions) -> None:
        super().__init__()
        self.chunks = ChunkDataset(dataset, options.chunk_size)
        self.options = options
        self.pending: list[int] = list(range(n_chunks))

    def n_done(self) -> int:
        """Galaxies in the chunks an earlier run finished (none pending)."""
        return len(self.chunks.dataset) - sum(self.chunks.n_rows(c) for c in self.pending)

    def predict_dataloader(self) -> DataLoader:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        workers = self.options.num_workers
        return DataLoader(
            self.chunks,
            batch_size=None,
            sampler=RankChunks(self.pending, rank, world),
            num_workers=workers,
            prefetch_factor=2 if workers else None,
        )


class PosteriorModule(pl.LightningModule):
    """Turns a chunk of images into summary rows and samples, and stores them."""

    def __init__(
        self,
        bundle: Bundle,
        store: PartStore,
        options: PredictOptions,
        catalog: Catalog,
    ) -> None:
        super().__init__()
        self.net = bundle.net
        self.bundle, self.store, self.options = bundle, store, options
        self.labels = LabelTransform.from_dict(bundle.preprocessing["labels"])
        self.spread = Recalibration.from_calibration(bundle.calibration, bundle.param_names)
        self.contract = bundle.contract
        ood = bundle.calibration.get("ood")
        self.ood = OodModel.from_dict(ood) if ood is not None else None
        self.ids = catalog.object_ids
        kept = catalog.kept
        self.files = np.asarray(kept["file_name"]) if "file_name" in kept.colnames else None
        self._bar: tqdm | None = None

    def on_predict_start(self) -> None:
        if self.trainer.is_global_zero and self.options.progress:
            data = self.trainer.datamodule
            total = len(data.chunks.dataset)
            self._bar = tqdm(total=total, unit="gal", desc="predicting", smoothing=0.1)
            self._bar.update(data.n_done())

    def on_predict_end(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> int:
        """Sample, summarise and store one chunk; returns its galaxy count."""
        if batch["chunk"] == NO_CHUNK:
            return 0
        rows, flags = _numpy(batch["rows"]), _numpy(batch["flags"]).copy()
        z, zoom, ood_score = self._sample(batch, rows, ~is_fatal(flags))
        flags[ood_score > 1] |= int(Flag.OUT_OF_DISTRIBUTION)
        physical = self.labels.inverse(z).astype(np.float32)
        at_limit = self.net.zoom_at_limit(torch.as_tensor(zoom)).numpy() & np.isfinite(zoom)
        flags[at_limit] |= int(Flag.STN_ZOOM_LIMIT)
        self.store.write(
            batch["chunk"],
            self._rows(rows, physical, zoom, ood_score, flags, batch),
            physical if self.options.samples_out else None,
            batch["counts"],
        )
        return len(rows)

    def _advance(self, n: int) -> None:
        """Move the progress bar by ``n`` galaxies of this rank (times the ranks)."""
        if self._bar is not None:
            self._bar.update(n * self.trainer.world_size)

    def _sample(
        self, batch: dict[str, Any], rows: np.ndarray, usable: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standardised samples (m, S, k), zooms (m,) and OOD scores (m,); NaN for
        unusable galaxies (and scores NaN without an OOD model)."""
        images, scalars, nodes = batch["images"], batch["scalars"], batch.get("node_scalars")
        crowding = _numpy(batch["crowding"])
        o = self.options
        k = len(self.bundle.param_names)
        z = np.full((len(rows), o.n_samples, k), np.nan, dtype=np.float32)
        zoom = np.full(len(rows), np.nan, dtype=np.float32)
        score = np.full(len(rows), np.nan, dtype=np.float32)
        keys = galaxy_keys(o.seed, rows)
        good = np.flatnonzero(usable)
        self._advance(len(rows) - len(good))  # flagged galaxies: nothing to compute
        for start in range(0, len(good), o.batch_size):
            idx = good[start : start + o.batch_size]
            embedded: list[torch.Tensor] | None = [] if self.ood is not None else None
            s, zm = posterior_samples(
                self.net,
                images[idx].to(self.device),
                keys[idx],
                n_passes=o.n_passes,
                n_samples=o.n_samples,
                spread=self.spread,
                scalars=scalars[idx].to(self.device),
                node_scalars=None if nodes is None else nodes[idx].to(self.device),
                crowding=crowding[idx],
                embeddings=embedded,
            )
            z[idx], zoom[idx] = s.cpu().numpy(), zm.cpu().numpy()
            if self.ood is not None and embedded:
                score[idx] = self.ood.score(embedded[0].cpu().numpy())
            self._advance(len(idx))
        return z, zoom, score

    def _rows(
        self,
        rows: np.ndarray,
        physical: np.ndarray,
        zoom: np.ndarray,
        ood_score: np.ndarray,
        flags: np.ndarray,
        batch: dict[str, Any],
    ) -> Table:
        """The chunk's output rows (docs/outputs.md)."""
        names = list(self.bundle.param_names)
        columns: dict[str, Any] = {"object_id": self.ids[rows]}
        if self.files is not None:
            columns["file_name"] = self.files[rows].astype(str)
        values = physical
        if "flux" in names:
            flux = physical[..., names.index("flux")]
            with np.errstate(invalid="ignore", divide="ignore"):
                mag = self.bundle.zero_point - 2.5 * np.log10(flux)
            values, names = np.concatenate([physical, mag[..., None]], axis=-1), [*names, "mag"]
        summaries = summarise_samples(values, names)
        columns.update(summaries)
        columns["stn_zoom"] = zoom
        columns["ood_score"] = ood_score
        columns["flags"] = flags | self.contract.range_flags(summaries)
        columns["n_bad_pixels"] = _numpy(batch["n_bad_pixels"])
        return Table(columns)


def warn_about_sampling(bundle: Bundle, options: PredictOptions, name: str) -> None:
    """Warn when too few samples leave an interval unresolved, when the bundle is
    uncalibrated, or when it is sampled otherwise than its calibration was fitted (the map
    then no longer matches the spread it corrects)."""
    unresolved = [
        f"{100 * level:.2f} % (needs {min_samples(level)})"
        for level in LEVELS.values()
        if options.n_samples < min_samples(level)
    ]
    if unresolved:
        log.warning(
            "%d samples per galaxy cannot resolve the %s interval(s): their columns are NaN",
            options.n_samples,
            ", ".join(unresolved),
        )
    if not bundle.calibrated:
        log.warning(
            "the model %s is not calibrated: its credible intervals have not been checked "
            "against the truth (run gampen calibrate on held-out galaxies)",
            name,
        )
        return
    fit = bundle.calibration["fit"]
    differs = [
        f"{setting} {getattr(options, setting)} (calibrated at {fit[setting]})"
        for setting in ("n_passes", "n_samples")
        if setting in fit and getattr(options, setting) != fit[setting]
    ]
    if differs:
        log.warning(
            "sampling with %s: the calibration was fitted at other settings, so the intervals "
            "may not hold their levels",
            ", ".join(differs),
        )


def _keep_also(keep: Sequence[str] | str, psf_error: float | str) -> Sequence[str] | str:
    """The columns to keep, with the one holding each galaxy's PSF FWHM error (it goes
    to the output too: the value each posterior was marginalised over)."""
    if keep == "all" or not isinstance(psf_error, str) or psf_error in keep:
        return keep
    return (*keep, psf_error)


def _where(source: str | Path) -> str:
    """A source path made absolute; a description (of a table given in memory) as it is."""
    return str(Path(source).resolve()) if Path(source).exists() else str(source)


def _numpy(value: Any) -> np.ndarray:
    """A loader-collated value (tensor or array) as a NumPy array."""
    return value.cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _settings(bundle: Bundle, catalog: Catalog, options: PredictOptions) -> dict[str, Any]:
    """What determines the output; a resumed run must match it."""
    kept = ("n_passes", "n_samples", "chunk_size", "seed", "image_dir", "hdu", "samples_out")
    wanted = {k: v for k, v in asdict(options).items() if k in kept}
    if options.conditions:
        wanted["conditions"] = dict(options.conditions)
    if options.psf_fwhm_error:
        wanted["psf_fwhm_error"] = options.psf_fwhm_error
    return {
        **wanted,
        "model_sha256": bundle.sha256,
        "calibration": {k: v for k, v in bundle.calibration.items() if k not in ("fit", "check")},
        "source": _where(catalog.source),
        "n_rows": len(catalog),
        "catalog_sha256": catalog.digest,
    }
