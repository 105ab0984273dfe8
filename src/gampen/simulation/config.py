"""Validated settings of a simulation: survey, PSF, central-galaxy and neighbour priors, noise.

Every field is checked when a config is built, whether from YAML or from Python, and a bad
value raises :class:`~gampen.errors.ConfigError` naming the field (``section.field``), the
value and the allowed range.  Intervals ``[lo, hi]`` are closed; ``lo == hi`` fixes a value.
The distribution each interval feeds (uniform or log-uniform) is stated on the field.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from gampen.errors import ConfigError

Interval = tuple[float, float]
#: A field check: (dotted field name, value) -> normalised value, or ConfigError.
Rule = Callable[[str, Any], Any]


def _number(path: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> Any:
    """``value`` as a float (or int) in [lo, hi]; ConfigError naming ``path`` otherwise."""
    kind = "an integer" if integer else "a number"
    allowed = f"{kind} in [{lo:g}, {hi:g}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{path}: must be {kind}", value=value, allowed=allowed)
    if integer and float(value) != int(value):
        raise ConfigError(f"{path}: must be {kind}", value=value, allowed=allowed)
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{path}: out of range", value=value, allowed=allowed)
    return int(value) if integer else float(value)


def _interval(path: str, value: Any, lo: float, hi: float, *, positive: bool = False) -> Interval:
    """``value`` as a closed interval (lo', hi') with lo <= lo' <= hi' <= hi."""
    low_text = "0 < lo" if positive else f"{lo:g} <= lo"
    allowed = f"[lo, hi] with {low_text} <= hi <= {hi:g}"
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 2:
        raise ConfigError(f"{path}: must be a pair [lo, hi]", value=value, allowed=allowed)
    a, b = (_number(path, v, lo, hi) for v in value)
    if a > b or (positive and a <= 0.0):
        raise ConfigError(f"{path}: not a valid interval", value=list(value), allowed=allowed)
    return (a, b)


def _num(lo: float, hi: float, *, integer: bool = False) -> Rule:
    """Rule: a number (or integer) in [lo, hi]."""
    return lambda path, value: _number(path, value, lo, hi, integer=integer)


def _pair(lo: float, hi: float, *, positive: bool = False) -> Rule:
    """Rule: an interval inside [lo, hi] (with lo' > 0 when ``positive``)."""
    return lambda path, value: _interval(path, value, lo, hi, positive=positive)


def _text(path: str, value: Any) -> str:
    """Rule: a string (a folder of files, or "" for none)."""
    if not isinstance(value, str):
        raise ConfigError(f"{path}: must be a string", value=value, allowed="a folder, or ''")
    return value


def _num_or_pair(lo: float, hi: float) -> Rule:
    """Rule: a fixed number in [lo, hi], or an interval inside it (drawn uniformly)."""

    def rule(path: str, value: Any) -> Any:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return _number(path, value, lo, hi)
        return _interval(path, value, lo, hi)

    return rule


class _Section:
    """Mixin for a frozen dataclass section: checks each field with its rule in ``RULES``."""

    SECTION: ClassVar[str]
    RULES: ClassVar[dict[str, Rule]]
    #: Fields a mapping may leave out, with the value that means "off" (the nuisances of
    #: real data, added after the first presets): omitted from :meth:`to_dict` when off,
    #: so configurations without them describe and hash as they always did.
    OPTIONAL: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        """Check and normalise every field (lists become tuples, ints floats)."""
        for name, rule in self.RULES.items():
            value = rule(f"{self.SECTION}.{name}", getattr(self, name))
            object.__setattr__(self, name, value)

    @classmethod
    def from_mapping(cls, data: Any) -> Any:
        """Construct the section from a YAML mapping; unknown or missing fields are errors."""
        names = list(cls.RULES)
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.SECTION}: must be a mapping", value=data)
        for key in data:
            if key not in names:
                raise ConfigError(
                    f"{cls.SECTION}.{key}: unknown field",
                    value=data[key],
                    allowed=f"one of {', '.join(names)}",
                )
        missing = [name for name in names if name not in data and name not in cls.OPTIONAL]
        if missing:
            raise ConfigError(f"{cls.SECTION}.{missing[0]}: missing field")
        return cls(**{**cls.OPTIONAL, **dict(data)})

    def to_dict(self) -> dict[str, Any]:
        """Plain fields (intervals as lists), leaving out optional fields that are off."""
        out = {}
        for name in self.RULES:
            value = _plain(getattr(self, name))
            if name in self.OPTIONAL and value == _plain(self.OPTIONAL[name]):
                continue
            out[name] = value
        return out


