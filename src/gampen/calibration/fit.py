"""Fit the recalibration of the full predictive distribution (``gampen calibrate``).

The posterior ``gampen predict`` reports is the mixture over MC-dropout passes.  Its
recalibration is the map of :mod:`gampen.calibration.maps`: per parameter, a core factor
``a`` and, beyond a knee at :data:`~gampen.calibration.maps.KNEE` sd, a tail factor ``b``
stretch each galaxy's samples about their median, in units of their own standard
deviation, times ``(s / s_ref) ** p`` for a galaxy of width ``s`` (``s_ref``: the median
width of the fitting galaxies, a reference, not a fitted number).

**Few numbers.**  Refitted on resamples of a calibration set, per-class tails, knees and
powers wandered far (tails 0.9-5, knees over their whole grid), and four maps of 13
numbers each calibrated galaxies they were not fitted on no better than 19 numbers
(``scripts/calibration_ablation.py``).  So the tail factor and the width power are one
per parameter, shared by every galaxy; the knee is fixed (a free knee did not help on
held-out galaxies); only the core factor may differ between classes of galaxies, clean /
crowded (crowding index above :data:`CROWDED`) and, within those, the galaxies whose
predicted median of one parameter is below or above the fitting galaxies' median (faint /
bright by the flux, small / large by r_e, ...).  A class split is kept only when it
calibrates galaxies it was not fitted on better, by more than twice the bootstrap spread
of that gain (:func:`choose_split`); which parameter splits, if any, is the held-out galaxies'
choice too.  A calibration of ``k`` parameters fits ``k`` core
factors per class, ``k`` tails, ``k`` powers and a correlation shrink: 10 numbers for one
class of three parameters, 19 for four classes.

**Coverage is the catalog's.**  The catalog's equal-tailed level-``c`` interval runs
between its samples' quantiles ``(1 -+ c) / 2``, each interpolated between the order
statistics at 1-based fractional rank ``r = p (S + 1)`` (numpy's ``weibull`` method).  The
fit computes, for every candidate map, exactly those interval ends of the mapped samples:
the map is ``a`` times a fixed bend, so an end is ``a H(p)``, with ``H`` the bend
interpolated between the same two order statistics.  Being linear in ``a``, each galaxy
holds its truth at level ``c`` for a range of core factors, so the coverage of every core
factor on a dense grid costs one count (:func:`coverage_over_cores`).  The PIT that
matches these intervals (:func:`pit`, used to check the fit) is the inverse of the same
piecewise-linear quantile function: the truth is inside the level-``c`` interval exactly
when ``|PIT - 1/2| <= c/2``.

**The loss.**  The fit matches nominal coverage over a grid of levels from 2 % to 99.73 %
*in each quarter of each class's galaxies ranked by predicted width*: the mean squared
difference between empirical and nominal coverage, with the catalog's 68.27 / 95.45 /
99.73 % intervals weighted as much as the rest of the grid together, averaged over the
quarters and then over the classes.  Matching coverage per width quarter pins the power
``p``: a network whose widths vary too little between easy and hard galaxies is
calibrated on average but over-covers the easy ones and under-covers the hard.  The grid
search runs coarse over (power, tail), every core factor at once, then fine around the
best cell.  Last, with the marginal maps in place, the correlation shrink
(:mod:`gampen.calibration.maps`) is chosen from a grid so that the joint Mahalanobis
regions of all parameters (those :func:`gampen.calibration.ranks.mahalanobis_fraction`
draws, which :class:`JointFrame` computes once for every shrink) hold the truth as often
as they claim, over the same levels and weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from gampen.calibration.maps import (
    KNEE,
    BrightnessSplit,
    Maps,
    Recalibration,
    SpreadMap,
    brightness,
    is_singular,
    shrink_matrix,
)
from gampen.calibration.ranks import mahalanobis_fraction, share_below
from gampen.errors import GampenValueError

#: Nominal levels the fit matches: 2 %, 4 %, ..., 98 %, 99 %, then the catalog's 1, 2 and
#: 3 sigma intervals (68.27, 95.45, 99.73 %).
FIT_LEVELS: np.ndarray = np.concatenate([np.arange(1, 50) / 50, [0.99, 0.6827, 0.9545, 0.9973]])
#: Weights of the levels: the three intervals the catalog reports carry half of the loss
#: (astronomers read those), the grid the other half (the whole curve must stay close).
FIT_WEIGHTS: np.ndarray = np.concatenate([np.full(50, 1 / 50), np.full(3, 1 / 3)]) / 2
#: Core factors tried, all at once: 0.2-5 in steps of 0.5 %, with 1 exactly at CORES[ONE].
ONE = 322
CORES: np.ndarray = np.exp(np.arange(-ONE, ONE + 1) * np.log(5.0) / ONE)
#: Coarse tail factors: 0.25-4, 30 % apart.
TAIL_GRID: np.ndarray = np.exp(np.linspace(np.log(0.25), np.log(4.0), 10))
#: Coarse width powers, 0.25 apart (0: every galaxy's width scaled alike).
POWER_GRID: np.ndarray = np.linspace(-0.5, 1.5, 9)
#: The fine pass: tail +-1 coarse step in 6 steps each way, power +-1/2 step in 5 steps.
FINE_STEPS = 6
FINE_POWERS = 5
#: Candidate correlation shrinks: none, then 0.2 % to 50 %, 65 % apart (the joint regions
#: of highly correlated posteriors react to a few per cent; refits of a calibration set
#: of 6,000 galaxies move the shrink by about as much as a step).
SHRINK_GRID: np.ndarray = np.concatenate([[0.0], np.geomspace(0.002, 0.5, 12)])
#: Each class's galaxies are ranked by predicted width and cut into this many equal groups
#: (fewer, of at least ``MIN_GROUP`` galaxies each, for small sets).
WIDTH_GROUPS = 4
MIN_GROUP = 20
#: Crowding index above which a galaxy counts as crowded
#: (:func:`gampen.data.scalars.crowding_index`): about the 90th percentile of lone
#: galaxies' index in the ``hsc`` preset, while most galaxies with a neighbour exceed it.
CROWDED = 0.1
#: A class split is tried only when each of its classes has this many fitting galaxies.
MIN_CLASS = 200
#: Resamples of the judged galaxies that give the spread of a held-out loss difference.
JUDGE_RESAMPLES = 200
#: A split is kept when its held-out gain exceeds this many spreads of that gain: with up to
#: six candidates, one spread would keep a useless split about once in six tries.
KEEP_SPREADS = 2.0


def pit(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """PIT (N,) of ``truth`` (N,) under ``samples`` (N, S): the inverse of the catalog's
    quantile function, so the level-c interval holds the truth iff ``|PIT - 1/2| <= c/2``.

    A truth a fraction ``f`` of the way from order statistic ``m`` to ``m + 1`` (1-based)
    has PIT ``(m + f) / (S + 1)``; below the smallest sample 0, above the largest 1 (outside
    every interval).  A truth equal to samples ``m..n`` takes the point of
    ``[m, n] / (S + 1)`` nearest 1/2: some interval end is that value exactly when the
    interval reaches into it, so the tie counts as inside then.
    """
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    value = np.asarray(truth)
    n, s = ordered.shape
    below = np.sum(ordered < value[:, None], axis=1)
    upto = np.sum(ordered <= value[:, None], axis=1)
    low = ordered[np.arange(n), np.maximum(below - 1, 0)]
    high = ordered[np.arange(n), np.minimum(below, s - 1)]
    # Below every sample low == high, so the fraction is 0 and so is the PIT.
    fraction = np.divide(value - low, high - low, out=np.zeros(n), where=high > low)
    untied = np.where(below == s, 1.0, (below + fraction) / (s + 1))
    nearest = np.clip(0.5, (below + 1) / (s + 1), upto / (s + 1))
    return np.where(upto > below, nearest, untied)


def coverage_from_pit(pit_values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Fraction of equal-tailed intervals at each level (L,) that hold the truth:
    ``|PIT - 1/2| <= level / 2``."""
    distance = np.sort(np.abs(np.asarray(pit_values) - 0.5))
    return np.searchsorted(distance, np.asarray(levels) / 2, side="right") / len(distance)


