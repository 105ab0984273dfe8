"""Pixel normalisation: a per-band arcsinh stretch (GaMPEN's default is arcsinh(x)).

``y = arcsinh(x / a_b)`` with softening scale ``a_b`` per band: linear for faint pixels
(|x| << a) and logarithmic for bright ones, so galaxy cores and outskirts both stay
visible to the network.  Zero stays zero, so replaced NaN pixels are 0 after it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gampen.errors import ConfigError


@dataclass(frozen=True)
class ArcsinhStretch:
    """``arcsinh(x / softening[b])`` for each band ``b``; one value applies to all bands."""

    softening: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        values = tuple(float(v) for v in np.atleast_1d(self.softening))
        if not values or not all(np.isfinite(v) and v > 0 for v in values):
            raise ConfigError("stretch softening must be positive", value=values, allowed="> 0")
        object.__setattr__(self, "softening", values)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Stretch a (bands, y, x) array; returns a new float32 array."""
        scale = self._per_band(image.shape[0])
        return np.arcsinh(image / scale[:, None, None]).astype(np.float32, copy=False)

    def inverse(self, stretched: np.ndarray) -> np.ndarray:
        """Undo the stretch: ``a_b * sinh(y)``."""
        scale = self._per_band(stretched.shape[0])
        return (np.sinh(stretched) * scale[:, None, None]).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description, stored in the model bundle."""
        return {"kind": "arcsinh", "softening": list(self.softening)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArcsinhStretch:
        """Rebuild from :meth:`to_dict` output."""
        if data.get("kind") != "arcsinh":
            raise ConfigError("unknown stretch kind", value=data.get("kind"), allowed="'arcsinh'")
        return cls(softening=tuple(data["softening"]))

    def _per_band(self, n_bands: int) -> np.ndarray:
        """Softening scales broadcast to ``n_bands``."""
        if len(self.softening) == 1:
            return np.full(n_bands, self.softening[0], dtype=np.float32)
        if len(self.softening) != n_bands:
            raise ConfigError(
                "stretch has a softening scale per band but the image has another band count",
                value=n_bands,
                allowed=f"{len(self.softening)} bands",
            )
        return np.asarray(self.softening, dtype=np.float32)
