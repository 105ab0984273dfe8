"""Per-galaxy quality flags: the one place the bitmask is defined.

A batch run never stops for one bad galaxy; it records these bits in the ``flags``
column instead.  Rows carrying any :data:`FATAL` bit hold NaN estimates.
"""

from __future__ import annotations

import enum

import numpy as np


class Flag(enum.IntFlag):
    """Bits of the ``flags`` column; :data:`MEANINGS` says what each one means."""

    UNREADABLE = 1
    NONFINITE = 2
    CROPPED = 4
    EMPTY = 8
    STN_ZOOM_LIMIT = 16
    BAD_SHAPE = 32
    BAD_CONDITION = 64
    WRONG_PIXEL_SCALE = 128
    BAD_UNITS = 256
    MASKED_CORE = 512
    BAD_FLUX = 1024
    CONDITION_RANGE = 2048
    PARAM_RANGE = 4096
    OUT_OF_DISTRIBUTION = 8192


#: What each bit means (quoted in the output files' metadata and the docs).
MEANINGS: dict[Flag, str] = {
    Flag.UNREADABLE: "file missing, truncated, not FITS, or without a float image",
    Flag.NONFINITE: "pixels without data (NaN/inf, or zero blocks) filled (n_bad_pixels)",
    Flag.CROPPED: "cutout larger than the model input, centre-cropped",
    Flag.EMPTY: "every pixel zero or the image constant",
    Flag.STN_ZOOM_LIMIT: "spatial transformer zoom at its allowed limit",
    Flag.BAD_SHAPE: "wrong dimensions or band count, or too small",
    Flag.BAD_CONDITION: "a condition (psf_fwhm) missing, not positive or absurd",
    Flag.WRONG_PIXEL_SCALE: "header pixel scale differs from the model's",
    Flag.BAD_UNITS: "pixel units (BUNIT/zero point) not convertible",
    Flag.MASKED_CORE: "over 5 % of the central pixels without data",
    Flag.BAD_FLUX: "no aperture about the centre holds positive flux, or absurdly bright",
    Flag.CONDITION_RANGE: "a condition (psf_fwhm, or the sky noise) outside the training range",
    Flag.PARAM_RANGE: "mag or r_e out of the trained (median) or calibrated (68 % interval) range",
    Flag.OUT_OF_DISTRIBUTION: "image unlike the training set's: ood_score > 1, or a star beside it",
}


#: Bits after which no estimate is made (the row holds NaN).
FATAL = (
    Flag.UNREADABLE
    | Flag.EMPTY
    | Flag.BAD_SHAPE
    | Flag.BAD_CONDITION
    | Flag.WRONG_PIXEL_SCALE
    | Flag.BAD_UNITS
    | Flag.MASKED_CORE
    | Flag.BAD_FLUX
)


def describe(value: int) -> list[str]:
    """Names of the bits set in ``value``, e.g. ``['NONFINITE', 'CROPPED']``."""
    return [f.name for f in Flag if value & f.value]


def is_fatal(values: np.ndarray | int) -> np.ndarray | bool:
    """True where a flags value holds a fatal bit."""
    return (np.asarray(values) & int(FATAL)) != 0


def summarise(values: np.ndarray) -> dict[str, int]:
    """How many rows carry each flag bit (bits that never occur are left out)."""
    values = np.asarray(values, dtype=np.int64)
    counts = {f.name: int(np.count_nonzero(values & f.value)) for f in Flag}
    return {name: n for name, n in counts.items() if n}