@dataclass(frozen=True)
class SurveyConfig(_Section):
    """Image geometry and photometric zero point (mag = zero_point - 2.5 log10 flux)."""

    SECTION: ClassVar[str] = "survey"
    RULES: ClassVar[dict[str, Rule]] = {
        "pixel_scale": _num(1e-3, 10.0),
        "stamp_size": _num(16, 1024, integer=True),
        "zero_point": _num(0.0, 50.0),
    }
    pixel_scale: float  #: arcsec per pixel
    stamp_size: int  #: cutout side in pixels
    zero_point: float  #: magnitude of one unit of pixel flux


@dataclass(frozen=True)
class PsfConfig(_Section):
    """The PSF of each galaxy: a Moffat (index ``beta``, fixed or drawn uniformly) or, for
    a ``kolmogorov_fraction`` of galaxies, a Kolmogorov profile, with a FWHM drawn uniformly
    from ``fwhm`` (arcsec) and a shear of modulus uniform in [0, ``ellipticity``] at a
    random angle.  The FWHM reported with the cutout (catalog, ``PSF_FWHM`` header and the
    ``PSF`` HDU's image, dilated to it) differs from the rendered one by a factor
    ``exp(N(0, fwhm_error))``: a PSF model's error, so a network learns how far to trust
    it; a ``fwhm_exact_fraction`` of galaxies report it exactly (a good PSF model)."""

    SECTION: ClassVar[str] = "psf"
    RULES: ClassVar[dict[str, Rule]] = {
        "beta": _num_or_pair(1.5, 20.0),
        "fwhm": _pair(0, 10, positive=True),
        "kolmogorov_fraction": _num(0.0, 1.0),
        "ellipticity": _num(0.0, 0.3),
        "fwhm_error": _num(0.0, 0.5),
        "fwhm_exact_fraction": _num(0.0, 1.0),
        "images": _text,
    }
    OPTIONAL: ClassVar[dict[str, Any]] = {
        "kolmogorov_fraction": 0.0,
        "ellipticity": 0.0,
        "fwhm_error": 0.0,
        "fwhm_exact_fraction": 0.0,
        "images": "",
    }
    beta: float | Interval
    fwhm: Interval
    kolmogorov_fraction: float = 0.0  #: share of galaxies with a Kolmogorov PSF
    ellipticity: float = 0.0  #: largest PSF shear |g|
    fwhm_error: float = 0.0  #: sd of ln(reported FWHM / rendered FWHM)
    fwhm_exact_fraction: float = 0.0  #: share of galaxies whose reported FWHM is exact
    #: a folder of the survey's PSF images: each galaxy gets one of them instead of a
    #: profile (its FWHM, measured, is the rendered one); "" for none
    images: str = ""


