"""The recalibration map ``gampen predict`` applies to each galaxy's posterior samples.

Per parameter, in standardised label space, each galaxy's samples are standardised by
their own median ``m`` and standard deviation ``s``, ``t = (z - m) / s``, stretched by an
odd, increasing, piecewise-linear map and mapped back, ``z' = m + s g(t)``:

    g(t) = a t                                  for |t| <= c
    g(t) = a sign(t) (c + b (|t| - c))          beyond the knee c

``a`` widens (> 1) or narrows (< 1) the whole posterior; ``b`` changes the tails relative
to the core (``b = 1``: a plain rescaling, ``z' = m + a (z - m)``, covariance
``diag(a) C diag(a)``).  A network's widths can also vary too little or too much from
galaxy to galaxy (crowded and faint galaxies under-covered while easy ones are
over-covered): the *width power* ``p`` multiplies the map by ``(s / s_ref) ** p``, with
``s_ref`` the median width of the galaxies it was fitted on, so ``p > 0`` widens wide
posteriors more than narrow ones.  The stretch is monotone in every parameter, so it keeps
each posterior's ranks and correlation structure (its copula), and the samples it makes are
samples of a proper distribution, with a positive-definite covariance.  Pivoting on the
median keeps every galaxy's median, the catalog's point estimate, exactly where it was:
calibration changes how sure the posterior is, not where it sits.  ``gampen calibrate``
fits ``a``, ``b`` and ``p`` with the knee at :data:`KNEE`
(:mod:`gampen.calibration.fit`); older bundles may hold other knees.

A network can also be too sure of how its parameters' errors move together (r_e and flux
of a galaxy are often predicted 0.95 correlated where the errors are 0.9): the joint
regions are then too thin across the correlation although every marginal is right.  The
*correlation shrink* ``lambda`` (0 <= lambda < 1; one per map) moves each galaxy's
covariance ``C`` to ``(1 - lambda) C + lambda diag(C)`` by the linear map
``C_target^(1/2) C^(-1/2)`` of its calibrated samples, then shifts each parameter back to
its median: variances, medians and positive-definiteness are kept, correlations shrink by
the factor ``1 - lambda``.

Galaxies overlapped by a neighbour have heavier-tailed errors than lone ones of the same
predicted width, so a bundle may hold two maps (:class:`Recalibration`): one for clean
galaxies, one for crowded ones, told apart by an observable, the crowding index of the
cutout (:func:`gampen.data.scalars.crowding_index`) above a threshold.  Within each of
those classes, the errors of large galaxies (or faint ones) can be wider than those of
small (or bright) ones of the same predicted width, so a class may split once more
(:class:`BrightnessSplit`, named for the first such split, by the flux) by the median of
the galaxy's own samples of one parameter, which no map moves.
``gampen calibrate`` now fits one tail and one power per parameter for all classes and
keeps a class only where held-out galaxies show it helps, but writes every class's map in
full, so this one format serves old and new bundles alike.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gampen.checks import is_finite_number

#: Default knee: where the tail slope takes over, in standard deviations of the posterior.
KNEE = 1.0


@dataclass(frozen=True)
class SpreadMap:
    """Core factors ``scale``, tail factors ``tail``, knees ``knee``, width powers ``power``
    and reference widths ``width_ref`` (each (k,)), and the correlation ``shrink``."""

    scale: np.ndarray
    tail: np.ndarray = field(default_factory=lambda: np.ones(0))
    knee: float | np.ndarray = KNEE
    power: np.ndarray = field(default_factory=lambda: np.zeros(0))
    width_ref: np.ndarray = field(default_factory=lambda: np.ones(0))
    shrink: float = 0.0

    def __post_init__(self) -> None:
        scale = np.asarray(self.scale, dtype=np.float64)

        def per_parameter(value: Any, default: float) -> np.ndarray:
            value = np.asarray(value, dtype=np.float64)
            return (
                np.full_like(scale, default)
                if value.size == 0
                else np.broadcast_to(value, scale.shape).copy()
            )

        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "tail", per_parameter(self.tail, 1.0))
        object.__setattr__(self, "knee", per_parameter(self.knee, KNEE))
        object.__setattr__(self, "power", per_parameter(self.power, 0.0))
        object.__setattr__(self, "width_ref", per_parameter(self.width_ref, 1.0))

    @classmethod
    def from_calibration(cls, calibration: dict, names: Sequence[str]) -> SpreadMap | None:
        """The map a bundle's ``calibration`` field describes, or ``None`` for the identity.

        Raises ``ValueError`` naming the key when a factor is missing, not a number or not
        positive (the bundle loader turns it into a :class:`~gampen.errors.BundleError`).
        """
        values = {
            key: _per_name(calibration, key, names, default)
            for key, default in FIELDS.items()
            if key != "scale" or "scale" in calibration
        }
        if "scale" not in values:
            raise ValueError("calibration lacks 'scale'")
        spread = cls(**values, shrink=_shrink(calibration))
        identity = np.all(spread.scale == 1.0) & np.all(spread.tail == 1.0)
        return None if identity and np.all(spread.power == 0.0) and not spread.shrink else spread

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """Recalibrated samples (..., S, k): each galaxy's own median and spread are the pivot."""
        centre = np.median(samples, axis=-2, keepdims=True)
        sd = samples.std(axis=-2, keepdims=True)
        sd = np.where(sd > 0, sd, 1.0)
        out = centre + sd * self.width_factor(sd) * self.stretch((samples - centre) / sd)
        return shrink_correlations(out, self.shrink) if self.shrink else out

    def pick(self, crowding: float | None, samples: np.ndarray) -> SpreadMap:
        """The map for a galaxy: this one, whatever its crowding and samples."""
        return self

    def width_factor(self, sd: np.ndarray) -> np.ndarray:
        """``(s / s_ref) ** p`` for posterior widths ``sd`` (..., k)."""
        return (sd / self.width_ref) ** self.power

    def stretch(self, t: np.ndarray) -> np.ndarray:
        """``g(t)`` for standardised offsets ``t`` (..., k)."""
        size = np.abs(t)
        beyond = self.knee + self.tail * (size - self.knee)
        return self.scale * np.sign(t) * np.where(size <= self.knee, size, beyond)


