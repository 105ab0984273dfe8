"""``train(config)``: fit a GaMPEN network with Lightning and write the model bundle.

The run directory (default ``<out>.run``) holds ``config.json``, ``splits.csv`` (the split
of every object_id), ``checkpoints/`` (safetensors checkpoints every epoch, ``last.ckpt``
for ``--resume``) and the CSV/TensorBoard/MLflow logs (a new ``version_N`` per attempt).
Only the global-zero rank writes the bundle.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from gampen import __version__
from gampen.atomic import atomic_path
from gampen.checksum import file_sha256
from gampen.data.background import BorderBackground
from gampen.data.catalog import write_table
from gampen.data.contract import DEFAULT_CONDITION_UNITS, InputContract, training_ranges
from gampen.data.labels import LabelTransform
from gampen.data.provenance import earlier_marks, training_marks
from gampen.data.scalars import ScalarInputs
from gampen.errors import ConfigError
from gampen.model.bundle import Bundle, load_bundle, save_bundle
from gampen.model.config import NetworkConfig
from gampen.model.loss import gaussian_nll
from gampen.model.network import GampenNet, with_more_scalars
from gampen.quiet import quiet_lightning
from gampen.training.checkpoint_io import SafeCheckpointIO
from gampen.training.config import TrainConfig
from gampen.training.data import TrainingData
from gampen.training.module import GampenModule, censoring_of

log = logging.getLogger(__name__)

#: Fields that may differ between a run and its --resume (they don't change the result).
RESUME_FREE_FIELDS = {
    "resume",
    "progress",
    "num_workers",
    "logger",
    "epochs",
    "early_stopping_patience",
}


#: Every field's default, standing in for fields a run's saved config.json predates.
_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in dataclasses.fields(TrainConfig)
    if f.default is not dataclasses.MISSING
}


def run_dir_for(config: TrainConfig) -> Path:
    """Where checkpoints and logs go: ``run_dir`` or ``<out without suffix>.run``."""
    if config.run_dir:
        return Path(config.run_dir)
    out = Path(config.out)
    return out.with_name(out.name.removesuffix(".zip") + ".run")


def train(config: TrainConfig, *, callbacks: Sequence[Callback] = ()) -> Path | None:
    """Train per ``config``; returns the bundle path (``None`` on ranks other than zero)."""
    with quiet_lightning():
        return _train(config, callbacks)


def _train(config: TrainConfig, callbacks: Sequence[Callback]) -> Path | None:
    """:func:`train` without the logging set-up."""
    if not config.out:
        raise ConfigError("training needs an output bundle path", allowed="--out BUNDLE")
    started = time.time()
    run_dir = run_dir_for(config)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    base = load_bundle(config.init_from) if config.init_from else None
    labels = LabelTransform.from_dict(base.preprocessing["labels"]) if base else None
    data = TrainingData(
        config,
        labels=labels,
        scalars=_scalar_inputs(config, base),
        background=_background(config, base),
    )
    net = _starting_network(config, data, base)
    module = GampenModule(net, config, data.object_ids, censoring_of(data.labels))
    trainer = _trainer(config, run_dir, callbacks)
    last = run_dir / "checkpoints" / "last.ckpt"
    resuming = config.resume and last.exists()
    if last.exists() and not config.resume:
        raise ConfigError(
            f"{run_dir} holds checkpoints of an earlier run",
            allowed="--resume to continue it, or another --run-dir/--out",
        )
    if trainer.is_global_zero:
        _prepare_run_dir(run_dir, config, data, resuming=resuming)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Checkpoint directory .* not empty")
        trainer.fit(module, datamodule=data, ckpt_path=str(last) if resuming else None)
    if not trainer.is_global_zero:
        return None
    best = _best_checkpoint(trainer)
    state = SafeCheckpointIO().load_checkpoint(best)["state_dict"]
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items()})
    metrics = _metrics(module, data, trainer, best)
    return save_bundle(
        config.out,
        net.eval(),
        param_names=list(config.targets),
        bands=data.bands,
        pixel_scale=data.pixel_scale,
        zero_point=data.zero_point,
        preprocessing={
            "stretch": data.stretch.to_dict(),
            "labels": data.labels.to_dict(),
            "scalars": data.scalars.to_dict(),
            **({"background": data.background.to_dict()} if data.background else {}),
        },
        provenance=_provenance(config, data, run_dir, time.time() - started, base),
        metrics=metrics,
        contract=_contract(data, base),
    )


def _contract(data: TrainingData, base: Bundle | None) -> dict[str, Any]:
    """The model's input contract: its conditions' units and the ranges of labels and
    conditions over the training split (with ``--init-from``, wide enough for both)."""
    rows = data.rows["train"]
    conditions = {
        name: data.dataset.catalog_conditions[rows, j]
        for j, name in enumerate(data.scalars.conditions)
    }
    if len(data.bands) == 1 and "sky_sigma" in data.catalog.kept.colnames:
        # a simulated set's per-pixel sky noise: predict flags images outside its range
        conditions["sky_sigma"] = np.asarray(data.catalog.kept["sky_sigma"], float)[rows]
    ranges = training_ranges(
        data.config.targets, data.label_values[rows], data.zero_point, conditions
    )
    if base is not None:
        for name, (lo, hi) in base.contract.ranges.items():
            mine = ranges.get(name, (lo, hi))
            ranges[name] = (min(lo, mine[0]), max(hi, mine[1]))
    units = {name: DEFAULT_CONDITION_UNITS.get(name, "") for name in data.scalars.conditions}
    if base is not None:
        units.update(base.contract.condition_units)
    return InputContract(
        pixel_scale=data.pixel_scale,
        zero_point=data.zero_point,
        input_size=data.config.input_size,
        condition_units=units,
        ranges=ranges,
    ).to_dict()


def _background(config: TrainConfig, base: Bundle | None) -> BorderBackground | None:
    """The background estimate ``--background`` asks for (border, border-centred or
    masked-centred; a fine-tune may add one: the network then learns on background-free
    cutouts); else, with ``--init-from``, the bundle's (the network learnt on its cutouts)."""
    if config.background != "none":
        return BorderBackground(
            recentre=config.background.endswith("-centred"),
            mask_sources=config.background == "masked-centred",
        )
    if base is not None:
        return BorderBackground.from_dict(base.preprocessing.get("background"))
    return None


