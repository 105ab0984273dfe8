"""An out-of-distribution score per galaxy: how far its image's features lie from those of
the galaxies the model knows, in units of the flagging threshold.

The features are the network's deterministic head input (the backbone's last hidden layer
beside the encoded scalar inputs, dropout off): everything the Gaussian head bases its
answer on.  Their distribution over in-distribution galaxies (``gampen calibrate``'s
fitting half) is modelled as a Gaussian whose covariance is its ``k`` leading principal
components plus an isotropic rest (probabilistic PCA, Tipping & Bishop 1999); a galaxy's
score is its Mahalanobis distance under that model over the distance that
``1 - QUANTILE`` of the fitting galaxies exceed.  So a score above 1 (the
``OUT_OF_DISTRIBUTION`` flag) marks ~0.3 % of galaxies like the calibration set, and
images the network has never seen the like of (a residual sky, a PSF of another shape,
artefacts) score high even where the network's own spread does not grow.

The model is numpy only: the bundle (:mod:`gampen.model.bundle`) reads and checks the one
stored in its ``calibration.ood``, ``gampen calibrate`` fits it and ``gampen predict``
scores the features :func:`gampen.infer.sampling.posterior_samples` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Share of in-distribution galaxies the threshold keeps unflagged.  At 0.995 the shipped
#: model flagged 0.7-1.0 % of fresh clean sets (a fitting set's extreme quantile
#: generalises with a gap), too near the 1 % a clean survey may lose; at 0.997, 0.3-0.4 %.
QUANTILE = 0.997
#: Principal components modelled individually (the rest share one variance).
COMPONENTS = 16
#: Fitting galaxies per modelled component (fewer galaxies, fewer components).
GALAXIES_PER_COMPONENT = 50


@dataclass(frozen=True)
class OodModel:
    """Mean, leading components, their variances, the rest's variance and the threshold."""

    mean: np.ndarray  #: (d,)
    components: np.ndarray  #: (k, d), orthonormal rows
    variances: np.ndarray  #: (k,)
    rest: float  #: variance of each remaining direction
    threshold: float  #: distance with a score of 1

    @classmethod
    def fit(cls, features: np.ndarray, *, components: int = COMPONENTS) -> OodModel:
        """The model of ``features`` (n, d), with its threshold at :data:`QUANTILE`."""
        x = np.asarray(features, dtype=np.float64)
        mean = x.mean(axis=0)
        centred = x - mean
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        # each modelled direction needs its variance measured: ~50 galaxies per component
        k = max(1, min(components, x.shape[1] - 1, len(x) // GALAXIES_PER_COMPONENT))
        total = singular**2 / (len(x) - 1)
        # a floor for directions with no spread (dead units, fewer galaxies than features),
        # so that a distance along them is large but finite
        floor = max(1e-6 * float(total.sum()) / x.shape[1], 1e-300)
        variances = np.maximum(total[:k], floor)
        rest = max(float(total[k:].sum()) / max(x.shape[1] - k, 1), floor)
        model = cls(mean, vt[:k], variances, rest, 1.0)
        distance = model.distance(x)
        return cls(mean, vt[:k], variances, rest, float(np.quantile(distance, QUANTILE)))

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance (n,) of each row of ``features`` under the model."""
        centred = np.asarray(features, dtype=np.float64) - self.mean
        projected = centred @ self.components.T
        rest = np.sum(centred**2, axis=1) - np.sum(projected**2, axis=1)
        squared = np.sum(projected**2 / self.variances, axis=1) + np.maximum(rest, 0) / self.rest
        return np.sqrt(squared)

    def score(self, features: np.ndarray) -> np.ndarray:
        """Distance over the threshold (n,): above 1 is out of distribution."""
        return self.distance(features) / self.threshold

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the bundle's ``calibration.ood`` (floats rounded to 6 digits)."""
        return {
            "quantile": QUANTILE,
            "mean": _rounded(self.mean),
            "components": [_rounded(row) for row in self.components],
            "variances": _rounded(self.variances),
            "rest": float(f"{self.rest:.6g}"),
            "threshold": float(f"{self.threshold:.6g}"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OodModel:
        """Rebuild from :meth:`to_dict`; a ``ValueError`` names what is malformed."""
        try:
            mean = np.asarray(data["mean"], dtype=np.float64)
            components = np.asarray(data["components"], dtype=np.float64).reshape(-1, mean.size)
            variances = np.asarray(data["variances"], dtype=np.float64)
            rest, threshold = float(data["rest"]), float(data["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"'ood' is malformed ({exc})") from exc
        sizes_ok = mean.ndim == 1 and variances.shape == (components.shape[0],)
        numbers = np.concatenate([mean, components.ravel(), variances, [rest, threshold]])
        if not (sizes_ok and np.isfinite(numbers).all() and np.all(variances > 0)):
            raise ValueError("'ood' needs finite values, one variance per component")
        if not (rest > 0 and threshold > 0):
            raise ValueError("'ood' needs a positive rest variance and threshold")
        return cls(mean, components, variances, rest, threshold)


def _rounded(values: np.ndarray) -> list[float]:
    """Values as a list of floats with 6 significant digits."""
    return [float(f"{v:.6g}") for v in np.asarray(values, dtype=np.float64).ravel()]