class _PerGalaxy(ABC):
    """Maps chosen galaxy by galaxy by ``pick(crowding, samples)``."""

    @abstractmethod
    def pick(self, crowding: float | None, samples: np.ndarray) -> SpreadMap | None:
        """The map for a galaxy of this crowding index and these samples (S, k)."""

    def apply(self, samples: np.ndarray, crowding: Sequence[float] | None = None) -> np.ndarray:
        """Recalibrated samples (N, S, k) of galaxies with crowding indices (N,), each by
        the map it picks (``None``: left as it is)."""
        out = np.array(samples, dtype=np.float64)
        values = [None] * len(out) if crowding is None else list(crowding)
        chosen = [self.pick(value, galaxy) for value, galaxy in zip(values, out, strict=True)]
        for spread in {id(m): m for m in chosen if m is not None}.values():
            rows = [i for i, m in enumerate(chosen) if m is spread]
            out[rows] = spread.apply(out[rows])  # one map at a time: all its galaxies at once
        return out


@dataclass(frozen=True)
class BrightnessSplit(_PerGalaxy):
    """Two maps of one class: ``faint`` for galaxies whose median sample of parameter
    ``param`` (an index; standardised) is below ``below``, ``bright`` for the rest
    (``None``: left as the network gives it)."""

    bright: SpreadMap | None
    faint: SpreadMap | None
    below: float
    param: int

    def pick(self, crowding: float | None, samples: np.ndarray) -> SpreadMap | None:
        """The map for a galaxy with these samples (S, k), whatever its crowding."""
        return self.faint if brightness(samples, self.param) < self.below else self.bright


#: What a crowding class holds: one map, a map per brightness, or nothing (the identity).
ClassMaps = SpreadMap | BrightnessSplit | None


@dataclass(frozen=True)
class Recalibration(_PerGalaxy):
    """A bundle's maps: ``clean`` for galaxies whose crowding index is at most ``above``,
    ``crowded`` for the rest (``None``: that group is left as the network gives it)."""

    clean: ClassMaps
    crowded: ClassMaps
    above: float

    @classmethod
    def from_calibration(
        cls, calibration: dict, names: Sequence[str]
    ) -> Recalibration | BrightnessSplit | SpreadMap | None:
        """A bundle's ``calibration`` as maps: a :class:`Recalibration` when it has a
        ``crowded`` part, else that of its one class (``None`` for the identity).

        Raises ``ValueError`` naming the key of a malformed field."""
        clean = _class_maps(calibration, names, "calibration")
        part = calibration.get("crowded")
        if part is None:
            return clean
        if not isinstance(part, dict) or "above" not in part:
            raise ValueError("calibration 'crowded' must be an object with an 'above' threshold")
        above = part["above"]
        if not is_finite_number(above):
            raise ValueError(f"calibration.crowded.above must be a finite number: {above!r}")
        unknown = sorted(set(part) - {"above", "shrink", "faint", *FIELDS})
        if unknown:
            raise ValueError(f"calibration 'crowded' has unknown key(s) {unknown}")
        crowded = _class_maps(part, names, "calibration.crowded")
        return cls(clean, crowded, float(above))

    def pick(self, crowding: float | None, samples: np.ndarray) -> SpreadMap | None:
        """The map for a galaxy of this crowding index and these samples (S, k)."""
        if crowding is None or not math.isfinite(crowding):
            raise ValueError("this calibration needs each galaxy's crowding index")
        part = self.crowded if crowding > self.above else self.clean
        return None if part is None else part.pick(crowding, samples)


#: Whatever a bundle's calibration can be read as (``None``: the identity).
Maps = SpreadMap | BrightnessSplit | Recalibration


