"""The network's hyper-parameters: one validated, JSON-round-trippable dataclass.

:class:`NetworkConfig` is everything needed to rebuild a :class:`gampen.model.network.GampenNet`
(it is stored verbatim as ``network`` in the model bundle's ``gampen.json``).  Fields
left at ``None`` take the chosen backbone's default when the config is created, so
:meth:`NetworkConfig.to_dict` always records concrete values.

Backbone defaults:

============  =========================  ========  =======  ============
backbone      widths                     hidden    dropout  dropout_from
============  =========================  ========  =======  ============
``compact``   (32, 64, 128, 256)         128       0.01     3
``vgg16``     (64, 128, 256, 512, 512)   4096      0.0004   (n/a)
============  =========================  ========  =======  ============

``vgg16``'s rate is the one GaMPEN's released HSC models use.  At 96x96 its dropout
layers see ~1.65 M activations, so ~660 are dropped per pass; the compact net's see
~85 k, and 0.01 drops a similar number (~850).  Either rate is a calibration knob to tune
on validation coverage, not a physical constant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gampen.checks import check_choice, check_float, check_int, check_known_fields
from gampen.errors import ConfigError

WHERE = "network config"

BACKBONES: tuple[str, ...] = ("compact", "vgg16")
STN_KINDS: tuple[str, ...] = ("zoom", "affine", "none")
COVARIANCES: tuple[str, ...] = ("full", "diagonal")

#: Per-backbone defaults for the fields left at ``None``.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "compact": {"widths": (32, 64, 128, 256), "hidden": 128, "dropout": 0.1, "dropout_from": 5},
    "vgg16": {"widths": (64, 128, 256, 512, 512), "hidden": 4096, "dropout": 0.0004},
}
#: Smallest input each backbone accepts (its total down-sampling factor).
_MIN_INPUT: dict[str, int] = {"compact": 16, "vgg16": 32}
_N_WIDTHS: dict[str, int] = {"compact": 4, "vgg16": 5}
_MAX_INPUT = 1024


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of a GaMPEN network; invalid values raise :class:`ConfigError`.

    Attributes:
        backbone: ``"compact"`` (small residual CNN, fast on CPU) or ``"vgg16"`` (GaMPEN's).
        n_bands: input channels, one per photometric band.
        input_size: side of the square input in pixels.
        n_params: number of predicted parameters ``k``.
        dropout: dropout rate of every dropout layer (MC dropout uses the same rate).
        dropout_from: compact only; first residual stage (1-based) preceded by dropout;
            ``len(widths) + 1`` keeps dropout in the classifier only.
        widths: channel widths: one per residual stage (compact) or per VGG block (vgg16).
        hidden: width of the fully connected layer(s) before the Gaussian head.
        stn: ``"zoom"`` (GaMPEN's one-parameter zoom), ``"affine"`` (6 parameters), ``"none"``.
        zoom_min, zoom_max: bounds of the STN zoom (side of the sampled window over the
            side of the input); must bracket 1 so the STN can start at the identity.
        stn_widths: channel widths of the STN's two localisation convolutions.
        covariance: ``"full"`` (Cholesky factor) or ``"diagonal"`` (independent parameters).
        min_scale: floor added to the Cholesky diagonal (standardised units).
        n_scalars: per-galaxy numbers given beside the image (aperture photometry and
            catalog conditions, :mod:`gampen.data.scalars`); 0 for an image-only network.
    """

    backbone: str = "compact"
    n_bands: int = 1
    input_size: int = 96
    n_params: int = 3
    dropout: float | None = None
    dropout_from: int | None = None
    widths: tuple[int, ...] | None = None
    hidden: int | None = None
    stn: str = "zoom"
    zoom_min: float = 0.25
    zoom_max: float = 1.25
    stn_widths: tuple[int, int] = (16, 32)
    covariance: str = "full"
    min_scale: float = 1e-3
    n_scalars: int = 0

    def __post_init__(self) -> None:
        check_choice(WHERE, "backbone", self.backbone, BACKBONES)
        for name, value in _DEFAULTS[self.backbone].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("widths", "stn_widths"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self._validate()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists) that :meth:`from_dict` reads back."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        """Build from a dict such as :meth:`to_dict`'s; unknown keys are refused."""
        check_known_fields(WHERE, data, [f.name for f in dataclasses.fields(cls)])
        return cls(**data)

    def _validate(self) -> None:
        """Check every field, naming the field, the value and the allowed range."""
        check_choice(WHERE, "stn", self.stn, STN_KINDS)
        check_choice(WHERE, "covariance", self.covariance, COVARIANCES)
        check_int(WHERE, "n_bands", self.n_bands, 1, 64)
        check_int(WHERE, "n_params", self.n_params, 1, 32)
        check_int(WHERE, "input_size", self.input_size, _MIN_INPUT[self.backbone], _MAX_INPUT)
        check_int(WHERE, "hidden", self.hidden, 1, 65536)
        check_int(WHERE, "n_scalars", self.n_scalars, 0, 4096)
        _check_widths("widths", self.widths, _N_WIDTHS[self.backbone])
        _check_widths("stn_widths", self.stn_widths, 2)
        check_float(WHERE, "dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        check_float(WHERE, "min_scale", self.min_scale, low=0.0, high=1.0, low_open=True)
        check_float(
            WHERE, "zoom_min", self.zoom_min, low=0.0, high=1.0, low_open=True, high_open=True
        )
        check_float(WHERE, "zoom_max", self.zoom_max, low=1.0, high=4.0, low_open=True)
        if self.backbone == "compact":
            check_int(WHERE, "dropout_from", self.dropout_from, 1, len(self.widths) + 1)
        elif self.dropout_from is not None:
            raise ConfigError(
                "dropout_from applies to the compact backbone only (vgg16 has dropout before "
                "every convolution but the first)",
                value=self.dropout_from,
                allowed="null",
            )


def _check_widths(name: str, value: tuple[Any, ...], length: int) -> None:
    """Refuse a width tuple of the wrong length or holding non-positive integers."""
    ok = len(value) == length and all(
        isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 8192 for w in value
    )
    if not ok:
        raise ConfigError(
            f"{WHERE} field '{name}' is invalid",
            value=list(value),
            allowed=f"{length} integers in [1, 8192]",
        )
