"""How much brighter than the galaxy its brightest neighbour looks: the bright-star check.

Training cutouts hold neighbours at most a magnitude brighter than the central galaxy and
at least 2.5 arcsec from it (the presets' ``neighbours``).  A bright star a few arcsec
away is far outside that, and the posteriors go wrong without warning: with a star of
mag 15-19 3-7 arcsec from each of 600 clean `hsc` galaxies (``scripts/bright_stars.py``),
r_e's 68 % intervals held 41 % of the galaxies the OOD score left unflagged (flux 56 %,
errors twice the clean ones).  :func:`peak_ratio` compares the highest peak of the
smoothed, background-free image beyond :data:`SEPARATION` arcsec with the highest within
:data:`CORE` arcsec of the centre; ``gampen predict`` flags ``OUT_OF_DISTRIBUTION`` above
:data:`MAX_PEAK_RATIO`, set above the largest ratio of 3,000 clean `hsc` and 3,000
`hsc-real` galaxies (16 and 22; seed 31337).  It flags 60 % of the galaxies beside a
star (with the OOD score's own, 64 %; the rest hold r_e 48 / 82 % at 68 / 95 %) and 1 of
the 3,000 clean galaxies of the frozen seed 24680.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import ndimage

#: Gaussian smoothing (pixels) before peaks are compared: noise peaks of faint galaxies
#: would otherwise pass for the galaxy's.
SMOOTH = 1.0
#: Radius (arcsec) within which the galaxy's own peak is sought.
CORE = 0.6
#: Nearest a neighbour comes in training (arcsec): peaks beyond it are neighbours'.
SEPARATION = 2.5
#: Side (pixels) of the box in which a neighbour's peak is a local maximum.
PEAK_BOX = 5
#: Largest neighbour-to-galaxy peak ratio before the galaxy is flagged: above every
#: in-distribution one measured (see above), so that clean galaxies stay unflagged.
MAX_PEAK_RATIO = 25.0


def peak_ratio(image: np.ndarray, pixel_scale: float) -> float:
    """The highest local maximum of the smoothed, band-summed, background-free ``image``
    (bands, n, n) beyond :data:`SEPARATION` arcsec of the centre, over its highest value
    within :data:`CORE` arcsec (inf when that is not positive, 0 with no such maximum)."""
    total, radius = _smoothed(image, pixel_scale)
    return _ratio(total, radius, _peaks(total, radius))


def ratio_above(image: np.ndarray, pixel_scale: float, limit: float) -> float | None:
    """:func:`peak_ratio` where it exceeds ``limit``, else None; the peak search is
    skipped when no pixel beyond :data:`SEPARATION` reaches ``limit`` times the galaxy's
    peak (nearly every galaxy), which keeps prediction fast."""
    total, radius = _smoothed(image, pixel_scale)
    if _ratio(total, radius, radius > SEPARATION) <= limit:
        return None
    ratio = _ratio(total, radius, _peaks(total, radius))
    return ratio if ratio > limit else None


def _smoothed(image: np.ndarray, pixel_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The band sum of ``image`` smoothed by :data:`SMOOTH`, and each pixel's distance
    from the centre in arcsec."""
    total = ndimage.gaussian_filter(np.asarray(image, dtype=np.float64).sum(axis=0), SMOOTH)
    return total, _radius(total.shape[-1], float(pixel_scale))


def _peaks(total: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Local maxima of ``total`` (in :data:`PEAK_BOX`) beyond :data:`SEPARATION`."""
    return (total == ndimage.maximum_filter(total, PEAK_BOX)) & (radius > SEPARATION)


def _ratio(total: np.ndarray, radius: np.ndarray, where: np.ndarray) -> float:
    """The highest of ``total`` ``where`` over its highest within :data:`CORE`."""
    centre = total[radius <= CORE].max()
    neighbour = total[where].max(initial=0.0)
    if not centre > 0:
        return float("inf") if neighbour > 0 else 0.0
    return float(neighbour / centre)


@cache
def _radius(size: int, pixel_scale: float) -> np.ndarray:
    """Distances (arcsec) of a ``size`` x ``size`` cutout's pixels from its centre."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2.0
    radius = np.hypot(x, y) * pixel_scale
    radius.flags.writeable = False
    return radius