def brightness(samples: np.ndarray, param: int) -> np.ndarray:
    """The median sample of parameter ``param`` of each galaxy's samples (..., S, k): the
    catalog's point estimate, which no map moves, so it tells faint galaxies from bright."""
    return np.median(np.asarray(samples)[..., param], axis=-1)


def _class_maps(fields: dict, names: Sequence[str], where: str) -> ClassMaps:
    """A class's map from its fields, split by brightness when they hold ``faint``."""
    main = SpreadMap.from_calibration(fields, names)
    faint = fields.get("faint")
    if faint is None:
        return main
    if not isinstance(faint, dict) or not {"param", "below"} <= set(faint):
        raise ValueError(f"{where}.faint must be an object with 'param' and 'below'")
    unknown = sorted(set(faint) - {"param", "below", "shrink", *FIELDS})
    if unknown:
        raise ValueError(f"{where}.faint has unknown key(s) {unknown}")
    param, below = faint["param"], faint["below"]
    if param not in names:
        raise ValueError(f"{where}.faint.param must be one of {list(names)}, not {param!r}")
    if not is_finite_number(below):
        raise ValueError(f"{where}.faint.below must be a finite number: {below!r}")
    # ``param`` and ``below`` are not a map's keys: the map reads only its own.
    return BrightnessSplit(
        main, SpreadMap.from_calibration(faint, names), float(below), list(names).index(param)
    )


#: The calibration keys of a map and their defaults (``scale`` has none: it is required).
FIELDS: dict[str, float | None] = {
    "scale": None,
    "tail": 1.0,
    "knee": KNEE,
    "power": 0.0,
    "width_ref": 1.0,
}
#: Keys whose values must be > 0 (a width power may be of either sign).
POSITIVE: tuple[str, ...] = ("scale", "tail", "knee", "width_ref")


def shrink_correlations(samples: np.ndarray, amount: float) -> np.ndarray:
    """Samples (..., S, k) whose covariance ``C`` becomes ``(1 - amount) C + amount diag(C)``
    and whose medians stay where they were (the module docstring says why).  A galaxy whose
    covariance is singular (a constant parameter, a single sample) is left as it is."""
    samples = np.asarray(samples, dtype=np.float64)
    mean = samples.mean(axis=-2, keepdims=True)
    centred = samples - mean
    # The scatter matrix: the map below does not change when C is scaled.
    matrix, singular = shrink_matrix(np.einsum("...si,...sj->...ij", centred, centred), amount)
    out = mean + centred @ np.swapaxes(matrix, -1, -2)
    out += np.median(samples, axis=-2, keepdims=True) - np.median(out, axis=-2, keepdims=True)
    return np.where(singular[..., None, None], samples, out)


def shrink_matrix(cov: np.ndarray, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """The linear map (..., k, k) ``T^(1/2) C^(-1/2)`` that takes centred samples of
    covariance ``C`` (..., k, k) to ones of ``T = (1 - amount) C + amount diag(C)`` (the
    symmetric map, which moves them least), and which ``C`` are singular (...,)."""
    target = (1.0 - amount) * cov + amount * cov * np.eye(cov.shape[-1])
    values, vectors = np.linalg.eigh(cov)
    singular = is_singular(values)
    values = np.where(singular[..., None], 1.0, values)
    inverse_root = (vectors / np.sqrt(values)[..., None, :]) @ np.swapaxes(vectors, -1, -2)
    target_values, target_vectors = np.linalg.eigh(target)
    root = (target_vectors * np.sqrt(np.clip(target_values, 0.0, None))[..., None, :]) @ (
        np.swapaxes(target_vectors, -1, -2)
    )
    return root @ inverse_root, singular


def is_singular(values: np.ndarray) -> np.ndarray:
    """Whether covariances of eigenvalues ``values`` (..., k) are singular: their least
    eigenvalue at most 1e-12 of their largest (a constant parameter, a single sample)."""
    return values.min(axis=-1) <= 1e-12 * np.abs(values).max(axis=-1, initial=0.0)


def _shrink(calibration: dict) -> float:
    """The map's correlation shrink: a number in [0, 1) (0 when absent)."""
    value = calibration.get("shrink", 0.0)
    if not is_finite_number(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"calibration.shrink must be a number in [0, 1), not {value!r}")
    return float(value)


def _per_name(
    calibration: dict, key: str, names: Sequence[str], default: float | None
) -> np.ndarray:
    """One finite value per parameter name for ``key`` (a dict by name, or one number)."""
    given = calibration.get(key, default)
    if not isinstance(given, dict):
        given = {name: given for name in names}
    if sorted(given) != sorted(names):
        raise ValueError(f"calibration '{key}' must give one value per parameter {list(names)}")
    out = []
    for name in names:
        value = given[name]
        if not is_finite_number(value):
            raise ValueError(f"calibration.{key}.{name} must be a finite number, not {value!r}")
        if key in POSITIVE and value <= 0:
            raise ValueError(f"calibration.{key}.{name} must be > 0, not {value!r}")
        out.append(float(value))
    return np.array(out)