def _scalar_inputs(config: TrainConfig, base: Bundle | None) -> ScalarInputs:
    """The config's scalar inputs; with ``--init-from``, the bundle's (which must agree),
    plus the PSF features when the config asks for them and the bundle lacks them (its
    network is grown to take them: :func:`_starting_network`).  A bundle that takes PSF
    images keeps them without ``--psf-image`` (a network cannot lose inputs)."""
    if base is None:
        return config.scalars
    inherited = ScalarInputs.from_dict(base.preprocessing.get("scalars"))
    asked = config.scalars
    if dataclasses.replace(asked, psf_image=inherited.psf_image) != inherited:
        raise ConfigError(
            "--init-from: the bundle's network takes other scalar inputs than the config asks for",
            value=asked.to_dict(),
            allowed=f"photometry: {inherited.photometry}, "
            f"conditions: {list(inherited.conditions) or 'none'}, "
            f"psf_image: {'true' if inherited.psf_image else 'false or true'} (as the bundle, "
            "which may gain the PSF image)",
        )
    if inherited.psf_image and not asked.psf_image:
        log.info("--init-from: the bundle takes PSF images, and so does this run")
    return dataclasses.replace(inherited, psf_image=inherited.psf_image or asked.psf_image)


def _starting_network(config: TrainConfig, data: TrainingData, base: Bundle | None) -> GampenNet:
    """A new network, or the ``--init-from`` bundle's; grown by the PSF features (zero
    weights, standardised on this training split) when the run adds them, so that it
    starts out predicting exactly what the bundle does."""
    if base is None:
        return _new_network(config, data)
    net = base.net.train()
    more = data.scalars.count(len(data.bands)) - net.config.n_scalars
    if more > 0:
        mean, std = data.scalar_statistics()
        net = with_more_scalars(net, torch.from_numpy(mean[-more:]), torch.from_numpy(std[-more:]))
        log.info("--init-from: the network takes %d more scalar inputs (the PSF image's)", more)
    return net


