"""The model's input contract: what a bundle expects of every cutout and catalog value.

A bundle states the pixel scale (arcsec/pixel), the zero point of its pixel unit (AB:
``mag = zero_point - 2.5 log10(sum of pixels)``), the unit of each condition (``psf_fwhm``
in arcsec), the ranges of conditions, magnitude and size it was trained on and, once
calibrated, the magnitude and size range its intervals were calibrated on.
:func:`read_header_facts` reads what a cutout's header says about its own pixels, and
:meth:`InputContract.check_image` compares the two, per galaxy:

* a different **zero point or flux unit** is converted exactly: the pixels are rescaled
  to the model's zero point (a ``MAGZP``-style keyword, ``FLUXMAG0``, or a ``BUNIT`` in
  Jy-like units, AB by definition; surface brightness units use the pixel area);
* a different **pixel scale** (``PIXSCALE`` or the WCS) cannot be converted without
  resampling, which changes the noise the network learnt: the galaxy is flagged
  ``WRONG_PIXEL_SCALE`` (fatal);
* a ``BUNIT`` that is no flux (``mag``, ``K``), an ``f_lambda`` without a zero point, or
  keywords that contradict each other are flagged ``BAD_UNITS`` (fatal).

Where a header states nothing, the model's assumption is used, and the run records it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits

from gampen.data.neighbours import MAX_PEAK_RATIO, SEPARATION, ratio_above
from gampen.errors import BundleError, CatalogError
from gampen.flags import Flag

#: Relative difference of pixel scales beyond which a cutout is not the model's (1 %).
PIXEL_SCALE_TOLERANCE = 0.01
#: Magnitudes by which two stated zero points may differ and still agree.
ZERO_POINT_TOLERANCE = 0.01
#: Zero points further than this from the model's (in magnitudes: a factor 1e8 in flux)
#: are taken for a broken keyword, not converted.
MAX_ZERO_POINT_SHIFT = 20.0
#: Keywords holding a zero point in magnitudes, in the order they are looked for.
ZERO_POINT_KEYS: tuple[str, ...] = ("MAGZP", "MAGZPT", "MAGZERO", "ZEROPT", "PHOTZP", "ZP")
#: Keywords holding an angular pixel size in arcsec.
PIXEL_SCALE_KEYS: tuple[str, ...] = ("PIXSCALE", "SECPIX")
#: BUNIT words that mean counts in the image's own (zero-point defined) scale.
COUNT_UNITS: frozenset[str] = frozenset(
    {"", "adu", "adus", "count", "counts", "ct", "cts", "dn", "electron", "electrons"}
    | {"e-", "e", "photon", "photons", "flux", "data", "none", "arbitrary", "relative"}
)
#: A condition outside ``[lo / ABSURD_FACTOR, hi * ABSURD_FACTOR]`` of its training range
#: is taken for a unit mistake (pixels, sigma, mas), not for unusual seeing: fatal.
ABSURD_FACTOR = 2.0
#: Aperture fluxes this many magnitudes brighter than the brightest training galaxy are
#: absurd for the zero point (wrong units, a saturated star): fatal.
ABSURD_BRIGHTER = 5.0
#: Without training ranges (older bundles), brighter than this magnitude is absurd.
ABSURD_MAG = 5.0
#: The training range of the sky noise (``ranges["sky_sigma"]``) widened by this factor
#: each way before a measured noise counts as outside it: the border estimate
#: (:func:`gampen.data.background.border_noise`) scatters by ~2 % and stayed within
#: 0.92-1.14 times the true noise on 6,000 clean `hsc` cutouts (up to 1.24 with 1-6
#: neighbours in every cutout).
NOISE_TOLERANCE = 1.2
#: Units the conditions named here are given in unless a bundle says otherwise.
DEFAULT_CONDITION_UNITS: dict[str, str] = {"psf_fwhm": "arcsec"}


@dataclass(frozen=True)
class HeaderFacts:
    """What a cutout's header says about its pixels; ``None`` where it says nothing."""

    pixel_scale: float | None = None
    pixel_scale_source: str = ""
    zero_point: float | None = None
    zero_point_source: str = ""
    #: Why the pixel units cannot be put on the model's scale ('' when they can).
    unit_problem: str = ""
    #: Numeric keywords asked for (condition values), NaN where absent.
    numbers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageCheck:
    """The outcome of checking one cutout's header against the contract."""

    #: Multiply the pixels by this to put them on the model's zero point.
    factor: float
    flags: int
    #: Human-readable reasons for the flags ('' when none).
    reason: str
    #: Where the pixel scale and zero point came from ("PIXSCALE", "assumed", ...).
    pixel_scale_source: str
    zero_point_source: str


