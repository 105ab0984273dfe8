"""A survey's own PSF images for the simulator (``psf.images``): each galaxy is convolved
with one of them instead of a Moffat or Kolmogorov profile, so a training set carries the
survey's real PSF shapes, wings and all.

The images are FITS files in one folder, each a PSF centred in its array (any normalisation:
it is set to unit flux), sampled at the survey's pixel scale unless the header states its
own (``PIXSCALE`` or a WCS: oversampled PSF models are common).  Each becomes a
``galsim.InterpolatedImage``; its FWHM, measured once, is the rendered one.  The cutout's
``PSF`` HDU is that profile dilated to the reported FWHM and drawn, like the galaxy, with
the pixel response (:func:`gampen.simulation.render.draw_psf`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import galsim
import numpy as np

from gampen.data.catalog import FITS_IMAGE_SUFFIXES
from gampen.data.contract import read_header_facts
from gampen.data.cutouts import read_image
from gampen.errors import ConfigError, CutoutError


@dataclass(frozen=True)
class PsfImage:
    """One survey PSF: its file name, profile and FWHM (arcsec)."""

    name: str
    profile: galsim.InterpolatedImage
    fwhm: float


class PsfLibrary(tuple):
    """The PSF images of a folder, in name order (a tuple of :class:`PsfImage`)."""

    def get(self, name: str) -> galsim.InterpolatedImage:
        """The profile of the PSF image ``name``."""
        for item in self:
            if item.name == name:
                return item.profile
        raise ConfigError("psf.images: no such PSF image", value=name)


@lru_cache(maxsize=4)
def psf_library(folder: str, pixel_scale: float) -> PsfLibrary:
    """Every PSF image in ``folder``, read once per process."""
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError("psf.images: not a folder", value=folder)
    names = sorted(p.name for p in path.iterdir() if p.name.lower().endswith(FITS_IMAGE_SUFFIXES))
    if not names:
        raise ConfigError(f"psf.images: {folder} holds no FITS images")
    return PsfLibrary(_load(path / name, pixel_scale) for name in names)


def _load(path: Path, pixel_scale: float) -> PsfImage:
    """A PSF image as a unit-flux ``InterpolatedImage`` with its measured FWHM."""
    try:
        array, header = read_image(path, None, np.float64)
    except CutoutError as exc:
        raise ConfigError(f"psf.images: {path} cannot be read ({exc})") from exc
    if array.ndim != 2 or not np.isfinite(array).all() or not array.sum() > 0:
        raise ConfigError(
            f"psf.images: {path} is not a PSF", allowed="a finite 2-D image of positive sum"
        )
    scale = read_header_facts(header).pixel_scale or pixel_scale
    image = galsim.Image(array / array.sum(), scale=scale)
    profile = galsim.InterpolatedImage(image, flux=1.0)
    return PsfImage(path.name, profile, float(image.calculateFWHM()))
