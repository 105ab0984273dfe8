"""Per-galaxy quality flags: the one place the bitmask is defined.

A batch run never stops for one bad galaxy; it records these bits in the ``flags``
column instead.  Rows carrying any :data:`FATAL` bit hold NaN estimates.
"""

from __future__ import annotations

import enum

import numpy as np


class Flag(enum.IntFlag):
    """Bits of the ``flags`` column."""

    #: The file is missing, truncated, not FITS, or holds no image HDU.
    UNREADABLE = 1
    #: NaN or inf pixels were replaced by 0 after normalisation (count kept in ``n_bad_pixels``).
    NONFINITE = 2
    #: The cutout was larger than the model input and was centre-cropped.
    CROPPED = 4
    #: Every pixel is zero, or the image is constant: nothing to measure.
    EMPTY = 8
    #: The spatial transformer's zoom sits at its allowed limit.
    STN_ZOOM_LIMIT = 16
    #: Wrong dimensionality or band count, or smaller than the model input.
    BAD_SHAPE = 32
    #: A catalog condition the model needs (e.g. ``psf_fwhm``) is missing or not finite.
    BAD_CONDITION = 64


#: Bits after which no estimate is made (the row holds NaN).
FATAL = Flag.UNREADABLE | Flag.EMPTY | Flag.BAD_SHAPE | Flag.BAD_CONDITION


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