def end_positions(n_samples: int, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the catalog's interval ends at ``levels`` (L,) lie among ``n_samples`` sorted
    samples: 0-based indices of the order statistics below and above each of the ``2L``
    ends (lower ends first) and the fraction of the way between them, as numpy's
    ``quantile(method="weibull")`` places them."""
    p = np.concatenate([(1 - levels) / 2, (1 + levels) / 2])
    position = np.clip(n_samples * p + p - 1, 0, n_samples - 1)
    low = np.floor(position).astype(np.intp)
    return low, np.minimum(low + 1, n_samples - 1), position - low


@dataclass(frozen=True)
class Split:
    """Which classes get a core factor of their own: crowded apart from clean galaxies,
    and/or the galaxies whose predicted median of parameter ``by`` is below the limit
    (``lower``) apart from the rest, or neither (one map for all)."""

    crowding: bool = False
    by: str | None = None

    @property
    def n_classes(self) -> int:
        """How many classes this split makes."""
        return (1 + self.crowding) * (1 + (self.by is not None))

    @property
    def name(self) -> str:
        """``none``, ``crowding``, the parameter's name, or ``crowding x`` it."""
        parts = ["crowding"] * self.crowding + [self.by] * (self.by is not None)
        return " x ".join(parts) or "none"

    @property
    def class_names(self) -> list[str]:
        """The classes, in the order of :meth:`classes`' indices."""
        crowding = ["clean", "crowded"] if self.crowding else [""]
        halves = [f"higher {self.by}", f"lower {self.by}"] if self.by else [""]
        return [" ".join(filter(None, (c, h))) or "all" for c in crowding for h in halves]

    def classes(self, crowded: np.ndarray, lower: np.ndarray | None) -> np.ndarray:
        """Each galaxy's class index (N,), given whether it is ``crowded`` and whether its
        ``by`` is ``lower`` than the limit (``None`` when the split has no ``by``)."""
        crowd = np.asarray(crowded, dtype=bool) & self.crowding
        if self.by is None:
            return crowd.astype(np.intp)
        return 2 * crowd.astype(np.intp) + np.asarray(lower, dtype=bool)


def candidate_splits(params: Sequence[str]) -> list[Split]:
    """Every split by crowding and at most one of ``params``, coarsest first."""
    return [Split(), Split(True)] + [Split(c, p) for c in (False, True) for p in params]


@dataclass(frozen=True)
class Galaxies:
    """What the fit needs of a set of galaxies, per parameter: ``ends`` (N, k, 2L, 2), the
    sorted offsets (in sd from the median) on either side of the catalog's interval ends
    at :data:`FIT_LEVELS`, and the ``fraction`` (2L,) of the way between them
    (:func:`end_positions`); the truths ``t`` (N, k) in sd from the median; the widths
    ``sd`` (N, k); whether each galaxy is ``crowded``; and, for each parameter that may
    split a class (by name), whether its predicted median is ``lower`` than the limit."""

    ends: np.ndarray
    fraction: np.ndarray
    t: np.ndarray
    sd: np.ndarray
    crowded: np.ndarray
    lower: dict[str, np.ndarray]

    @classmethod
    def from_samples(
        cls,
        samples: np.ndarray,
        truth: np.ndarray,
        crowded: np.ndarray,
        lower: dict[str, np.ndarray] | None = None,
    ) -> Galaxies:
        """Samples (N, S, k) and truths (N, k), standardised as the map does it."""
        samples = np.asarray(samples, dtype=np.float64)
        centre = np.median(samples, axis=1)
        sd = samples.std(axis=1)
        sd = np.where(sd > 0, sd, 1.0)
        ordered = np.sort((samples - centre[:, None]) / sd[:, None], axis=1)
        low, high, fraction = end_positions(samples.shape[1], FIT_LEVELS)
        ends = np.stack([ordered[:, low], ordered[:, high]], axis=-1).transpose(0, 2, 1, 3)
        t = (np.asarray(truth, dtype=np.float64) - centre) / sd
        lower = {name: np.asarray(mask, bool) for name, mask in (lower or {}).items()}
        return cls(ends, fraction, t, sd, np.asarray(crowded, bool), lower)

    def __len__(self) -> int:
        """How many galaxies."""
        return len(self.t)

    def take(self, rows: np.ndarray) -> Galaxies:
        """The galaxies at ``rows`` (repeats allowed: a bootstrap resample)."""
        return replace(
            self,
            ends=self.ends[rows],
            t=self.t[rows],
            sd=self.sd[rows],
            crowded=self.crowded[rows],
            lower={name: mask[rows] for name, mask in self.lower.items()},
        )

    def classes(self, split: Split) -> np.ndarray:
        """Each galaxy's class index under ``split``."""
        return split.classes(self.crowded, self.lower.get(split.by) if split.by else None)

    def class_sizes(self, split: Split) -> np.ndarray:
        """How many galaxies fall in each class of ``split``."""
        return np.bincount(self.classes(split), minlength=split.n_classes)

    def bend(self, j: int, knee: float) -> tuple[np.ndarray, np.ndarray]:
        """Parameter ``j``'s interval ends (N, 2L) and their excess beyond ``knee``, both
        interpolated as the catalog interpolates: with core factor ``a`` and tail factor
        ``b`` the mapped ends are ``a (ends + (b - 1) excess)``, in units of the mapped
        width, since the map is ``a (t + (b - 1) sign(t) max(|t| - knee, 0))``."""
        ordered = self.ends[:, j]
        excess = np.sign(ordered) * np.maximum(np.abs(ordered) - knee, 0.0)
        return self._between(ordered), self._between(excess)

    def _between(self, pairs: np.ndarray) -> np.ndarray:
        """Values (N, 2L, 2) at the two order statistics around each end, interpolated as
        numpy interpolates (exact when the two are equal)."""
        low = pairs[..., 0]
        return low + self.fraction * (pairs[..., 1] - low)


#: Where a class splits: the index of the parameter whose predicted median decides, and the
#: limit (standardised) below which a galaxy is in the lower class.
Limit = tuple[int, float]


@dataclass(frozen=True)
class CalibrationFit:
    """A fitted calibration: core factors ``core`` (classes, k) of the classes ``split``
    tells apart, shared tails ``tail``, powers ``power`` and reference widths ``width_ref``
    (k,), the ``limit`` of a split by a parameter (``None`` without one), the fit's
    coverage loss per parameter before and after, the knees (k,; fixed, not fitted) and the
    correlation ``shrink``."""

    split: Split
    core: np.ndarray
    tail: np.ndarray
    power: np.ndarray
    width_ref: np.ndarray
    limit: Limit | None
    loss_before: np.ndarray
    loss_after: np.ndarray
    knee: np.ndarray
    shrink: float = 0.0

    @property
    def n_fitted(self) -> int:
        """How many numbers were fitted: core factors, tails, powers, and the shrink when
        there are parameters to correlate (the knee is fixed, ``width_ref`` a median)."""
        k = self.core.shape[1]
        return self.core.size + 2 * k + (k > 1)

    def spread(self, index: int) -> SpreadMap:
        """The map of class ``index``."""
        return SpreadMap(
            self.core[index], self.tail, self.knee, self.power, self.width_ref, self.shrink
        )

    def maps(self) -> Maps:
        """The maps as :mod:`gampen.calibration.maps` applies them."""
        per_class = [self.spread(c) for c in range(self.split.n_classes)]
        if self.split.by is not None:
            if self.limit is None:
                raise GampenValueError(f"a split by {self.split.by} needs its limit")
            param, below = self.limit
            per_class = [
                BrightnessSplit(per_class[c], per_class[c + 1], below, param)
                for c in range(0, len(per_class), 2)
            ]
        if self.split.crowding:
            return Recalibration(per_class[0], per_class[1], CROWDED)
        return per_class[0]

    def numbers(self, names: list[str]) -> dict:
        """The fitted numbers by name: ``scale`` per class and parameter, ``tail`` and
        ``power`` per parameter, ``shrink``."""

        def by_name(values: np.ndarray) -> dict[str, float]:
            """``{name: value}`` of one value per parameter."""
            return dict(zip(names, map(float, values), strict=True))

        return {
            "scale": {
                c: by_name(row) for c, row in zip(self.split.class_names, self.core, strict=True)
            },
            "tail": by_name(self.tail),
            "power": by_name(self.power),
            "shrink": float(self.shrink),
        }


def fit_calibration(
    samples: np.ndarray,
    truth: np.ndarray,
    crowding: np.ndarray,
    params: Mapping[str, int],
    *,
    seed: int,
) -> tuple[CalibrationFit, dict]:
    """The calibration of samples (N, S, k) given truths (N, k), both standardised, and
    galaxies' crowding indices (N,): the class split the held-out folds choose
    (:func:`choose_split`, its evidence returned too), its maps and the shrink.  A class
    may split at the median of the predicted medians of one of ``params`` (name: index)."""
    samples, truth = np.asarray(samples, np.float64), np.asarray(truth)
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
    medians = {name: brightness(samples, j) for name, j in params.items()}
    limits = {name: (j, float(np.median(medians[name]))) for name, j in params.items()}
    lower = {name: medians[name] < limits[name][1] for name in params}
    galaxies = Galaxies.from_samples(samples, truth, np.asarray(crowding) > CROWDED, lower)
    width_ref = np.median(galaxies.sd, axis=0)
    split, evidence = choose_split(galaxies, width_ref, seed)
    fit = fit_marginals(galaxies, split, width_ref, limits[split.by] if split.by else None)
    return with_shrink(fit, samples, truth, crowding), evidence


def is_below(samples: np.ndarray, limit: Limit | None) -> np.ndarray:
    """Which galaxies (samples (N, S, k)) are in the lower class of a split at ``limit``:
    their median sample of its parameter is below it, as
    :class:`gampen.calibration.maps.BrightnessSplit` picks (none without a limit)."""
    if limit is None:
        return np.full(len(samples), False)
    param, below = limit
    return brightness(samples, param) < below


def refit(
    fit: CalibrationFit,
    galaxies: Galaxies,
    samples: np.ndarray,
    truth: np.ndarray,
    crowding: np.ndarray,
) -> CalibrationFit:
    """``fit``'s calibration fitted again on other galaxies (a bootstrap resample): the
    same split, limit and reference widths, new numbers."""
    again = fit_marginals(galaxies, fit.split, fit.width_ref, fit.limit)
    return with_shrink(again, samples, truth, crowding)


def with_shrink(
    fit: CalibrationFit,
    samples: np.ndarray,
    truth: np.ndarray,
    crowding: np.ndarray,
) -> CalibrationFit:
    """``fit`` with the correlation shrink that best calibrates the joint regions of the
    samples its marginal maps calibrate (none for a single parameter)."""
    if samples.shape[2] == 1:
        return fit
    maps = fit.maps()
    calibrated = (
        maps.apply(samples) if isinstance(maps, SpreadMap) else maps.apply(samples, crowding)
    )
    return replace(fit, shrink=fit_shrink(calibrated, truth))


def fit_marginals(
    galaxies: Galaxies,
    split: Split,
    width_ref: np.ndarray,
    limit: Limit | None,
    *,
    tails: np.ndarray = TAIL_GRID,
    powers: np.ndarray = POWER_GRID,
    knee: float = KNEE,
) -> CalibrationFit:
    """The marginal maps (no shrink) that best calibrate ``galaxies``: a core factor per
    class of ``split``, a tail and a power per parameter, searched over ``tails`` and
    ``powers`` (then finer around the best) with the knee at ``knee``."""
    classes = galaxies.classes(split)
    fits = [
        _fit_parameter(galaxies, j, classes, split.n_classes, width_ref[j], tails, powers, knee)
        for j in range(galaxies.t.shape[1])
    ]
    core, tail, power, before, after = (np.array([f[i] for f in fits]) for i in range(5))
    knees = np.full(len(tail), float(knee))
    return CalibrationFit(
        split, core.T, tail, power, np.asarray(width_ref), limit, before, after, knees
    )


def _fit_parameter(
    galaxies: Galaxies,
    j: int,
    classes: np.ndarray,
    n_classes: int,
    width_ref: float,
    tails: np.ndarray,
    powers: np.ndarray,
    knee: float,
) -> tuple[np.ndarray, float, float, float, float]:
    """One parameter's core factors (per class), tail and power, loss before and after."""
    width = galaxies.sd[:, j] / width_ref
    cells, cell_class = _cells(classes, width, n_classes)
    quantiles, excess = galaxies.bend(j, knee)

    def losses(ends: np.ndarray, power: float) -> np.ndarray:
        """Loss per class (C,) and core factor of :data:`CORES`, for interval ends (N, 2L)."""
        coverage = coverage_over_cores(ends, galaxies.t[:, j] / width**power, cells)
        return _class_means(_coverage_loss(coverage), cell_class, n_classes)

    def best(tail_grid: np.ndarray, power_grid: np.ndarray) -> tuple[float, float, float]:
        """The (total loss, tail, power) of the grid with the least loss."""
        scored = []
        for b in tail_grid:
            ends = quantiles + (b - 1) * excess  # one bend serves every power
            scored += [(losses(ends, p).min(axis=1).mean(), b, p) for p in power_grid]
        return min(scored, key=lambda item: item[0])

    _, tail, power = best(tails, powers)
    step_b = tails[1] / tails[0] if len(tails) > 1 else 1.0
    step_p = powers[1] - powers[0] if len(powers) > 1 else 0.0
    fine_b = tail * step_b ** np.linspace(-1, 1, 2 * FINE_STEPS + 1)
    fine_p = power + step_p * np.linspace(-0.5, 0.5, FINE_POWERS)
    after, tail, power = best(np.unique(fine_b), np.unique(fine_p))
    core = CORES[np.argmin(losses(quantiles + (tail - 1) * excess, power), axis=1)]
    before = float(losses(quantiles, 0.0)[:, ONE].mean())
    return core, float(tail), float(power), before, float(after)


def coverage_over_cores(ends: np.ndarray, v: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Coverage (cells, L, len(CORES)) at :data:`FIT_LEVELS` of every core factor, per cell.

    ``ends`` (N, 2L) are each galaxy's interval ends with core factor 1 (lower ends first)
    and ``v`` (N,) its truth, both in units of its mapped width; ``cells`` (N,) number the
    cells 0, 1, ...  With core factor ``a`` the interval is ``a * ends``: galaxy ``i`` holds
    its truth at level ``c`` for the ``a`` of one range, so a count of range starts minus
    range ends, summed along the grid, gives the coverage of every ``a`` at once.
    """
    n_levels = ends.shape[1] // 2
    lower, upper = _core_range(ends[:, :n_levels], ends[:, n_levels:], v[:, None])
    n_cells, width = int(cells.max()) + 1, len(CORES) + 1
    base = (cells[:, None] * n_levels + np.arange(n_levels)) * width
    size = n_cells * n_levels * width
    steps = np.bincount((base + np.searchsorted(CORES, lower, side="left")).ravel(), minlength=size)
    if upper is not None:
        steps -= np.bincount(
            (base + np.searchsorted(CORES, upper, side="right")).ravel(), minlength=size
        )
    inside = np.cumsum(steps.reshape(n_cells, n_levels, width), axis=2)[..., :-1]
    return inside / np.bincount(cells, minlength=n_cells)[:, None, None]


def _core_range(
    low: np.ndarray, high: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """The core factors ``a > 0`` with ``a low <= v <= a high``, as (lower, upper) bounds
    (both infinite when there are none; upper ``None`` when no bound is finite)."""
    if np.all((low < 0) & (high > 0)):
        # Always so but for a handful of samples: every interval straddles the median,
        # which no map moves, so a large enough core factor covers any truth.
        return np.maximum(v / low, v / high), None
    floor_1, ceiling_1 = _half_line(low, v)  # a low <= v
    floor_2, ceiling_2 = _half_line(-high, -v)  # a high >= v
    lower, upper = np.maximum(floor_1, floor_2), np.minimum(ceiling_1, ceiling_2)
    empty = lower > upper
    return np.where(empty, np.inf, lower), np.where(empty, np.inf, upper)


def _half_line(h: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``a > 0`` with ``a h <= v`` as (lower, upper) bounds: ``a >= v / h`` for
    ``h < 0``, ``a <= v / h`` for ``h > 0``, every ``a`` or none for ``h = 0``."""
    v = np.broadcast_to(v, h.shape)
    ratio = np.divide(v, h, out=np.zeros(h.shape), where=h != 0)
    lower = np.where(h < 0, ratio, np.where((h == 0) & (v < 0), np.inf, 0.0))
    return lower, np.where(h > 0, ratio, np.inf)


def _cells(classes: np.ndarray, width: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell numbers (N,): each class's galaxies cut into width groups; and each cell's
    class.  A class has :data:`WIDTH_GROUPS` groups, fewer when it has few galaxies."""
    cells = np.zeros(len(classes), dtype=np.intp)
    cell_class: list[int] = []
    for c in range(n_classes):
        members = classes == c
        n_groups = max(1, min(WIDTH_GROUPS, int(members.sum()) // MIN_GROUP))
        cuts = np.quantile(width[members], np.arange(1, n_groups) / n_groups)
        _, groups = np.unique(np.searchsorted(cuts, width[members]), return_inverse=True)
        cells[members] = len(cell_class) + groups
        cell_class += [c] * (int(groups.max(initial=-1)) + 1)
    return cells, np.array(cell_class)


def _coverage_loss(coverage: np.ndarray) -> np.ndarray:
    """Weighted mean squared coverage error over :data:`FIT_LEVELS` (axis -2 of
    ``coverage``)."""
    return np.einsum("...la,l->...a", (coverage - FIT_LEVELS[:, None]) ** 2, FIT_WEIGHTS)


def _class_means(values: np.ndarray, cell_class: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean over each class's cells of per-cell ``values`` (cells, ...)."""
    return np.stack([values[cell_class == c].mean(axis=0) for c in range(n_classes)])


def inside(fit: CalibrationFit, galaxies: Galaxies) -> np.ndarray:
    """Whether each galaxy's interval at each of :data:`FIT_LEVELS` holds its truth under
    ``fit``'s marginal maps: (N, k, L), as the catalog's intervals would say."""
    core = fit.core[galaxies.classes(fit.split)]
    n_levels = len(FIT_LEVELS)
    out = []
    for j in range(galaxies.t.shape[1]):
        quantiles, excess = galaxies.bend(j, fit.knee[j])
        ends = core[:, j, None] * (quantiles + (fit.tail[j] - 1) * excess)
        v = (galaxies.t[:, j] / (galaxies.sd[:, j] / fit.width_ref[j]) ** fit.power[j])[:, None]
        out.append((ends[:, :n_levels] <= v) & (v <= ends[:, n_levels:]))
    return np.stack(out, axis=1)


def choose_split(galaxies: Galaxies, width_ref: np.ndarray, seed: int) -> tuple[Split, dict]:
    """The class split, and the evidence for it: one map for all, unless a split's
    held-out coverage loss beats it by more than :data:`KEEP_SPREADS` bootstrap spreads of
    that gain (and a
    finer split must beat a coarser one so chosen the same way: :func:`_challenge`).

    Held out: the galaxies are cut at random into two halves, every split fitted on each
    and judged on the other, by coverage in each class of each finest split tried
    (crowding x each parameter that may split; averaged over those, summed over parameters
    and both halves), so every candidate is judged on the same cells; the spread comes
    from resampling the judged halves.  A split is tried only when each of its classes has
    :data:`MIN_CLASS` galaxies."""
    splits = candidate_splits(list(galaxies.lower))
    tried = [s for s in splits if galaxies.class_sizes(s).min() >= MIN_CLASS]
    if len(tried) == 1:
        return Split(), {"chosen": Split().name, "steps": []}
    crowding = any(s.crowding for s in tried)
    judges = [Split(crowding, p) for p in dict.fromkeys(s.by for s in tried if s.by)]
    judges = judges or [Split(crowding)]
    rng = np.random.default_rng(seed)
    halves = np.array_split(rng.permutation(len(galaxies)), 2)
    losses = {s: np.zeros(JUDGE_RESAMPLES + 1) for s in tried}
    for fitted, judged in (halves, halves[::-1]):
        held = galaxies.take(judged)
        weights = np.vstack([np.ones(len(judged)), _resample_weights(rng, len(judged))])
        for split in tried:
            covered = inside(fit_marginals(galaxies.take(fitted), split, width_ref, None), held)
            losses[split] += sum(
                _judged_loss(covered, held.classes(judge), weights) for judge in judges
            ) / len(judges)
    return _challenge(tried, losses)


def _resample_weights(rng: np.random.Generator, n: int) -> np.ndarray:
    """How often each of ``n`` galaxies is drawn in each of :data:`JUDGE_RESAMPLES`
    resamples with replacement (rows)."""
    draws = rng.integers(0, n, size=(JUDGE_RESAMPLES, n))
    return np.stack([np.bincount(row, minlength=n) for row in draws]).astype(np.float64)


def _judged_loss(covered: np.ndarray, cells: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Coverage loss of ``covered`` (N, k, L), averaged over the ``cells`` (N,) and summed
    over parameters, for each weighting of the galaxies (R, N)."""
    total = np.zeros(len(weights))
    cell_ids = np.unique(cells)
    for cell in cell_ids:
        w = weights[:, cells == cell]
        coverage = (
            np.einsum("rn,nkl->rkl", w, covered[cells == cell]) / w.sum(axis=1)[:, None, None]
        )
        total += ((coverage - FIT_LEVELS) ** 2 @ FIT_WEIGHTS).sum(axis=1)
    return total / len(cell_ids)


def _challenge(tried: list[Split], losses: dict[Split, np.ndarray]) -> tuple[Split, dict]:
    """Starting from one map for all, let each split tried, coarser ones first, replace
    the split chosen so far when its held-out loss (first entry of ``losses``; the rest
    are resamples) is lower by more than :data:`KEEP_SPREADS` spreads of the difference."""
    chosen = Split()
    steps = []
    for split in sorted(tried[1:], key=lambda s: (s.n_classes, losses[s][0])):
        gains = losses[split] - losses[chosen]
        gain, spread = float(gains[0]), float(gains[1:].std(ddof=1))
        kept = gain < -KEEP_SPREADS * spread
        steps.append(
            {
                "from": chosen.name,
                "to": split.name,
                "gain": round(gain, 6),
                "spread": round(spread, 6),
                "kept": kept,
            }
        )
        chosen = split if kept else chosen
    held_out = {s.name: round(float(losses[s][0]), 6) for s in tried}
    return chosen, {"held_out_loss": held_out, "steps": steps, "chosen": chosen.name}


def fit_shrink(calibrated: np.ndarray, truth: np.ndarray) -> float:
    """The correlation shrink of :data:`SHRINK_GRID` whose joint Mahalanobis regions best
    match their levels for samples (N, S, k) already calibrated parameter by parameter.
    Galaxies of singular covariance, which no shrink moves, play no part."""
    frame = JointFrame.of(calibrated)
    if not frame.kept.any():
        return 0.0
    losses = [
        _joint_error(coverage_below(frame.fraction(truth, amount), FIT_LEVELS))
        for amount in SHRINK_GRID
    ]
    return float(SHRINK_GRID[int(np.argmin(losses))])


@dataclass(frozen=True)
class JointFrame:
    """Samples (N, S, k) ready for their joint Mahalanobis regions after any correlation
    shrink: which galaxies are ``kept`` (those of non-singular covariance), and of those
    the ``centred`` samples (n, k, S), ``median``, scatter matrix ``scatter`` and sorted
    squared Mahalanobis ``distances`` (n, S) of their samples.

    A shrink maps a galaxy's centred samples linearly onto their target covariance, so
    their distances under their new covariance are the old ones: only the truth's changes
    (from the shrunk samples' mean, under the target), and one sort serves every shrink.
    """

    kept: np.ndarray
    centred: np.ndarray
    median: np.ndarray
    scatter: np.ndarray
    distances: np.ndarray

    @classmethod
    def of(cls, samples: np.ndarray) -> JointFrame:
        """The frame of samples (N, S, k)."""
        samples = np.swapaxes(np.asarray(samples, dtype=np.float64), 1, 2)
        centred = samples - samples.mean(axis=2, keepdims=True)
        scatter = centred @ np.swapaxes(centred, 1, 2)
        kept = ~is_singular(np.linalg.eigvalsh(scatter))
        centred, scatter = centred[kept], scatter[kept]
        whitened = np.linalg.solve(np.linalg.cholesky(scatter), centred)
        distances = np.sort(np.sum(whitened**2, axis=1))
        return cls(kept, centred, np.median(samples[kept], axis=2), scatter, distances)

    def fraction(self, truth: np.ndarray, amount: float) -> np.ndarray:
        """Mid-rank fraction (n,) of each kept galaxy's truth (of all ``truth``, (N, k))
        among its samples' distances once their correlations are shrunk by ``amount``
        (:func:`gampen.calibration.maps.shrink_correlations`): the truth lies in the
        level-``c`` region when the fraction is below ``c``."""
        matrix, _ = shrink_matrix(self.scatter, amount)
        moved = matrix @ self.centred
        # shrink_correlations keeps the medians, so the shrunk samples' mean moves; their
        # own mean is 0 (they are centred samples mapped linearly).
        offset = (truth[self.kept] - self.median + np.median(moved, axis=2))[:, :, None]
        eye = np.eye(self.median.shape[1])
        target = (1 - amount) * self.scatter + amount * self.scatter * eye
        distance = np.sum(offset * np.linalg.solve(target, offset), axis=(1, 2))
        below = np.sum(self.distances < distance[:, None], axis=1)
        return (below + 0.5) / (self.distances.shape[1] + 1)


def coverage_below(fraction: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Share of ``fraction`` (N,) below each level (L,): the joint regions' coverage."""
    return np.searchsorted(np.sort(fraction), levels) / len(fraction)


def _joint_error(coverage: np.ndarray) -> float:
    """Weighted mean squared error of coverage at :data:`FIT_LEVELS`."""
    return float(((coverage - FIT_LEVELS) ** 2) @ FIT_WEIGHTS)


def joint_coverage(samples: np.ndarray, truth: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Share of truths inside the joint Mahalanobis region of each level (L,) of samples
    (N, S, k); ties are broken by a fixed random stream, so candidates compare alike."""
    fraction = mahalanobis_fraction(samples, truth, rng=np.random.default_rng(0))
    return share_below(fraction, np.asarray(levels))
