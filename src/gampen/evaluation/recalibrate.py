"""Fit the recalibration of the full predictive distribution (``gampen calibrate``).

The posterior ``gampen predict`` reports is the mixture over MC-dropout passes.  Its
recalibration is the map of :mod:`gampen.infer.spread`: per parameter, a core factor ``a``
and a tail factor ``b`` stretch each galaxy's samples about their median, in units of
their own standard deviation, times ``(s / s_ref) ** p`` for a galaxy of width ``s``.
They are chosen on galaxies the model never trained on so that the equal-tailed intervals
hold the truth as often as they claim, over a grid of levels from 2 % to 99.73 %, *in each
quarter of the galaxies ranked by predicted width*: they minimise the mean squared
difference between empirical and nominal coverage, averaged over the quarters, with the
catalog's 68.27 / 95.45 / 99.73 % intervals weighted as much as the rest of the grid
together.  Matching coverage per width quarter, not only overall, is what pins the power
``p``: a network whose widths vary too little between easy and hard galaxies (crowded,
faint) is calibrated on average but over-covers the easy ones and under-covers the hard.
Coverage comes from the probability integral transform (PIT) of the truth under the
galaxy's own (uncalibrated) samples, so no Gaussian shape is assumed:
under the map, the truth's PIT is the mid-rank of ``g^-1(t_truth)`` among the samples'
standardised offsets, and level ``c`` covers the truth when ``|PIT - 1/2| <= c/2``.
The grid search runs coarse over (power, knee, core, tail), then fine around the best cell.
Last, with the marginal maps in place, the correlation shrink (:mod:`gampen.infer.spread`)
is chosen from a grid so that the joint Mahalanobis regions of all parameters hold the
truth as often as they claim (:func:`gampen.evaluation.joint.mahalanobis_fraction`), over
the same levels and weights.  Clean and crowded galaxies get maps of their own, and so,
within each, do faint and bright ones (:func:`fit_by_class`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gampen.errors import GampenValueError
from gampen.evaluation.joint import curve_below, mahalanobis_fraction
from gampen.infer.spread import KNEE, SpreadMap, brightness, shrink_correlations

#: Nominal levels the fit matches: 2 %, 4 %, ..., 98 %, 99 %, then the catalog's 1, 2 and
#: 3 sigma intervals (68.27, 95.45, 99.73 %).
FIT_LEVELS: np.ndarray = np.concatenate([np.arange(1, 50) / 50, [0.99, 0.6827, 0.9545, 0.9973]])
#: Weights of the levels: the three intervals the catalog reports carry half of the loss
#: (astronomers read those), the grid the other half (the whole curve must stay close).
FIT_WEIGHTS: np.ndarray = np.concatenate([np.full(50, 1 / 50), np.full(3, 1 / 3)]) / 2
#: Coarse candidates: core factors 0.2-5 (12 % apart), tail factors 0.25-4 (30 % apart).
CORE_GRID: np.ndarray = np.exp(np.linspace(np.log(0.2), np.log(5.0), 28))
TAIL_GRID: np.ndarray = np.exp(np.linspace(np.log(0.25), np.log(4.0), 10))
#: Candidate knees (sd) where the tail factor takes over; the best is kept per parameter.
KNEES: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
#: Candidate width powers (0: every galaxy's width scaled alike).
POWER_GRID: np.ndarray = np.linspace(-0.5, 1.5, 11)
#: The fine pass: core and tail +-1 coarse step in 6 steps each way, power +-1/2 step.
FINE_STEPS = 6
FINE_POWERS = 5
#: Candidate correlation shrinks: none, then 0.2 % to 50 % in even ratios (the joint
#: regions of highly correlated posteriors react to a few per cent).
SHRINK_GRID: np.ndarray = np.concatenate([[0.0], np.geomspace(0.002, 0.5, 24)])
#: Galaxies are ranked by predicted width and cut into this many equal groups (fewer,
#: of at least ``MIN_GROUP`` galaxies each, for small sets).
WIDTH_GROUPS = 4
MIN_GROUP = 20


#: Crowding index above which a galaxy counts as crowded
#: (:func:`gampen.data.scalars.crowding_index`): about the 90th percentile of lone
#: galaxies' index in the ``hsc`` preset, while most galaxies with a neighbour exceed it.
CROWDED = 0.1
#: Each group needs this many galaxies for a map of its own; else one map serves all.
MIN_CLASS = 200
#: The parameter whose predicted median splits each crowding class into faint and bright
#: galaxies, at the median of the calibration galaxies (faint galaxies' flux errors are
#: heavier-tailed than bright ones' of the same predicted width).
BRIGHTNESS = "flux"


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


@dataclass
class ClassFit:
    """The fit of one crowding class: ``main`` for its bright galaxies (for all of them
    when ``faint`` is ``None``), ``faint`` for those whose median sample of the brightness
    parameter is below ``below``."""

    main: SpreadFit
    faint: SpreadFit | None = None
    below: float | None = None


def fit_by_class(
    samples: np.ndarray, truth: np.ndarray, crowding: np.ndarray, brightness_param: int | None
) -> tuple[ClassFit, ClassFit | None]:
    """Fits for clean and for crowded galaxies (crowding index above :data:`CROWDED`), or
    one for all (and ``None``) when either group has fewer than :data:`MIN_CLASS`; each
    split again at the median brightness of all ``samples`` (the median sample of
    parameter ``brightness_param``; ``None``: no brightness split)."""
    below = None
    if brightness_param is not None:
        below = float(np.median(brightness(samples, brightness_param)))
    crowded = np.asarray(crowding) > CROWDED
    if min(crowded.sum(), (~crowded).sum()) < MIN_CLASS:
        return fit_by_brightness(samples, truth, brightness_param, below), None
    return (
        fit_by_brightness(samples[~crowded], truth[~crowded], brightness_param, below),
        fit_by_brightness(samples[crowded], truth[crowded], brightness_param, below),
    )


def fit_by_brightness(
    samples: np.ndarray, truth: np.ndarray, param: int | None, below: float | None
) -> ClassFit:
    """Maps for the galaxies whose median sample of ``param`` is below ``below`` and for
    the rest, or one map for all when ``param`` is ``None`` or either group has fewer than
    :data:`MIN_CLASS`."""
    if param is None or below is None:
        return ClassFit(fit_spread(samples, truth))
    faint = brightness(samples, param) < below
    if min(faint.sum(), (~faint).sum()) < MIN_CLASS:
        return ClassFit(fit_spread(samples, truth))
    return ClassFit(
        fit_spread(samples[~faint], truth[~faint]), fit_spread(samples[faint], truth[faint]), below
    )


def fit_spread(samples: np.ndarray, truth: np.ndarray) -> SpreadFit:
    """The map that best calibrates samples (N, S, k) given truths (N, k), standardised."""
    samples, truth = np.asarray(samples, np.float64), np.asarray(truth, np.float64)
    if samples.ndim != 3 or truth.shape != (samples.shape[0], samples.shape[2]):
        raise GampenValueError(
            "samples must be (galaxies, samples, params) and truth (galaxies, params)",
            value=(samples.shape, truth.shape),
        )
    if samples.shape[0] < MIN_GROUP:
        raise GampenValueError(
            "too few galaxies to fit a calibration",
            value=samples.shape[0],
            allowed=f">= {MIN_GROUP}",
        )
    centre = np.median(samples, axis=1)
    sd = samples.std(axis=1)
    sd = np.where(sd > 0, sd, 1.0)
    fits = [
        _fit_parameter(samples[:, :, j], truth[:, j], centre[:, j], sd[:, j])
        for j in range(samples.shape[2])
    ]
    spread = SpreadMap(*(np.array(values) for values in zip(*(f[0] for f in fits), strict=True)))
    if samples.shape[2] > 1:
        spread = replace(spread, shrink=fit_shrink(spread.apply(samples), truth))
    return SpreadFit(
        spread,
        loss_before=np.array([f[1] for f in fits]),
        loss_after=np.array([f[2] for f in fits]),
    )


def fit_shrink(calibrated: np.ndarray, truth: np.ndarray) -> float:
    """The correlation shrink of :data:`SHRINK_GRID` whose joint Mahalanobis regions best
    match their levels for samples (N, S, k) already calibrated parameter by parameter."""
    losses = [joint_loss(shrink_correlations(calibrated, a), truth) for a in SHRINK_GRID]
    return float(SHRINK_GRID[int(np.argmin(losses))])


def joint_loss(samples: np.ndarray, truth: np.ndarray) -> float:
    """Weighted mean squared error of the joint regions' coverage over :data:`FIT_LEVELS`."""
    covered = joint_coverage(samples, truth, FIT_LEVELS)
    return float(((covered - FIT_LEVELS) ** 2) @ FIT_WEIGHTS)


