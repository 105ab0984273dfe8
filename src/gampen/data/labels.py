"""Label transforms: physical parameters <-> the standardised space the network predicts in.

Each target first goes through a fixed transform that makes it unbounded and roughly
symmetric — ``logit`` for fractions such as ``bt``, ``log`` (natural) for positive scales
such as ``r_e`` and ``flux``, ``identity`` otherwise — and is then standardised with a
mean and standard deviation fitted on the training split only.  Prediction inverts the
whole chain sample by sample, so intervals are computed in physical units.

The logit is applied to ``eps + (1 - 2 eps) * bt`` with ``eps = 1e-3``: bt = 0 and 1 map to
finite values (logit(1e-3) = -6.9) and the map is exactly invertible on all of [0, 1].
The inverse clips to [0, 1], so posterior samples are always physical fractions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gampen.errors import CatalogError, ConfigError

#: Default transform per well-known parameter; anything else is left as it is.
DEFAULT_TRANSFORMS: dict[str, str] = {"bt": "logit", "r_e": "log", "flux": "log"}
TRANSFORM_KINDS: tuple[str, ...] = ("logit", "log", "identity")
LOGIT_EPS: float = 1e-3


@dataclass
class LabelTransform:
    """Per-parameter transform followed by standardisation; JSON round-trippable."""

    names: tuple[str, ...]
    kinds: tuple[str, ...] = ()
    eps: float = LOGIT_EPS
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.ones(0))

    def __post_init__(self) -> None:
        self.names = tuple(self.names)
        self.kinds = tuple(self.kinds) or tuple(
            DEFAULT_TRANSFORMS.get(n, "identity") for n in self.names
        )
        if len(self.kinds) != len(self.names):
            raise ConfigError(
                "one transform per parameter needed",
                value=self.kinds,
                allowed=f"{len(self.names)} entries",
            )
        for name, kind in zip(self.names, self.kinds, strict=True):
            if kind not in TRANSFORM_KINDS:
                raise ConfigError(
                    f"unknown transform for '{name}'", value=kind, allowed=TRANSFORM_KINDS
                )
        if not 0 < self.eps < 0.5:
            raise ConfigError("logit epsilon out of range", value=self.eps, allowed="(0, 0.5)")
        k = len(self.names)
        self.mean = np.zeros(k) if len(self.mean) == 0 else np.asarray(self.mean, dtype=np.float64)
        self.std = np.ones(k) if len(self.std) == 0 else np.asarray(self.std, dtype=np.float64)

    @classmethod
    def fit(
        cls,
        names: Sequence[str],
        values: np.ndarray,
        *,
        kinds: Sequence[str] = (),
        eps: float = LOGIT_EPS,
    ) -> LabelTransform:
        """Fit the standardisation on ``values`` (n, k), normally the training split."""
        transform = cls(names=tuple(names), kinds=tuple(kinds), eps=eps)
        z = transform._transform(np.asarray(values, dtype=np.float64))
        transform.mean = z.mean(axis=0)
        std = z.std(axis=0)
        transform.std = np.where(std > 0, std, 1.0)
        return transform

    def forward(self, values: np.ndarray) -> np.ndarray:
        """Physical values (..., k) -> standardised network space (float64)."""
        return (self._transform(np.asarray(values, dtype=np.float64)) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Standardised values (..., k) -> physical units (float64); bt clipped to [0, 1]."""
        t = np.asarray(z, dtype=np.float64) * self.std + self.mean
        out = np.empty_like(t)
        for j, kind in enumerate(self.kinds):
            if kind == "logit":
                p = 0.5 * (1.0 + np.tanh(0.5 * t[..., j]))  # stable sigmoid
                out[..., j] = np.clip((p - self.eps) / (1.0 - 2.0 * self.eps), 0.0, 1.0)
            elif kind == "log":
                out[..., j] = np.exp(t[..., j])
            else:
                out[..., j] = t[..., j]
        return out

    def limits(self, j: int) -> tuple[float, float]:
        """The standardised values of a logit parameter's ends, 0 and 1: the network's
        samples beyond them invert to exactly 0 or 1 (a pure disk or bulge)."""
        if self.kinds[j] != "logit":
            raise ConfigError("only a logit parameter has ends", value=self.names[j])
        end = float(np.log(1.0 - self.eps) - np.log(self.eps))
        return (-end - self.mean[j]) / self.std[j], (end - self.mean[j]) / self.std[j]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description, stored in the model bundle."""
        return {
            "names": list(self.names),
            "kinds": list(self.kinds),
            "eps": self.eps,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelTransform:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            names=tuple(data["names"]),
            kinds=tuple(data["kinds"]),
            eps=float(data["eps"]),
            mean=np.asarray(data["mean"]),
            std=np.asarray(data["std"]),
        )

    def _transform(self, values: np.ndarray) -> np.ndarray:
        """Apply the per-parameter transforms, checking each value is in its domain."""
        if values.shape[-1] != len(self.names):
            raise ConfigError(
                "label array has the wrong number of columns",
                value=values.shape[-1],
                allowed=f"{len(self.names)} ({self.names})",
            )
        out = np.empty_like(values)
        for j, (name, kind) in enumerate(zip(self.names, self.kinds, strict=True)):
            v = values[..., j]
            if kind == "logit":
                _check_domain(name, v, (v >= 0) & (v <= 1), "values in [0, 1]")
                p = self.eps + (1.0 - 2.0 * self.eps) * v
                out[..., j] = np.log(p) - np.log1p(-p)
            elif kind == "log":
                _check_domain(name, v, v > 0, "positive values")
                out[..., j] = np.log(v)
            else:
                out[..., j] = v
        return out


def _check_domain(name: str, values: np.ndarray, ok: np.ndarray, allowed: str) -> None:
    """Raise a clear error naming the column and a bad value if any value is outside."""
    if not np.all(ok):
        bad = values[~ok].ravel()
        raise CatalogError(
            f"label '{name}' has {bad.size} value(s) outside its domain",
            value=float(bad[0]),
            allowed=allowed,
        )
