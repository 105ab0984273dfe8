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


#: What each bit means (quoted in the output files' metadata and the docs).
MEANINGS: dict[Flag, str] = {
    Flag.UNREADABLE: "file missing, truncated, not FITS, or without an image",
    Flag.NONFINITE: "NaN/inf pixels set to 0 (count in n_bad_pixels)",
    Flag.CROPPED: "cutout larger than the model input, centre-cropped",
    Flag.EMPTY: "every pixel zero or the image constant",
    Flag.STN_ZOOM_LIMIT: "spatial transformer zoom at its allowed limit",
    Flag.BAD_SHAPE: "wrong dimensions or band count, or too small",
    Flag.BAD_CONDITION: "a condition the model needs (psf_fwhm) missing/NaN",
}


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