def _new_network(config: TrainConfig, data: TrainingData) -> GampenNet:
    """A freshly initialised network, its scalar inputs standardised on the training split."""
    net = GampenNet(_network_config(config, data))
    if net.config.n_scalars:
        mean, std = data.scalar_statistics()
        net.set_scalar_statistics(torch.from_numpy(mean), torch.from_numpy(std))
    return net


def _network_config(config: TrainConfig, data: TrainingData) -> NetworkConfig:
    """The architecture: the config's ``network`` fields plus what the data fixes."""
    fixed = {
        "n_bands": len(data.bands),
        "input_size": config.input_size,
        "n_params": len(config.targets),
        "n_scalars": data.scalars.count(len(data.bands)),
    }
    clash = {k: v for k, v in config.network.items() if k in fixed and v != fixed[k]}
    if clash:
        raise ConfigError("network fields contradict the data", value=clash, allowed=fixed)
    return NetworkConfig.from_dict({**config.network, **fixed})


def _trainer(config: TrainConfig, run_dir: Path, callbacks: Sequence[Callback]) -> pl.Trainer:
    """A Lightning Trainer with safe checkpoints, early stopping and the chosen loggers."""
    best = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor="val_nll", mode="min"
    )
    # Not save_last=True: Lightning writes last.ckpt only when best.ckpt improves, so a run
    # killed after epochs that did not improve would --resume from the best one, losing them.
    latest = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="last", enable_version_counter=False
    )
    stopper = EarlyStopping(
        monitor="val_nll", mode="min", patience=max(1, config.early_stopping_patience)
    )
    wanted = [best, latest, *callbacks]
    if config.early_stopping_patience > 0:
        wanted.append(stopper)
    return pl.Trainer(
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        gradient_clip_val=config.gradient_clip or None,
        callbacks=wanted,
        logger=_loggers(config, run_dir),
        plugins=[SafeCheckpointIO()],
        use_distributed_sampler=False,  # our sampler shards by rank itself
        # Deterministic kernels wherever torch has them (every CPU op we use); CUDA's
        # backward passes of adaptive pooling and grid_sample have none, so warn, not fail.
        deterministic="warn",
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        log_every_n_steps=10,
        default_root_dir=run_dir,
    )


def _loggers(config: TrainConfig, run_dir: Path) -> list[Any]:
    """CSV always works; TensorBoard and MLflow when installed (MLflow only when asked)."""
    from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger

    loggers: list[Any] = []
    for name in config.logger:
        if name == "csv":
            loggers.append(CSVLogger(run_dir, name="logs"))
        elif name == "tensorboard":
            loggers.append(TensorBoardLogger(run_dir, name="tensorboard"))
        elif name == "mlflow":
            try:
                import mlflow  # noqa: F401
            except ImportError as exc:
                raise ConfigError(
                    "--logger mlflow needs MLflow: pip install 'gampen[mlflow]'"
                ) from exc
            loggers.append(
                MLFlowLogger(
                    experiment_name="gampen", tracking_uri=(run_dir / "mlruns").resolve().as_uri()
                )
            )
    return loggers


