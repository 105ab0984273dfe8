"""Joint calibration of all parameters at once, from the posterior samples.

Marginal coverage can be right while the correlations are wrong; two joint tests see it.
Both work in an unbounded space, the model's own (logit of ``eps + (1 - 2 eps) bt``, as
:class:`gampen.data.labels.LabelTransform`, with the bundle's ``eps`` when the model is
known; log of r_e and flux; :data:`gampen.data.labels.DEFAULT_TRANSFORMS`) and both reduce
a galaxy to one number ``f`` in [0, 1], uniform when the posterior is calibrated:

* **Mahalanobis regions.** ``f`` is the rank of the truth's Mahalanobis distance (under
  the galaxy's sample mean and covariance) among the samples' own distances
  (:func:`gampen.calibration.ranks.mahalanobis_fraction`, which ``gampen calibrate``'s
  check uses too).  The truth lies in the ``a`` region (the smallest ellipsoids holding a
  fraction ``a`` of the samples) exactly when ``f < a``; too-wide posteriors over-cover,
  too-narrow ones under-cover.
* **TARP** (Lemos et al. 2023, ICML, "Sampling-based accuracy testing of posterior
  estimators").  Each galaxy gets a random reference point (uniform over the box the truths
  span, in coordinates standardised by the truths); ``f`` is the fraction of samples closer
  to the reference than the truth is.  Its expected coverage probability
  ``ECP(a) = mean(f < a)`` equals ``a`` for a calibrated posterior.  A too-wide posterior
  gives an S-shaped curve below the diagonal at small ``a`` and above it at large ``a``.

Ranks are randomised over ties, as the marginal PIT is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gampen.calibration.ranks import randomised_pit, share_below
from gampen.data.labels import DEFAULT_TRANSFORMS, LOGIT_EPS
from gampen.evaluation.marginal import LEVEL_GRID, CoverageCurve, binomial_band

#: The joint region levels reported by name.
REPORTED_LEVELS: dict[str, float] = {"68": 0.68, "95": 0.95}


@dataclass
class TarpFrame:
    """Standardisation of the unbounded space and one reference point per galaxy."""

    centre: np.ndarray
    scale: np.ndarray
    references: np.ndarray

    @classmethod
    def draw(cls, truth: np.ndarray, *, rng: np.random.Generator) -> TarpFrame:
        """References uniform over the box of the standardised truths (n, k)."""
        centre = np.nanmean(truth, axis=0)
        spread = np.nanstd(truth, axis=0)
        scale = np.where(spread > 0, spread, 1.0)
        z = (truth - centre) / scale
        low, high = np.nanmin(z, axis=0), np.nanmax(z, axis=0)
        return cls(centre, scale, rng.uniform(low, high, size=truth.shape))

    def rows(self, rows: slice | np.ndarray) -> TarpFrame:
        """The same frame with the references of some galaxies only."""
        return TarpFrame(self.centre, self.scale, self.references[rows])


def to_unbounded(
    values: np.ndarray, params: Sequence[str], *, eps: float = LOGIT_EPS
) -> np.ndarray:
    """Physical values (..., k) in the joint tests' space: logit of ``eps + (1 - 2 eps) v``
    (the label transform's, finite at 0 and 1), log, or as they are; NaN off the domain."""
    out = np.array(values, dtype=np.float64, copy=True)
    for j, name in enumerate(params):
        kind = DEFAULT_TRANSFORMS.get(name, "identity")
        with np.errstate(invalid="ignore", divide="ignore"):
            if kind == "logit":
                v = out[..., j]
                p = eps + (1 - 2 * eps) * np.where((v >= 0) & (v <= 1), v, np.nan)
                out[..., j] = np.log(p) - np.log1p(-p)
            elif kind == "log":
                v = out[..., j]
                out[..., j] = np.where(v > 0, np.log(np.where(v > 0, v, 1.0)), np.nan)
    return out


def tarp_fraction(
    samples: np.ndarray,
    truth: np.ndarray,
    frame: TarpFrame,
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    """Fraction (b,) of samples closer to each galaxy's reference than its truth is.

    ``frame`` holds the references of these ``b`` galaxies (see :meth:`TarpFrame.rows`).
    """
    x = (samples - frame.centre) / frame.scale
    t = (truth - frame.centre) / frame.scale
    d_samples = np.linalg.norm(x - frame.references[:, None, :], axis=2)
    d_truth = np.linalg.norm(t - frame.references, axis=1)
    return randomised_pit(d_samples[:, :, None], d_truth[:, None], rng=rng)[:, 0]


def curve_below(fraction: np.ndarray, levels: np.ndarray = LEVEL_GRID) -> CoverageCurve:
    """Coverage ``mean(f < a)`` at each level ``a``, with the binomial band."""
    n = int(np.isfinite(fraction).sum())
    lo, hi = binomial_band(levels, n)
    return CoverageCurve(np.asarray(levels), share_below(fraction, levels), n, lo, hi)


def reported(curve: CoverageCurve) -> dict[str, float]:
    """The curve at the named levels, e.g. ``{"68": 0.70, "95": 0.96}``."""
    return {name: curve.at(level) for name, level in REPORTED_LEVELS.items()}
