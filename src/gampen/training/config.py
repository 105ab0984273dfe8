"""Training configuration: a validated dataclass, YAML presets shipped in the package.

Precedence, lowest first: the dataclass defaults, the preset (``--preset``, default
``default``), the user's YAML (``--config``), then every command-line flag given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gampen.checks import check_choice, check_float, check_int, check_known_fields
from gampen.data.labels import LOGIT_EPS
from gampen.data.scalars import ScalarInputs
from gampen.errors import ConfigError

WHERE = "training config"
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "none")
#: ``--rotations``: dihedral (exact quarter turns and flips), any angle, or none.
ROTATION_MODES: tuple[str, ...] = ("dihedral", "any", "none")
LOSSES = ("nll", "diagonal", "mse", "moments", "mixture")
LOGGERS = ("csv", "tensorboard", "mlflow")
FREEZABLE = ("stn", "backbone")
#: ``--background``: none, or a plane fitted to the border removed first (data/background.py).
BACKGROUNDS = ("none", "border", "border-centred", "masked-centred")


@dataclass
class TrainConfig:
    """Everything ``gampen train`` needs; see ``gampen train --help`` for each field."""

    # data
    catalog: str = ""
    image_dir: str | None = None
    hdu: str | None = None
    bands: list[str] | None = None
    input_size: int = 96
    targets: list[str] = field(default_factory=lambda: ["bt", "r_e", "flux"])
    softening: list[float] = field(default_factory=lambda: [1.0])
    cache: bool | None = None
    pixel_scale: float | None = None
    zero_point: float | None = None
    # splits
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_column: str | None = None
    balance_on: str | None = None
    # network (fields of gampen.model.config.NetworkConfig, e.g. backbone, dropout, stn)
    network: dict[str, Any] = field(default_factory=dict)
    loss: str = "nll"
    train_passes: int = 8
    label_eps: float = LOGIT_EPS
    photometry: bool = False
    conditions: list[str] = field(default_factory=list)
    psf_image: bool = False
    psf_drop: float = 0.25
    background: str = "none"
    # optimisation
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "cosine"
    warmup_epochs: int = 1
    epochs: int = 30
    batch_size: int = 64
    gradient_clip: float = 5.0
    early_stopping_patience: int = 8
    # augmentation (training split only)
    flips: bool = True
    rotations: str = "dihedral"
    max_shift: float = 2.0
    # runtime
    out: str = ""
    run_dir: str | None = None
    resume: bool = False
    init_from: str | None = None
    freeze: list[str] = field(default_factory=list)
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    accelerator: str = "auto"
    num_workers: int = 0
    logger: list[str] = field(default_factory=lambda: ["csv", "tensorboard"])
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field, naming the field, the value and what is allowed."""
        check_int(WHERE, "input_size", self.input_size, 16, 1024)
        check_int(WHERE, "seed", self.seed, 0, 2**31 - 1)
        for name in ("val_fraction", "test_fraction"):
            check_float(WHERE, name, getattr(self, name), low=0.0, high=0.5)
        check_choice(WHERE, "loss", self.loss, LOSSES)
        check_int(WHERE, "train_passes", self.train_passes, 2, 256)
        check_float(
            WHERE, "label_eps", self.label_eps, low=0.0, high=0.5, low_open=True, high_open=True
        )
        check_choice(WHERE, "optimizer", self.optimizer, OPTIMIZERS)
        check_choice(WHERE, "schedule", self.schedule, SCHEDULES)
        check_float(WHERE, "lr", self.lr, low=0.0, high=10.0, low_open=True)
        check_float(WHERE, "weight_decay", self.weight_decay, low=0.0, high=1.0)
        check_float(WHERE, "momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_int(WHERE, "warmup_epochs", self.warmup_epochs, 0, 10_000)
        check_int(WHERE, "epochs", self.epochs, 1, 100_000)
        check_int(WHERE, "batch_size", self.batch_size, 1, 65_536)
        check_float(WHERE, "gradient_clip", self.gradient_clip, low=0.0, high=1e6)
        check_int(WHERE, "early_stopping_patience", self.early_stopping_patience, 0, 100_000)
        check_float(WHERE, "max_shift", self.max_shift, low=0.0, high=self.input_size / 4)
        if isinstance(self.rotations, bool):  # configs written before the modes existed
            self.rotations = "any" if self.rotations else "none"
        check_choice(WHERE, "rotations", self.rotations, ROTATION_MODES)
        self.scalars  # noqa: B018 (validates the conditions)
        check_float(WHERE, "psf_drop", self.psf_drop, low=0.0, high=1.0, high_open=True)
        check_choice(WHERE, "background", self.background, BACKGROUNDS)
        check_int(WHERE, "num_nodes", self.num_nodes, 1, 100_000)
        check_int(WHERE, "num_workers", self.num_workers, 0, 256)
        if not self.targets:
            raise ConfigError(f"{WHERE} field 'targets' is empty", allowed="one or more columns")
        for name in self.logger:
            check_choice(WHERE, "logger", name, LOGGERS)
        for name in self.freeze:
            check_choice(WHERE, "freeze", name, FREEZABLE)
        if self.freeze and not self.init_from:
            raise ConfigError(
                f"{WHERE}: 'freeze' needs 'init_from' (a trained bundle)", value=self.freeze
            )
        if self.balance_on is not None and self.balance_on not in self.targets:
            raise ConfigError(
                f"{WHERE} field 'balance_on' must be a target",
                value=self.balance_on,
                allowed=self.targets,
            )

    @property
    def scalars(self) -> ScalarInputs:
        """The per-galaxy numbers given to the network beside the image."""
        return ScalarInputs(
            photometry=bool(self.photometry),
            conditions=tuple(self.conditions),
            psf_image=bool(self.psf_image),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML safe) of every field."""
        return dataclasses.asdict(self)


def preset_names() -> list[str]:
    """Names of the training presets shipped with gampen."""
    folder = resources.files("gampen.training") / "presets"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_config(
    *, preset: str = "default", config_file: str | Path | None = None, overrides: dict[str, Any]
) -> TrainConfig:
    """Merge preset, user YAML and overrides (``None`` values are ignored) into a config."""
    if preset not in preset_names():
        raise ConfigError("unknown training preset", value=preset, allowed=preset_names())
    text = (resources.files("gampen.training") / "presets" / f"{preset}.yaml").read_text()
    merged = _read_yaml(text, f"preset {preset}")
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        user = _read_yaml(path.read_text(), str(path))
        network = {**merged.get("network", {}), **user.pop("network", {})}
        merged.update(user, network=network)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    check_known_fields(WHERE, merged, [f.name for f in dataclasses.fields(TrainConfig)])
    return TrainConfig(**merged)


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse a YAML mapping, with the source named in any error."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of field: value", value=type(data).__name__
        )
    return data
