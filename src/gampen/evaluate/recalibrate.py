"""Fit the recalibration of the full predictive distribution (``gampen calibrate``).

The posterior ``gampen predict`` reports is the mixture over MC-dropout passes.  Its
recalibration is the map of :mod:`gampen.infer.spread`: per parameter, a core factor ``a``
and a tail factor ``b`` stretch each galaxy's samples about their median, in units of
their own standard deviation.  Both are chosen on galaxies the model never trained on so that
the equal-tailed intervals hold the truth as often as they claim, over a grid of levels
from 2 % to 99.73 %: they minimise the mean squared difference between empirical and
nominal coverage, with the catalog's 68.27 / 95.45 / 99.73 % intervals weighted as much as
the rest of the grid together.  Coverage comes from the probability integral transform (PIT) of the
truth under the galaxy's own (uncalibrated) samples, so no Gaussian shape is assumed:
under the map, the truth's PIT is the mid-rank of ``g^-1(t_truth)`` among the samples'
standardised offsets, and level ``c`` covers the truth when ``|PIT - 1/2| <= c/2``.
The grid search runs coarse, then fine around the best cell, for each candidate knee.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gampen.errors import GampenValueError
from gampen.infer.spread import KNEE, SpreadMap

#: Nominal levels the fit matches: 2 %, 4 %, ..., 98 %, 99 %, then the catalog's 1, 2 and
#: 3 sigma intervals (68.27, 95.45, 99.73 %).
FIT_LEVELS: np.ndarray = np.concatenate([np.arange(1, 50) / 50, [0.99, 0.6827, 0.9545, 0.9973]])
#: Weights of the levels: the three intervals the catalog reports carry half of the loss
#: (astronomers read those), the grid the other half (the whole curve must stay close).
FIT_WEIGHTS: np.ndarray = np.concatenate([np.full(50, 1 / 50), np.full(3, 1 / 3)]) / 2
#: Coarse candidates: core factors 0.2-5 (4 % apart), tail factors 0.25-4 (10 % apart).
CORE_GRID: np.ndarray = np.exp(np.linspace(np.log(0.2), np.log(5.0), 83))
TAIL_GRID: np.ndarray = np.exp(np.linspace(np.log(0.25), np.log(4.0), 30))
#: Candidate knees (sd) where the tail factor takes over; the best is kept per parameter.
KNEES: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
#: The fine pass: +-1 coarse step in 9 steps each way.
FINE_STEPS = 9


@dataclass
class SpreadFit:
    """The fitted map and its coverage loss before and after, per parameter."""

    spread: SpreadMap
    loss_before: np.ndarray
    loss_after: np.ndarray


def pit(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mid-rank PIT (N,) of ``truth`` (N,) under ``samples`` (N, S): ties count one half."""
    samples, truth = np.asarray(samples), np.asarray(truth)[:, None]
    below = (samples < truth).sum(axis=1)
    tied = (samples == truth).sum(axis=1)
    return (below + 0.5 * tied) / samples.shape[1]


def coverage_from_pit(pit_values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Fraction of equal-tailed intervals at each level (L,) that hold the truth:
    ``|PIT - 1/2| <= level / 2``."""
    distance = np.sort(np.abs(np.asarray(pit_values) - 0.5))
    return np.searchsorted(distance, np.asarray(levels) / 2, side="right") / len(distance)


def fit_spread(samples: np.ndarray, truth: np.ndarray) -> SpreadFit:
    """The map that best calibrates samples (N, S, k) given truths (N, k), standardised."""
    samples, truth = np.asarray(samples, np.float64), np.asarray(truth, np.float64)
    if samples.ndim != 3 or truth.shape != (samples.shape[0], samples.shape[2]):
        raise GampenValueError(
            "samples must be (galaxies, samples, params) and truth (galaxies, params)",
            value=(samples.shape, truth.shape),
        )
    if samples.shape[0] < 20:
        raise GampenValueError(
            "too few galaxies to fit a calibration", value=samples.shape[0], allowed=">= 20"
        )
    centre = np.median(samples, axis=1)
    sd = samples.std(axis=1)
    sd = np.where(sd > 0, sd, 1.0)
    k = samples.shape[2]
    core, tail, knee = np.ones(k), np.ones(k), np.full(k, KNEE)
    before, after = np.zeros(k), np.full(k, np.inf)
    for j in range(k):
        offsets = np.sort((samples[:, :, j] - centre[:, j : j + 1]) / sd[:, j : j + 1], axis=1)
        t_truth = (truth[:, j] - centre[:, j]) / sd[:, j]
        before[j] = _coverage_losses(offsets, t_truth, np.ones(1), np.ones(1), KNEE)[0]
        for bend in KNEES:
            a, b, loss = _grid_search(offsets, t_truth, CORE_GRID, TAIL_GRID, bend)
            step_a, step_b = CORE_GRID[1] / CORE_GRID[0], TAIL_GRID[1] / TAIL_GRID[0]
            fine_a = a * step_a ** np.linspace(-1, 1, 2 * FINE_STEPS + 1)
            fine_b = b * step_b ** np.linspace(-1, 1, 2 * FINE_STEPS + 1)
            a, b, loss = _grid_search(offsets, t_truth, fine_a, fine_b, bend)
            if loss < after[j]:
                core[j], tail[j], knee[j], after[j] = a, b, bend, loss
    return SpreadFit(SpreadMap(core, tail, knee), loss_before=before, loss_after=after)


def inverse_stretch(
    u: np.ndarray, core: np.ndarray, tail: np.ndarray, knee: float | np.ndarray = KNEE
) -> np.ndarray:
    """``g^-1(u)`` of the map with factors ``core``, ``tail`` and ``knee`` (broadcast)."""
    size = np.abs(u) / core
    return np.sign(u) * np.where(size <= knee, size, knee + (size - knee) / tail)


def _grid_search(
    offsets: np.ndarray, t_truth: np.ndarray, cores: np.ndarray, tails: np.ndarray, knee: float
) -> tuple[float, float, float]:
    """The (core, tail) pair of the grid with the smallest coverage loss, and that loss."""
    a, b = (g.ravel() for g in np.meshgrid(cores, tails, indexing="ij"))
    losses = _coverage_losses(offsets, t_truth, a, b, knee)
    best = int(np.argmin(losses))
    return float(a[best]), float(b[best]), float(losses[best])


def _coverage_losses(
    offsets: np.ndarray, t_truth: np.ndarray, cores: np.ndarray, tails: np.ndarray, knee: float
) -> np.ndarray:
    """Weighted mean squared coverage error over :data:`FIT_LEVELS` per candidate map (G,).

    ``offsets`` (N, S) are each galaxy's sorted standardised sample offsets; under a map
    the truth's PIT is the mid-rank of ``g^-1(t_truth)`` among them (binary search).
    """
    n, s = offsets.shape
    thresholds = inverse_stretch(t_truth[:, None], cores[None, :], tails[None, :], knee)
    pits = np.empty((n, len(cores)))
    for i in range(n):
        left = np.searchsorted(offsets[i], thresholds[i], side="left")
        right = np.searchsorted(offsets[i], thresholds[i], side="right")
        pits[i] = 0.5 * (left + right) / s
    covered = np.stack([coverage_from_pit(pits[:, g], FIT_LEVELS) for g in range(len(cores))])
    return ((covered - FIT_LEVELS[None, :]) ** 2) @ FIT_WEIGHTS