def _prepare_run_dir(
    run_dir: Path, config: TrainConfig, data: TrainingData, *, resuming: bool
) -> None:
    """Write config.json and splits.csv; on resume, refuse a changed configuration."""
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.json"
    current = config.to_dict()
    if resuming and saved.exists():
        before = {**_DEFAULTS, **json.loads(saved.read_text())}  # fields added since: defaults
        changed = sorted(
            k for k in current if k not in RESUME_FREE_FIELDS and before.get(k) != current[k]
        )
        if changed:
            raise ConfigError(
                f"--resume with settings that differ from the run in {run_dir}",
                value={k: current[k] for k in changed},
                allowed={k: before.get(k) for k in changed},
            )
    with atomic_path(saved) as tmp:
        tmp.write_text(json.dumps(current, indent=2) + "\n")
    write_table(data.split_table(), run_dir / "splits.csv")


def _best_checkpoint(trainer: pl.Trainer) -> str:
    """The best checkpoint by val_nll (the latest one if none was scored)."""
    best, latest = trainer.checkpoint_callbacks
    return best.best_model_path or latest.best_model_path


def _metrics(
    module: GampenModule, data: TrainingData, trainer: pl.Trainer, best: str
) -> dict[str, Any]:
    """Validation NLL of the model and of the constant baseline, and the training history."""
    val_nll = _validation_nll(module, data)
    return {
        "val_nll": val_nll,
        "val_nll_baseline": _baseline_nll(data),
        "best_checkpoint": Path(best).name,
        "epochs_trained": int(trainer.current_epoch),
        "n_train": len(data.rows["train"]),
        "n_val": len(data.rows["val"]),
        "n_test": len(data.rows["test"]),
    }


@torch.no_grad()
def _validation_nll(module: GampenModule, data: TrainingData) -> float:
    """Mean NLL over the validation split of what the model predicts (as ``val_nll``)."""
    net = module.net.eval()
    total, count = 0.0, 0
    for i, batch in enumerate(data.val_dataloader(rank=0, world=1)):
        loss = module.validation_nll(
            batch["image"], batch["target"], i, reduction="sum", scalars=batch["scalars"]
        )
        total += float(loss)
        count += len(batch["index"])
    net.eval()
    return total / count


def _baseline_nll(data: TrainingData) -> float:
    """NLL on the validation split of one Gaussian with the training mean and covariance."""
    train = torch.as_tensor(data.train_targets)
    mean = train.mean(0)
    cov = torch.atleast_2d(torch.cov(train.T)) + 1e-9 * torch.eye(train.shape[1])
    val = torch.as_tensor(data.val_targets)
    scale = torch.linalg.cholesky(cov).expand(len(val), -1, -1)
    return float(gaussian_nll(mean.expand_as(val), scale, val))


def _seen_ids(data: TrainingData, seen: np.ndarray) -> np.ndarray | None:
    """The object_id values of the rows ``seen`` (None: the catalog has no such column)."""
    ids = data.catalog.given_ids
    return None if ids is None else ids[seen]


def _provenance(
    config: TrainConfig, data: TrainingData, run_dir: Path, seconds: float, base: Bundle | None
) -> dict[str, Any]:
    """Where the model came from: command, config, data hash, versions, time; with
    ``--init-from``, the marks of the galaxies the starting bundle learnt from
    (``earlier``), so that calibration refuses those too.

    File names only, never this machine's absolute paths: bundles are shared.
    """
    source = Path(config.catalog)
    seen = np.sort(np.concatenate([data.rows["train"], data.rows["val"]]))
    return {
        "command": " ".join(["gampen", *sys.argv[1:]]),
        "config": config.to_dict(),
        "data": source.name,
        "data_sha256": file_sha256(source) if source.is_file() else None,
        "splits": f"{run_dir.name}/splits.csv",
        "init_from": config.init_from,
        "gampen_version": __version__,
        "torch_version": torch.__version__,
        "lightning_version": pl.__version__,
        "training_seconds": round(seconds, 1),
        **training_marks(data.label_values[seen], _seen_ids(data, seen), source),
        **({"earlier": earlier_marks(base.provenance)} if base is not None else {}),
    }