@dataclass(frozen=True)
class CentralPrior(_Section):
    """Priors of the central bulge + disk galaxy; the position angle is uniform in [0, 180).

    Bulge and disk are Sersic profiles (indices drawn from ``bulge_n`` and ``disk_n``, except
    a ``canonical_n_fraction`` of bulges at exactly n = 4 and, independently, of disks at
    exactly n = 1: the profiles most fits assume, a spike in the prior); a
    ``clump_probability`` of disks put a share of their light into point-like clumps
    (``galsim.RandomKnots``) spread like the disk."""

    SECTION: ClassVar[str] = "central"
    RULES: ClassVar[dict[str, Rule]] = {
        "mag": _pair(0.0, 40.0),
        "bt": _pair(0.0, 1.0),
        "r_disk": _pair(0.0, 100.0, positive=True),
        "bulge_size_ratio": _pair(0.0, 10.0, positive=True),
        "q_disk": _pair(0.05, 1.0),
        "q_bulge": _pair(0.05, 1.0),
        "offset": _num(0.0, 100.0),
        "bulge_n": _pair(0.3, 6.2),  # the range GalSim's Sersic supports
        "disk_n": _pair(0.3, 6.2),
        "canonical_n_fraction": _num(0.0, 1.0),
        "clump_probability": _num(0.0, 1.0),
        "clump_fraction": _pair(0.0, 0.9),
        "clump_count": _pair(1, 500),
        "pure_disk_fraction": _num(0.0, 1.0),
        "pure_bulge_fraction": _num(0.0, 1.0),
    }
    OPTIONAL: ClassVar[dict[str, Any]] = {
        "bulge_n": (4.0, 4.0),
        "disk_n": (1.0, 1.0),
        "canonical_n_fraction": 0.0,
        "clump_probability": 0.0,
        "clump_fraction": (0.1, 0.4),
        "clump_count": (10.0, 40.0),
        "pure_disk_fraction": 0.0,
        "pure_bulge_fraction": 0.0,
    }
    mag: Interval  #: total magnitude, uniform
    bt: Interval  #: bulge-to-total flux ratio, uniform
    r_disk: Interval  #: disk half-light radius in arcsec, log-uniform
    bulge_size_ratio: Interval  #: r_bulge / r_disk, uniform
    q_disk: Interval  #: disk axis ratio, uniform
    q_bulge: Interval  #: bulge axis ratio, uniform
    offset: float  #: centre offset from the image centre, uniform in [-offset, offset] pixels
    bulge_n: Interval = (4.0, 4.0)  #: bulge Sersic index, uniform (4: de Vaucouleurs)
    disk_n: Interval = (1.0, 1.0)  #: disk Sersic index, uniform (1: exponential)
    canonical_n_fraction: float = 0.0  #: share of bulges at n = 4, and of disks at n = 1
    clump_probability: float = 0.0  #: chance that a disk has star-forming clumps
    clump_fraction: Interval = (0.1, 0.4)  #: share of the disk's light in clumps, uniform
    clump_count: Interval = (10.0, 40.0)  #: number of clumps, uniform integer
    pure_disk_fraction: float = 0.0  #: share of galaxies with no bulge at all (bt = 0)
    pure_bulge_fraction: float = 0.0  #: share with no disk (bt = 1): r_bulge drawn as r_disk

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pure_disk_fraction + self.pure_bulge_fraction > 1.0:
            raise ConfigError(
                "central.pure_disk_fraction + central.pure_bulge_fraction exceeds 1",
                value=(self.pure_disk_fraction, self.pure_bulge_fraction),
            )


@dataclass(frozen=True)
class NeighbourPrior(_Section):
    """Priors of the single-Sersic neighbours; their position angle is uniform in [0, 180)."""

    SECTION: ClassVar[str] = "neighbours"
    RULES: ClassVar[dict[str, Rule]] = {
        "probability": _num(0.0, 1.0),
        "max_count": _num(1, 20, integer=True),
        "sersic_n": _pair(0.3, 6.2),  # the range GalSim's Sersic supports
        "mag": _pair(0.0, 40.0),
        "max_brighter_than_central": _num(0.0, 40.0),
        "half_light_radius": _pair(0.0, 100.0, positive=True),
        "q": _pair(0.05, 1.0),
        "min_separation": _num(0.0, 1000.0),
    }
    probability: float  #: chance that a cutout has any neighbours
    max_count: int  #: when it has, 1..max_count neighbours, equally likely
    sersic_n: Interval  #: Sersic index, uniform
    mag: Interval  #: magnitude, uniform, but never brighter than the limit below
    max_brighter_than_central: float  #: neighbours are at most this many mag brighter
    half_light_radius: Interval  #: arcsec, log-uniform
    q: Interval  #: axis ratio, uniform
    min_separation: float  #: arcsec from the central galaxy; positions uniform otherwise


