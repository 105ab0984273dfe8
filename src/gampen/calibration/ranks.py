"""Where the truth ranks among a posterior's samples: the maths that ``gampen calibrate``'s
check and ``gampen evaluate`` share (numpy only).

* :func:`randomised_pit` — the probability integral transform of each parameter, the
  truth's rank among the samples randomised over ties, so that it stays uniform for a
  calibrated posterior even with point masses (bt samples and truths at exactly 0 or 1).
* :func:`mahalanobis_fraction` — the rank of the truth's Mahalanobis distance (under the
  galaxy's sample mean and covariance) among the samples' own distances: the truth lies
  in the level-``a`` joint region (the smallest ellipsoid holding a fraction ``a`` of the
  samples) exactly when the fraction is below ``a``.
* :func:`share_below` — the share of such fractions below each level: the coverage of
  the regions.
"""

from __future__ import annotations

import numpy as np

#: Diagonal jitter of each sample covariance, relative to its mean variance.
_JITTER = 1e-9


def randomised_pit(
    samples: np.ndarray, truth: np.ndarray, *, rng: np.random.Generator
) -> np.ndarray:
    """PIT (n, k) of truths (n, k) under samples (n, S, k), uniform on [0, 1] if calibrated.

    The truth's rank among the samples is drawn uniformly among the tied positions, then
    spread uniformly over its rank cell, so ties (point masses) keep the PIT uniform.
    NaN samples or truths give NaN.
    """
    below = np.sum(samples < truth[:, None, :], axis=1)
    tied = np.sum(samples == truth[:, None, :], axis=1)
    rank = below + np.floor(rng.random(below.shape) * (tied + 1))
    pit = (rank + rng.random(below.shape)) / (samples.shape[1] + 1)
    bad = np.isnan(truth) | np.isnan(samples).any(axis=1)
    return np.where(bad, np.nan, pit)


def mahalanobis_fraction(
    samples: np.ndarray, truth: np.ndarray, *, rng: np.random.Generator
) -> np.ndarray:
    """Rank fraction (b,) of each truth's Mahalanobis distance among its samples' (b, S, k)."""
    _, s, k = samples.shape
    bad = np.isnan(samples).any(axis=(1, 2)) | np.isnan(truth).any(axis=1)
    x = np.where(bad[:, None, None], 0.0, samples)
    t = np.where(bad[:, None], 0.0, truth)
    mean = x.mean(axis=1)
    centred = x - mean[:, None, :]
    cov = np.einsum("bsi,bsj->bij", centred, centred) / max(s - 1, 1)
    scale = np.trace(cov, axis1=1, axis2=2) / k
    cov += (_JITTER * np.where(scale > 0, scale, 1.0))[:, None, None] * np.eye(k)
    chol = np.linalg.cholesky(cov)
    z_samples = np.linalg.solve(chol, centred.transpose(0, 2, 1))
    z_truth = np.linalg.solve(chol, (t - mean)[:, :, None])
    d_samples = np.sum(z_samples**2, axis=1)
    d_truth = np.sum(z_truth**2, axis=1)
    f = randomised_pit(d_samples[:, :, None], d_truth, rng=rng)[:, 0]
    return np.where(bad, np.nan, f)


def share_below(fraction: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Share (L,) of the finite ``fraction`` values below each level (L,): the coverage of
    the regions whose rank fractions they are (NaN at every level when none is finite)."""
    f = np.sort(np.asarray(fraction, dtype=float)[np.isfinite(fraction)])
    n = int(f.size)
    return np.searchsorted(f, levels, side="left") / n if n else np.full(len(levels), np.nan)
