"""Pixels without data, and how a cutout is completed where they were.

A cutout at a survey's edge, across a chip gap or over a masked star has pixels that hold
no measurement: NaN or inf in most pipelines, a block of exact zeros in others.  Left as
zeros they enter the border background fit and the aperture photometry as if they were
sky, and the galaxy's light that fell there is simply missing: with a strip of 10-30
pixels gone from one side, `hsc-compact`'s flux intervals held 57 % at 68 %, unflagged.

So they are found (:func:`blank_pixels` for the zero blocks: sky noise never leaves a
3x3 block of exact zeros) and, before anything else, filled with the pixel on the other
side of the cutout's centre (:func:`filled`): the central galaxy is symmetric under a half
turn, so its light comes back, and the border frame whole, with real sky (and its
residual pedestal) in it, for the background fit.  Where that pixel has no data either,
the fill is the median of the pixels that have.  The galaxy is flagged ``NONFINITE`` and
``n_bad_pixels`` counts them; over 5 % of the central disc is ``MASKED_CORE`` (fatal).

Measured on 600 clean `hsc` galaxies (seed 31337) with a strip 10-30 pixels wide on one
side of each cutout set to zero (``scripts/survey_edge.py``): the 68 % intervals held
65.7 / 63.0 / 58.0 % (bt / r_e / flux) with the zeros taken as sky, 64.9 / 67.1 / 62.3 %
filled so, against 65.9 / 69.3 / 65.4 % for the whole cutouts; with a residual sky of
+-0.5 sigma as well (``--pedestal 0.5``), 57.8 / 48.2 / 35.5 % taken as sky (the zeros
pull the border plane) and the same 64.9 / 67.1 / 62.3 % filled.  The fill copies the
noise too, so the photometry of faint galaxies is a little noisier than the network
believes.  Leaving the pixels out of the background fit instead was worse (flux 43 %):
the plane of a three-sided frame differs from the one the network was trained with.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Side of the smallest block of exact zeros taken for missing data.
BLOCK = 3


def blank_pixels(cube: np.ndarray) -> np.ndarray:
    """Where ``cube`` (bands, n, n) holds exact zeros that belong to a block of at least
    :data:`BLOCK` x :data:`BLOCK` of them (bool, same shape)."""
    zero = cube == 0
    if not zero.any():  # nearly every cutout: skip the morphology
        return zero
    square = np.ones((1, BLOCK, BLOCK), dtype=bool)
    return ndimage.binary_opening(zero, structure=square)


def filled(image: np.ndarray, missing: np.ndarray | None) -> np.ndarray:
    """``image`` (bands, n, n) with each ``missing`` pixel replaced by the pixel a half
    turn about the cutout's centre away, or, where that one is missing too, by the band's
    median of the pixels with data."""
    if missing is None or not missing.any():
        return image
    out = np.array(image, copy=True)
    for band, lost in enumerate(missing):
        if lost.all():
            continue
        opposite = image[band, ::-1, ::-1]
        usable = ~lost[::-1, ::-1]
        sky = np.median(image[band][~lost])
        out[band] = np.where(lost, np.where(usable, opposite, sky), image[band])
    return out