@dataclass(frozen=True)
class InputContract:
    """What a model expects: its pixel scale, zero point, cutout size, condition units,
    training ranges (``{name: (lo, hi)}`` for conditions, ``mag`` and ``r_e``) and the
    ``mag`` / ``r_e`` ranges of its calibration set (``calibrated_ranges``)."""

    pixel_scale: float
    zero_point: float
    input_size: int
    condition_units: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Where ``gampen calibrate`` made the intervals nominal: its catalog's ``mag`` and
    #: ``r_e`` ranges (none before calibration, or in bundles calibrated before 2026-12-08).
    calibrated_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: The model takes each galaxy's PSF image where one is given (its preprocessing's
    #: ``scalars.psf_image``; not part of the ``contract`` field).
    psf_image: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The bundle's ``contract`` field (pixel scale, zero point and size live beside it)."""
        return {
            "magnitudes": "AB",
            "condition_units": dict(self.condition_units),
            "ranges": range_lists(self.ranges),
            **(
                {"calibrated_ranges": range_lists(self.calibrated_ranges)}
                if self.calibrated_ranges
                else {}
            ),
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> InputContract:
        """The contract of a bundle's metadata; a bundle without a ``contract`` field
        (format 1) has no training ranges and the default condition units."""
        scalars = metadata.get("preprocessing", {}).get("scalars") or {}
        conditions = list(scalars.get("conditions", []))
        data = metadata.get("contract") or {}
        units = dict(data.get("condition_units", {}))
        for name in conditions:
            units.setdefault(name, DEFAULT_CONDITION_UNITS.get(name, ""))
        for name, unit in units.items():
            if unit:
                _parse_unit(unit, f"field 'contract.condition_units.{name}'", BundleError)
        return cls(
            pixel_scale=float(metadata["pixel_scale"]),
            zero_point=float(metadata["zero_point"]),
            input_size=int(metadata["input_size"]),
            condition_units=units,
            ranges=_read_ranges(data, "ranges"),
            calibrated_ranges=_read_ranges(data, "calibrated_ranges"),
            psf_image=bool(scalars.get("psf_image", False)),
        )

    def check_image(self, facts: HeaderFacts) -> ImageCheck:
        """Compare a cutout's header with the contract: the factor that puts its pixels
        on the model's zero point, and the fatal flags where that is impossible."""
        flags, reasons = 0, []
        if facts.pixel_scale is not None and not _close(
            facts.pixel_scale, self.pixel_scale, PIXEL_SCALE_TOLERANCE
        ):
            flags |= Flag.WRONG_PIXEL_SCALE
            reasons.append(
                f"pixel scale {facts.pixel_scale:.4g} arcsec ({facts.pixel_scale_source}), "
                f"the model expects {self.pixel_scale:g} (resample the cutouts, or use a model "
                "trained at that scale)"
            )
        zero_point = self.zero_point if facts.zero_point is None else facts.zero_point
        problem = facts.unit_problem
        if not problem and abs(zero_point - self.zero_point) > MAX_ZERO_POINT_SHIFT:
            problem = (
                f"zero point {zero_point:g} ({facts.zero_point_source}) is implausible beside "
                f"the model's {self.zero_point:g}"
            )
        if problem:
            flags |= Flag.BAD_UNITS
            reasons.append(problem)
        return ImageCheck(
            factor=1.0 if problem else 10.0 ** (0.4 * (self.zero_point - zero_point)),
            flags=int(flags),
            reason="; ".join(reasons),
            pixel_scale_source=facts.pixel_scale_source or "assumed",
            zero_point_source=facts.zero_point_source or "assumed",
        )

    def check_flux(self, aperture_flux: float) -> tuple[int, str]:
        """``BAD_FLUX`` for an aperture flux (model units: the largest within any aperture
        about the centre) that is not positive or is absurdly bright for the zero point;
        with the reason."""
        if not aperture_flux > 0:
            return int(Flag.BAD_FLUX), (
                f"no aperture about the centre holds positive flux (at most "
                f"{aperture_flux:.4g}): a negated image, or the sky over-subtracted?"
            )
        mag = self.zero_point - 2.5 * math.log10(aperture_flux)
        limit = self.ranges["mag"][0] - ABSURD_BRIGHTER if "mag" in self.ranges else ABSURD_MAG
        if mag < limit:
            return int(Flag.BAD_FLUX), (
                f"aperture magnitude {mag:.1f} is absurdly bright for zero point "
                f"{self.zero_point:g} (brighter than {limit:g}): wrong pixel units?"
            )
        return 0, ""

    def check_neighbours(self, image: np.ndarray) -> tuple[int, str]:
        """``OUT_OF_DISTRIBUTION`` when a background-free ``image``'s brightest neighbour
        peaks more than :data:`~gampen.data.neighbours.MAX_PEAK_RATIO` times above the
        galaxy (:func:`~gampen.data.neighbours.peak_ratio`); with the reason."""
        ratio = ratio_above(image, self.pixel_scale, MAX_PEAK_RATIO)
        if ratio is not None:
            return int(Flag.OUT_OF_DISTRIBUTION), (
                f"a source beyond {SEPARATION:g} arcsec peaks {ratio:.3g} times above the "
                f"galaxy (training neighbours stay below {MAX_PEAK_RATIO:g}): a bright star?"
            )
        return 0, ""

    def check_conditions(self, names: Sequence[str], values: np.ndarray) -> tuple[int, str]:
        """Flags for a galaxy's condition values: ``BAD_CONDITION`` (fatal) when missing,
        not positive (a condition with a unit, such as a FWHM) or absurd for the training
        range (a unit mistake), else ``CONDITION_RANGE`` when outside the training range;
        with the reason."""
        flags, reasons = 0, []
        for name, value in zip(names, np.asarray(values, dtype=np.float64), strict=True):
            unit = self.condition_units.get(name, "")
            text = f"{name} = {value:.4g}{' ' + unit if unit else ''}"
            if not np.isfinite(value) or (unit and value <= 0):
                flags |= Flag.BAD_CONDITION
                reasons.append(f"{text} is missing or not positive")
                continue
            if name not in self.ranges:
                continue
            lo, hi = self.ranges[name]
            if unit and not lo / ABSURD_FACTOR <= value <= hi * ABSURD_FACTOR:
                flags |= Flag.BAD_CONDITION
                reasons.append(
                    f"{text} is far outside the training range [{lo:g}, {hi:g}] (pixels, "
                    "sigma or another unit given for a FWHM in arcsec?)"
                )
            elif not lo <= value <= hi:
                flags |= Flag.CONDITION_RANGE
                reasons.append(f"{text} is outside the training range [{lo:g}, {hi:g}]")
        return int(flags), "; ".join(reasons)

    def check_noise(self, sigma: float) -> tuple[int, str]:
        """``CONDITION_RANGE`` when a cutout's measured sky noise per pixel (model units)
        lies outside the training range of ``sky_sigma`` widened by
        :data:`NOISE_TOLERANCE` (nothing without such a range); with the reason.  Deeper
        images as well as shallower ones: the network has seen neither."""
        if "sky_sigma" not in self.ranges:
            return 0, ""
        lo, hi = self.ranges["sky_sigma"]
        if lo / NOISE_TOLERANCE <= sigma <= hi * NOISE_TOLERANCE:
            return 0, ""
        return int(Flag.CONDITION_RANGE), (
            f"sky noise {sigma:.3g} per pixel (measured on the border) is outside the "
            f"training range [{lo:g}, {hi:g}] (a deeper or shallower image than the model "
            "knows)"
        )

    def range_flags(self, summaries: Mapping[str, np.ndarray]) -> np.ndarray:
        """``PARAM_RANGE`` where a galaxy of ``mag`` or ``r_e`` is outside what the model
        knows: its posterior median outside the training range (more than half its
        posterior where the network never saw a galaxy), or its whole 68 % interval
        outside the calibrated range (``<p>_median``, ``<p>_ci68_lo/hi`` columns).

        A network trained on a bounded prior presses the posteriors of galaxies past its
        edge against the edge, so only the median catches them (84-86 % of 600 galaxies
        0-1.5 mag past the faint limit; the interval 65-67 %).  A network trained past
        the calibrated range has honest posteriors there: asking for the median would flag
        ~0.8 % of clean galaxies near the edge by their noise alone, the interval 0.1 %
        (model card, "PARAM_RANGE")."""
        n = len(next(iter(summaries.values())))
        flags = np.zeros(n, dtype=np.int64)
        with np.errstate(invalid="ignore"):
            for name in ("mag", "r_e"):
                outside = np.zeros(n, dtype=bool)
                if name in self.ranges and f"{name}_median" in summaries:
                    lo, hi = self.ranges[name]
                    median = np.asarray(summaries[f"{name}_median"])
                    outside |= (median < lo) | (median > hi)
                if name in self.calibrated_ranges and f"{name}_ci68_lo" in summaries:
                    lo, hi = self.calibrated_ranges[name]
                    below = np.asarray(summaries[f"{name}_ci68_hi"]) < lo
                    outside |= below | (np.asarray(summaries[f"{name}_ci68_lo"]) > hi)
                flags[outside] |= int(Flag.PARAM_RANGE)
        return flags

    def condition_in_unit(
        self, name: str, values: np.ndarray, unit: Any, source: str
    ) -> np.ndarray:
        """Catalog values of condition ``name`` carrying astropy ``unit``, converted to the
        contract's unit (angles exactly; pixels with the model's pixel scale).  A unit that
        cannot be converted is a :class:`CatalogError` naming the column."""
        wanted = self.condition_units.get(name, "")
        if unit is None or not wanted:
            return values
        target = _parse_unit(wanted, f"contract unit of {name}", CatalogError)
        given = _catalog_unit(unit, source)
        if given.is_equivalent(u.pix) and target.is_equivalent(u.arcsec):
            arcsec = (values * given).to_value(u.pix) * self.pixel_scale
            return (arcsec * u.arcsec).to_value(target)
        try:
            return (values * given).to_value(target)
        except u.UnitConversionError as exc:
            raise CatalogError(
                f"{source}: unit '{given}' cannot be converted to the model's {name} unit",
                value=str(given),
                allowed=f"a unit of angle (the model takes {wanted}) or pix",
            ) from exc


class Cards:
    """The keywords of several headers, the first holding a keyword winning (an image
    HDU's over the primary's), read in place rather than merged into a copy."""

    def __init__(self, *headers: fits.Header) -> None:
        self.headers = headers

    def __contains__(self, key: str) -> bool:
        return any(key in header for header in self.headers)

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return self.get(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` in the first header holding it, else ``default``."""
        for header in self.headers:
            if key in header:
                return header[key]
        return default


def read_header_facts(
    header: fits.Header | Cards, keys: Sequence[str] = (), pixel_scale: float | None = None
) -> HeaderFacts:
    """What ``header`` (the image HDU's cards over the primary's) says about pixel scale,
    zero point and units, and the numbers under ``keys``.  ``pixel_scale`` (arcsec; the
    model's) converts surface-brightness units when the header has no scale of its own."""
    scale, scale_source, scale_problem = _pixel_scale(header)
    zero_point, zp_source, unit_problem = _zero_point(header, scale or pixel_scale)
    numbers = {key: _number(header.get(key)) for key in keys}
    return HeaderFacts(
        pixel_scale=scale,
        pixel_scale_source=scale_source,
        zero_point=zero_point,
        zero_point_source=zp_source,
        unit_problem="; ".join(p for p in (scale_problem, unit_problem) if p),
        numbers=numbers,
    )


def wcs_pixel_scale(header: fits.Header | Cards) -> float | None:
    """Side of a square pixel in arcsec from a celestial WCS (``CDi_j``, or ``CDELTi``
    with ``PCi_j``): the square root of the pixel's projected area; ``None`` without one."""
    if not str(header.get("CTYPE1", "")).strip() or not str(header.get("CTYPE2", "")).strip():
        return None
    if any(f"CD{i}_{j}" in header for i in (1, 2) for j in (1, 2)):
        matrix = [[_number(header.get(f"CD{i}_{j}", 0.0)) for j in (1, 2)] for i in (1, 2)]
    elif "CDELT1" in header and "CDELT2" in header:
        pc = [[_number(header.get(f"PC{i}_{j}", float(i == j))) for j in (1, 2)] for i in (1, 2)]
        cdelt = (_number(header["CDELT1"]), _number(header["CDELT2"]))
        matrix = [[cdelt[i] * pc[i][j] for j in (0, 1)] for i in (0, 1)]
    else:
        return None
    area = abs(matrix[0][0] * matrix[1][1] - matrix[0][1] * matrix[1][0])
    units = [str(header.get(f"CUNIT{i}", "deg")).strip() or "deg" for i in (1, 2)]
    try:
        to_arcsec = [u.Unit(unit).to(u.arcsec) for unit in units]
    except (ValueError, u.UnitConversionError):
        return None
    side = math.sqrt(area * to_arcsec[0] * to_arcsec[1])
    return side if math.isfinite(side) and side > 0 else None


def psf_pixel_scale(header: fits.Header | Cards) -> float | None:
    """The pixel scale (arcsec) a PSF image's header states: ``PIXSCALE`` (or ``SECPIX``),
    else ``CD2_2`` or ``CDELT2`` (degrees) times 3600; None when it states none."""
    for key in PIXEL_SCALE_KEYS:
        value = _number(header.get(key))
        if math.isfinite(value) and value > 0:
            return value
    for key in ("CD2_2", "CDELT2"):
        value = abs(_number(header.get(key))) * 3600.0
        if math.isfinite(value) and value > 0:
            return value
    return None


def _pixel_scale(header: fits.Header | Cards) -> tuple[float | None, str, str]:
    """The pixel scale a header states, its keyword, and a contradiction if its keywords
    disagree with its WCS."""
    stated = [(key, _number(header.get(key))) for key in PIXEL_SCALE_KEYS if key in header]
    stated = [(key, value) for key, value in stated if math.isfinite(value) and value > 0]
    wcs = wcs_pixel_scale(header)
    if stated:
        key, value = stated[0]
        if wcs is not None and not _close(value, wcs, PIXEL_SCALE_TOLERANCE):
            return value, key, f"{key} = {value:g} arcsec contradicts the WCS ({wcs:.4g} arcsec)"
        return value, key, ""
    if wcs is not None:
        return wcs, "WCS", ""
    return None, "", ""


def _zero_point(
    header: fits.Header | Cards, pixel_scale: float | None
) -> tuple[float | None, str, str]:
    """The zero point a header states (keyword, ``FLUXMAG0`` or an AB ``BUNIT``), where it
    came from, and why the units are unusable ('' when they are fine)."""
    keyword = next((k for k in ZERO_POINT_KEYS if k in header), None)
    zp_key = _number(header.get(keyword)) if keyword else math.nan
    if keyword is None and "FLUXMAG0" in header:
        value = _number(header.get("FLUXMAG0"))
        keyword, zp_key = "FLUXMAG0", 2.5 * math.log10(value) if value > 0 else math.nan
    if keyword is not None and not math.isfinite(zp_key):
        return None, "", f"{keyword} = {header.get(keyword)!r} is not a usable zero point"
    bunit = str(header.get("BUNIT", "")).strip()
    zp_unit, problem = _unit_zero_point(bunit, pixel_scale)
    if keyword is None:
        if problem:
            return None, "", problem
        return zp_unit, (f"BUNIT {bunit}" if zp_unit is not None else ""), ""
    if zp_unit is not None and abs(zp_unit - zp_key) > ZERO_POINT_TOLERANCE:
        return (
            None,
            "",
            f"{keyword} gives zero point {zp_key:.3f} but BUNIT '{bunit}' means {zp_unit:.3f} (AB)",
        )
    return zp_key, keyword, ""


def _unit_zero_point(bunit: str, pixel_scale: float | None) -> tuple[float | None, str]:
    """The AB zero point of one unit of ``bunit`` (``None`` for counts, whose zero point a
    keyword must give), or why the unit cannot be used without one."""
    if bunit.lower().removesuffix("/s").strip() in COUNT_UNITS:
        return None, ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unit = u.Unit(bunit, parse_strict="silent")
    if isinstance(unit, u.UnrecognizedUnit):
        return None, f"BUNIT '{bunit}' is not a unit gampen can read"
    if unit.is_equivalent(u.count) or unit.is_equivalent(u.count / u.s):
        return None, ""
    if unit.physical_type == "dimensionless":
        return None, ""
    one = 1.0 * unit
    if unit.is_equivalent(u.Jy / u.sr) and pixel_scale:
        one = (one * (pixel_scale * u.arcsec) ** 2).to(u.Jy)  # the flux of one pixel
    if one.unit.is_equivalent(u.Jy):
        return float(one.to_value(u.ABmag)), ""
    return None, (
        f"BUNIT '{bunit}' is not a flux density gampen can put on an AB zero point "
        "(give a MAGZP keyword)"
    )


#: Spellings of angles and pixels found in catalogs that astropy does not parse.
UNIT_ALIASES: dict[str, str] = {
    "arcseconds": "arcsec",
    "arcsecond": "arcsec",
    "asec": "arcsec",
    '"': "arcsec",
    "pixels": "pix",
    "px": "pix",
    "milliarcsec": "mas",
    "degrees": "deg",
    "arcminutes": "arcmin",
}


def _catalog_unit(unit: Any, source: str) -> u.UnitBase:
    """A catalog column's unit as astropy's: upper-case FITS spellings (``ARCSEC``) and
    common words (``arcseconds``, ``pixels``) included; an unknown one is a
    :class:`CatalogError` naming the column."""
    if isinstance(unit, u.UnitBase) and not isinstance(unit, u.UnrecognizedUnit):
        return unit
    text = str(unit).strip().lower()
    text = UNIT_ALIASES.get(text, text)
    parsed = u.Unit(text, parse_strict="silent")
    if isinstance(parsed, u.UnrecognizedUnit):
        raise CatalogError(
            f"{source}: unit '{unit}' is not one gampen can read",
            value=str(unit),
            allowed="an astropy unit of angle (arcsec, mas, deg) or pix",
        )
    return parsed


def _parse_unit(text: Any, where: str, error: type[Exception]) -> u.UnitBase:
    """``text`` as an astropy unit, or ``error`` naming ``where``."""
    try:
        return u.Unit(text)
    except (ValueError, TypeError) as exc:
        raise error(f"{where}: unknown unit", value=str(text), allowed="an astropy unit") from exc


def _number(value: Any) -> float:
    """A header value as a float; NaN when it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _close(a: float, b: float, tolerance: float) -> bool:
    """True when ``a`` and ``b`` differ by at most ``tolerance`` relative to ``b``."""
    return abs(a - b) <= tolerance * abs(b)


def training_ranges(
    names: Sequence[str],
    labels: np.ndarray,
    zero_point: float,
    conditions: Mapping[str, np.ndarray],
) -> dict[str, tuple[float, float]]:
    """The ``[min, max]`` of each label (and of ``mag`` from ``flux``) and of each
    condition over the training galaxies, widened outward to 4 significant digits.
    Conditions with no finite value (read from headers, unseen here) are left out."""
    columns = {name: np.asarray(labels)[:, j] for j, name in enumerate(names)}
    if "flux" in columns and np.all(columns["flux"] > 0):
        columns["mag"] = zero_point - 2.5 * np.log10(columns["flux"])
    columns.update(conditions)
    ranges = {}
    for name, values in columns.items():
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            ranges[name] = (_round(finite.min(), math.floor), _round(finite.max(), math.ceil))
    return ranges


def range_lists(ranges: Mapping[str, tuple[float, float]]) -> dict[str, list[float]]:
    """Ranges as the bundle's JSON stores them."""
    return {k: [float(lo), float(hi)] for k, (lo, hi) in ranges.items()}


def _read_ranges(data: Mapping[str, Any], key: str) -> dict[str, tuple[float, float]]:
    """The contract's ``key`` field as ``{name: (lo, hi)}``; a pair that is not two finite
    numbers in order is a :class:`BundleError` naming the field."""
    ranges = {}
    for name, pair in dict(data.get(key, {})).items():
        ok = isinstance(pair, list | tuple) and len(pair) == 2
        lo, hi = (float(v) for v in pair) if ok else (math.nan, math.nan)
        if not (ok and math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise BundleError(f"field 'contract.{key}.{name}' is invalid", value=pair)
        ranges[name] = (lo, hi)
    return ranges


def _round(value: float, direction: Any) -> float:
    """``value`` rounded to 4 significant digits by ``direction`` (floor or ceil)."""
    if value == 0:
        return 0.0
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 3)
    return float(f"{direction(value / step) * step:.6g}")
