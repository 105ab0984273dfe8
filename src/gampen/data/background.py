"""The local background of a cutout, estimated from its border and removed before anything
is measured (``--background border``).

Aperture photometry over a 48-pixel radius sums ~7,200 pixels, so a residual sky of 0.01
ADU per pixel (28 mag/arcsec^2 on HSC) moves it by 72 ADU, as much as a mag-22.6 galaxy.
Real coadds leave such residuals.  A model trained with this step sees cutouts whose
border is at zero on average: per band, a plane (pedestal and gradient) fitted to the
pixels of a frame ``width`` pixels wide around the edge, with iterative 3-sigma clipping
of the residuals (their MAD scale) so that neighbours and artefacts on the border do not
pull it, is subtracted from the whole cutout.

Clipping catches a neighbour's core but not its wings, nor the outskirts of a large central
galaxy reaching the border: both raise the plane, and every galaxy's flux comes out low
(on a crowded set, by 0.5 % on the median within twice r_e, 8 % at the 95th percentile).
With ``mask_sources`` the frame's pixels that belong to a source are left out of the fit:
the first plane's residual image, smoothed by a Gaussian of :data:`SMOOTH` pixels, is
thresholded at :data:`DETECT` robust sigmas of its frame, detections smaller than
:data:`MIN_AREA` pixels dropped and the rest grown by :data:`GROW` pixels (a segmentation
as SExtractor's, on the smoothed image).  On that crowded set the median bias fell to
0.2 % and the 95th percentile to 3 % (``scripts/background_bias.py``); wings below any
threshold still pull the plane a little.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from scipy import ndimage

from gampen.data.centring import recentred
from gampen.errors import ConfigError

#: Clipping threshold, in robust standard deviations of the residuals.
CLIP = 3.0
#: Rounds of fitting and clipping at most.
ROUNDS = 5
#: Sky noise: robust sd to MAD; blocks whose MAD exceeds this many times the median
#: block's hold a source or its wings and are left out.
MAD_TO_SD, NOISY_BLOCK = 1.482602218505602, 1.5
#: Source masking: Gaussian smoothing (pixels), detection threshold (robust sigmas of the
#: smoothed frame), fewest connected pixels of a detection (smaller ones are noise peaks,
#: whose masking alone would lower the plane by 0.05 sky sigma), growth of each detection
#: (pixels) and the least share of the frame that must stay free (else the clipped plane of
#: all of it is kept).
SMOOTH, DETECT, MIN_AREA, GROW, MIN_FREE = 1.5, 2.0, 20, 3, 0.2


@dataclass(frozen=True)
class BorderBackground:
    """Removes the plane fitted to a cutout's border frame of ``width`` pixels, with the
    frame's sources masked first if ``mask_sources``; with ``recentre``, then rolls the
    central galaxy back to the centre (:mod:`gampen.data.centring`)."""

    width: int = 8
    recentre: bool = False
    mask_sources: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ConfigError("background width must be a positive integer", value=self.width)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """``image`` (bands, n, n) minus its estimated background (recentred if asked),
        float32."""
        cleaned = (image - self.estimate(image)).astype(np.float32, copy=False)
        return recentred(cleaned) if self.recentre else cleaned

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """The fitted background planes (bands, n, n), float64."""
        size = image.shape[-1]
        design, frame, full = _geometry(size, self.width)
        planes = np.empty(image.shape, dtype=np.float64)
        for band, pixels in enumerate(np.asarray(image, dtype=np.float64)):
            values = pixels.ravel()[frame]
            plane = (full @ fit_plane(design, values)).reshape(size, size)
            if self.mask_sources:
                masked = source_mask(pixels - plane, frame).ravel()[frame]
                if np.count_nonzero(~masked) >= MIN_FREE * len(frame):
                    values = np.where(masked, np.nan, values)
                    plane = (full @ fit_plane(design, values)).reshape(size, size)
            planes[band] = plane
        return planes

    def to_dict(self) -> dict[str, Any]:
        """The bundle's ``preprocessing.background`` (``recentre`` only when set, so
        bundles without it read as before)."""
        data: dict[str, Any] = {"method": "border", "width": self.width}
        data |= {"recentre": True} if self.recentre else {}
        return data | {"mask_sources": True} if self.mask_sources else data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> BorderBackground | None:
        """Rebuild from :meth:`to_dict`; ``None`` (older bundles, or none asked) is none."""
        if data is None:
            return None
        if (
            not isinstance(data, dict)
            or data.get("method") != "border"
            or set(data) - {"method", "width", "recentre", "mask_sources"}
            or not isinstance(data.get("recentre", False), bool)
            or not isinstance(data.get("mask_sources", False), bool)
        ):
            raise ConfigError("unknown background estimate", value=data, allowed="method border")
        return cls(
            width=data.get("width", 8),
            recentre=data.get("recentre", False),
            mask_sources=data.get("mask_sources", False),
        )


def border_noise(image: np.ndarray, width: int = 8) -> np.ndarray:
    """Per band of ``image`` (bands, n, n), the sky noise per pixel measured on its border
    frame ``width`` pixels wide: the frame is cut into ``width`` x ``width`` blocks, those
    whose spread about their median is :data:`NOISY_BLOCK` times the median block's
    dropped (neighbours, a large galaxy's wings), and the robust sd (MAD) of the rest's
    pixels about their own block's mean returned, times ``sqrt(m / (m - 1))`` for the
    ``m`` pixels a mean takes out.  Block by block, a residual sky, a gradient or a broad
    bump adds nearly nothing; correlated noise leaves it unbiased (each pixel's sd)."""
    out = np.empty(image.shape[0])
    for band, pixels in enumerate(np.asarray(image, dtype=np.float64)):
        blocks = _frame_blocks(np.nan_to_num(pixels), width)
        spread = np.median(np.abs(blocks - np.median(blocks, axis=1, keepdims=True)), axis=1)
        quiet = blocks[spread <= NOISY_BLOCK * np.median(spread)]
        residual = quiet - quiet.mean(axis=1, keepdims=True)
        m = quiet.shape[1]
        out[band] = MAD_TO_SD * np.median(np.abs(residual)) * np.sqrt(m / (m - 1))
    return out


def _frame_blocks(pixels: np.ndarray, width: int) -> np.ndarray:
    """The border frame of ``pixels`` (n, n) as (blocks, width * width): whole blocks along
    the top and bottom strips, then along the left and right between them."""
    n = pixels.shape[0]
    across = (n // width) * width
    down = width + ((n - 2 * width) // width) * width
    strips = (
        pixels[:width, :across],
        pixels[n - width :, :across],
        pixels[width:down, :width].T,
        pixels[width:down, n - width :].T,
    )
    return np.concatenate(
        [s.reshape(width, -1, width).transpose(1, 0, 2).reshape(-1, width * width) for s in strips]
    )


def source_mask(residual: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Pixels of a background-free image (n, n) that belong to a source: the image smoothed
    by :data:`SMOOTH`, above :data:`DETECT` robust sigmas (the MAD scale of the smoothed
    border frame, whose flat indices are ``frame``: nearly all sky) over at least
    :data:`MIN_AREA` connected pixels, grown by :data:`GROW` pixels."""
    smoothed = ndimage.gaussian_filter(np.nan_to_num(residual), SMOOTH)
    edge = smoothed.ravel()[frame]
    scale = 1.4826 * np.median(np.abs(edge - np.median(edge)))
    labels, _ = ndimage.label(smoothed > np.median(edge) + DETECT * scale)
    areas = np.bincount(labels.ravel())  # every label has a pixel: one count per label
    sources = (areas >= MIN_AREA)[labels] & (labels > 0)
    return ndimage.binary_dilation(sources, iterations=GROW)


def fit_plane(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares plane coefficients (3,) of ``values`` on ``design`` (m, 3), refitted
    after dropping points beyond :data:`CLIP` robust sigmas, until nothing changes."""
    keep = np.isfinite(values)
    coefficients = np.zeros(design.shape[1])
    for _ in range(ROUNDS):
        if keep.sum() < design.shape[1]:
            break
        coefficients = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        residual = values - design @ coefficients
        centre = np.median(residual[keep])
        scale = 1.4826 * np.median(np.abs(residual[keep] - centre))
        if not scale > 0:
            break
        clipped = np.isfinite(values) & (np.abs(residual - centre) <= CLIP * scale)
        if np.array_equal(clipped, keep):
            break
        keep = clipped
    return coefficients


@cache
def _geometry(size: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plane's design matrix on the frame, the frame's flat indices, and the design
    matrix of the whole cutout (coordinates in units of the half side)."""
    y, x = (np.mgrid[:size, :size] - (size - 1) / 2.0) / (size / 2.0)
    full = np.stack([np.ones(size * size), x.ravel(), y.ravel()], axis=1)
    inner = np.zeros((size, size), dtype=bool)
    inner[width:-width, width:-width] = True
    frame = np.flatnonzero(~inner.ravel())
    return full[frame], frame, full