def joint_coverage(samples: np.ndarray, truth: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Share of truths inside the joint Mahalanobis region of each level (L,) of samples
    (N, S, k); ties are broken by a fixed random stream, so candidates compare alike."""
    fraction = mahalanobis_fraction(samples, truth, rng=np.random.default_rng(0))
    return curve_below(fraction, np.asarray(levels)).empirical


def _fit_parameter(
    z: np.ndarray, truth: np.ndarray, centre: np.ndarray, sd: np.ndarray
) -> tuple[tuple[float, float, float, float, float], float, float]:
    """One parameter's (core, tail, knee, power, width_ref), loss before and after."""
    width_ref = float(np.median(sd))
    width = sd / width_ref
    n_groups = min(WIDTH_GROUPS, len(width) // MIN_GROUP)
    cuts = np.quantile(width, np.arange(1, n_groups) / n_groups)
    groups = np.searchsorted(cuts, width)
    offsets = np.sort((z - centre[:, None]) / sd[:, None], axis=1)
    t_truth = (truth - centre) / sd
    one = np.ones(1)
    before = float(_coverage_losses(offsets, t_truth, one, one, KNEE, groups)[0])
    best = (np.inf, 1.0, 1.0, KNEE, 0.0)
    for power in POWER_GRID:
        for knee in KNEES:
            a, b, loss = _grid_search(
                offsets, t_truth / width**power, CORE_GRID, TAIL_GRID, knee, groups
            )
            if loss < best[0]:
                best = (loss, a, b, knee, float(power))
    _, a, b, knee, power = best
    step_a, step_b = CORE_GRID[1] / CORE_GRID[0], TAIL_GRID[1] / TAIL_GRID[0]
    step_p = POWER_GRID[1] - POWER_GRID[0]
    fine = np.linspace(-1, 1, 2 * FINE_STEPS + 1)
    for p in power + step_p * np.linspace(-0.5, 0.5, FINE_POWERS):
        fa, fb, fine_loss = _grid_search(
            offsets, t_truth / width**p, a * step_a**fine, b * step_b**fine, knee, groups
        )
        if fine_loss < best[0]:
            best = (fine_loss, fa, fb, knee, float(p))
    loss, a, b, knee, power = best
    return (a, b, knee, power, width_ref), before, loss


def inverse_stretch(
    u: np.ndarray, core: np.ndarray, tail: np.ndarray, knee: float | np.ndarray = KNEE
) -> np.ndarray:
    """``g^-1(u)`` of the map with factors ``core``, ``tail`` and ``knee`` (broadcast)."""
    size = np.abs(u) / core
    return np.sign(u) * np.where(size <= knee, size, knee + (size - knee) / tail)


def _grid_search(
    offsets: np.ndarray,
    t_truth: np.ndarray,
    cores: np.ndarray,
    tails: np.ndarray,
    knee: float,
    groups: np.ndarray,
) -> tuple[float, float, float]:
    """The (core, tail) pair of the grid with the smallest coverage loss, and that loss."""
    a, b = (g.ravel() for g in np.meshgrid(cores, tails, indexing="ij"))
    losses = _coverage_losses(offsets, t_truth, a, b, knee, groups)
    best = int(np.argmin(losses))
    return float(a[best]), float(b[best]), float(losses[best])


def _coverage_losses(
    offsets: np.ndarray,
    t_truth: np.ndarray,
    cores: np.ndarray,
    tails: np.ndarray,
    knee: float,
    groups: np.ndarray,
) -> np.ndarray:
    """Weighted mean squared coverage error over :data:`FIT_LEVELS`, averaged over the
    width ``groups`` (N,), per candidate map (G,).

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
    losses = np.zeros(len(cores))
    members = [groups == g for g in np.unique(groups)]
    for member in members:
        covered = np.stack(
            [coverage_from_pit(pits[member, c], FIT_LEVELS) for c in range(len(cores))]
        )
        losses += ((covered - FIT_LEVELS[None, :]) ** 2) @ FIT_WEIGHTS
    return losses / len(members)
