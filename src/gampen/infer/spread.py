"""The recalibration map ``gampen predict`` applies to each galaxy's posterior samples.

Per parameter, in standardised label space, each galaxy's samples are standardised by
their own median ``m`` and standard deviation ``s``, ``t = (z - m) / s``, stretched by an
odd, increasing, piecewise-linear map and mapped back, ``z' = m + s g(t)``:

    g(t) = a t                                  for |t| <= c
    g(t) = a sign(t) (c + b (|t| - c))          beyond the knee c

``a`` widens (> 1) or narrows (< 1) the whole posterior; ``b`` changes the tails relative
to the core (``b = 1``: a plain rescaling, ``z' = m + a (z - m)``, covariance
``diag(a) C diag(a)``).  The map is monotone in every parameter, so it keeps each
posterior's ranks and correlation structure (its copula), and the samples it makes are
samples of a proper distribution, with a positive-definite covariance.  Pivoting on the
median keeps every galaxy's median, the catalog's point estimate, exactly where it was:
calibration changes how sure the posterior is, not where it sits.  ``gampen calibrate``
fits ``a`` and ``b`` (:mod:`gampen.evaluate.recalibrate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Default knee: where the tail slope takes over, in standard deviations of the posterior.
KNEE = 1.0


@dataclass(frozen=True)
class SpreadMap:
    """Core factors ``scale``, tail factors ``tail`` and knees ``knee`` (each (k,))."""

    scale: np.ndarray
    tail: np.ndarray = field(default_factory=lambda: np.ones(0))
    knee: float | np.ndarray = KNEE

    def __post_init__(self) -> None:
        scale = np.asarray(self.scale, dtype=np.float64)
        tail = np.ones_like(scale) if len(self.tail) == 0 else np.asarray(self.tail, np.float64)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "tail", tail)
        object.__setattr__(self, "knee", np.broadcast_to(np.asarray(self.knee, float), scale.shape))

    @classmethod
    def from_calibration(cls, calibration: dict, names: Sequence[str]) -> SpreadMap | None:
        """The map a bundle's ``calibration`` field describes, or ``None`` for the identity."""
        scale = [float(calibration["scale"][n]) for n in names]
        tail = [float(calibration.get("tail", {}).get(n, 1.0)) for n in names]
        if all(v == 1.0 for v in scale + tail):
            return None
        knee = calibration.get("knee", KNEE)
        knees = (
            [float(knee[n]) for n in names]
            if isinstance(knee, dict)
            else [float(knee)] * len(names)
        )
        return cls(np.array(scale), np.array(tail), np.array(knees))

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """Recalibrated samples (..., S, k): each galaxy's own median and spread are the pivot."""
        centre = np.median(samples, axis=-2, keepdims=True)
        sd = samples.std(axis=-2, keepdims=True)
        sd = np.where(sd > 0, sd, 1.0)
        return centre + sd * self.stretch((samples - centre) / sd)

    def stretch(self, t: np.ndarray) -> np.ndarray:
        """``g(t)`` for standardised offsets ``t`` (..., k)."""
        size = np.abs(t)
        beyond = self.knee + self.tail * (size - self.knee)
        return self.scale * np.sign(t) * np.where(size <= self.knee, size, beyond)