@dataclass(frozen=True)
class NoiseConfig(_Section):
    """Background-limited noise of a sky-subtracted coadd (Poisson on galaxy + sky), made
    ``correlation``-correlated between neighbouring pixels, plus a residual sky pedestal,
    gradient and broad bump left by imperfect sky subtraction."""

    SECTION: ClassVar[str] = "noise"
    RULES: ClassVar[dict[str, Rule]] = {
        "sky_level": _num(1e-12, 1e12),
        "sky_sigma": _pair(0.0, 1e12, positive=True),
        "correlation": _pair(0.0, 0.45),
        "pedestal": _num(0.0, 10.0),
        "gradient": _num(0.0, 10.0),
        "bump": _num(0.0, 10.0),
        "bump_width": _pair(0.0, 1e3, positive=True),
    }
    OPTIONAL: ClassVar[dict[str, Any]] = {
        "correlation": (0.0, 0.0),
        "pedestal": 0.0,
        "gradient": 0.0,
        "bump": 0.0,
        "bump_width": (5.0, 15.0),
    }
    sky_level: float  #: sky per pixel (flux units) before subtraction; sets the effective gain
    sky_sigma: Interval  #: per-galaxy sky noise per pixel (flux units), uniform
    #: correlation of neighbouring pixels' noise (coadd resampling), uniform; per-pixel
    #: sigma unchanged
    correlation: Interval = (0.0, 0.0)
    pedestal: float = 0.0  #: residual sky, uniform in [-pedestal, pedestal] x sky sigma
    gradient: float = 0.0  #: residual sky slope: centre-to-edge rise up to gradient x sigma
    #: a sky that is not a plane (a star's halo, scattered light, over-subtraction around a
    #: bright galaxy): a circular Gaussian of peak uniform in [-bump, bump] x sky sigma ...
    bump: float = 0.0
    #: ... of sigma uniform in this range (arcsec), centred anywhere within one cutout
    #: side of the cutout's centre (so a cutout sees its peak, its flank or its edge)
    bump_width: Interval = (5.0, 15.0)


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a training set, apart from its size and seed."""

    name: str
    survey: SurveyConfig
    psf: PsfConfig
    central: CentralPrior
    neighbours: NeighbourPrior
    noise: NoiseConfig

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("name: must be a non-empty string", value=self.name)
        self._check_geometry()
        self._check_neighbour_magnitudes()

    @property
    def field_size(self) -> float:
        """Side of the cutout in arcsec."""
        return self.survey.stamp_size * self.survey.pixel_scale

    def _check_geometry(self) -> None:
        """Central offset and neighbour separation must fit inside the cutout."""
        max_offset = self.survey.stamp_size / 4
        if self.central.offset > max_offset:
            raise ConfigError(
                "central.offset: larger than a quarter of the cutout",
                value=self.central.offset,
                allowed=f"[0, {max_offset:g}] pixels for survey.stamp_size "
                f"{self.survey.stamp_size}",
            )
        max_sep = 0.4 * self.field_size
        if self.neighbours.min_separation >= max_sep:
            raise ConfigError(
                "neighbours.min_separation: leaves too little of the cutout for neighbours",
                value=self.neighbours.min_separation,
                allowed=f"[0, {max_sep:g}) arcsec (0.4 x the {self.field_size:g} arcsec cutout)",
            )

    def _check_neighbour_magnitudes(self) -> None:
        """Even the faintest central galaxy must leave a non-empty neighbour magnitude range."""
        nb = self.neighbours
        brightest = max(nb.mag[0], self.central.mag[1] - nb.max_brighter_than_central)
        if nb.mag[1] < brightest:
            raise ConfigError(
                "neighbours.mag: faint limit is brighter than the brightest allowed neighbour "
                "of the faintest central galaxy",
                value=list(nb.mag),
                allowed=f"hi >= max(lo, central.mag hi - neighbours.max_brighter_than_central) "
                f"= {brightest:g}",
            )

    @classmethod
    def from_mapping(cls, data: Any) -> SimulationConfig:
        """Build and validate a config from a (merged) YAML mapping."""
        sections = {c.SECTION: c for c in SECTIONS}
        allowed = ["name", *sections]
        if not isinstance(data, Mapping):
            raise ConfigError("config: must be a mapping of sections", value=data)
        for key in data:
            if key not in allowed:
                raise ConfigError(f"{key}: unknown section", allowed=f"one of {', '.join(allowed)}")
        for key in allowed:
            if key not in data:
                raise ConfigError(f"{key}: missing section")
        parts = {key: sections[key].from_mapping(data[key]) for key in sections}
        return cls(name=data["name"], **parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (intervals as lists), suitable for YAML and JSON; optional
        fields that are off are left out."""
        sections = {section.SECTION: getattr(self, section.SECTION) for section in SECTIONS}
        return {"name": self.name, **{key: part.to_dict() for key, part in sections.items()}}

    @property
    def has_nuisances(self) -> bool:
        """True when any nuisance of real data is on (the truth catalog then records
        each galaxy's)."""
        optional_on = any(
            name in section.OPTIONAL and name not in PRIOR_SHARES
            for section in (self.psf, self.central, self.noise)
            for name in section.to_dict()
        )
        return optional_on or isinstance(self.psf.beta, tuple)


#: Optional fields that shape the prior of the parameters, not the images: no nuisance.
PRIOR_SHARES = frozenset({"pure_disk_fraction", "pure_bulge_fraction"})

SECTIONS = (SurveyConfig, PsfConfig, CentralPrior, NeighbourPrior, NoiseConfig)


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so dumps of a config are plain YAML/JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
