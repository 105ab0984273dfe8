"""Writing a simulated cutout as FITS: float32 primary HDU, survey keywords and a simple WCS,
and a second HDU, ``PSF``: the galaxy's PSF as a PSF model reports it (:func:`psf_hdu`).

The headers hold only deterministic values (no dates), so the same galaxy always gives the
same bytes.  Files are written atomically: a cutout that exists is complete, which is what
lets an interrupted run resume.  :func:`add_psf_hdu` gives a cutout written before the
``PSF`` HDU existed the same HDU (``scripts/add_psf_hdus.py``, and a resumed run).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from astropy.io import fits

from gampen import __version__
from gampen.atomic import atomic_path
from gampen.data.cutouts import PSF_HDU
from gampen.errors import CutoutError
from gampen.flags import Flag
from gampen.simulation.config import SimulationConfig
from gampen.simulation.priors import Galaxy
from gampen.simulation.render import draw_psf


def cutout_header(galaxy: Galaxy, config: SimulationConfig) -> fits.Header:
    """Survey keywords, the central galaxy's pixel position and a TAN WCS at (0, 0)."""
    size = config.survey.stamp_size
    centre = 0.5 * (size + 1)  # FITS pixel coordinate of the image centre
    degrees = config.survey.pixel_scale / 3600.0
    cards = [
        ("OBJECT", str(galaxy.object_id), "gampen object_id"),
        ("BUNIT", "flux", "pixel units: mag = MAGZP - 2.5 log10(sum)"),
        ("PIXSCALE", config.survey.pixel_scale, "[arcsec/pixel]"),
        ("MAGZP", config.survey.zero_point, "photometric zero point [mag]"),
        ("PSF_FWHM", galaxy.psf_fwhm, "[arcsec] PSF FWHM (as a PSF model reports it)"),
        *_psf_shape_cards(galaxy, config),
        ("SKYSIG", galaxy.sky_sigma, "sky noise per pixel [flux units]"),
        ("SKYLEVEL", config.noise.sky_level, "sky level subtracted [flux units/pixel]"),
        ("CEN_X", centre + galaxy.dx, "central galaxy x (FITS pixel, 1-based)"),
        ("CEN_Y", centre + galaxy.dy, "central galaxy y (FITS pixel, 1-based)"),
        ("NNEIGHB", len(galaxy.neighbours), "number of neighbouring galaxies"),
        ("PRESET", config.name, "gampen simulate preset"),
        ("CREATOR", f"gampen {__version__}", "gampen simulate"),
        ("WCSAXES", 2, "number of WCS axes"),
        ("CTYPE1", "RA---TAN", ""),
        ("CTYPE2", "DEC--TAN", ""),
        ("CUNIT1", "deg", ""),
        ("CUNIT2", "deg", ""),
        ("CRPIX1", centre, "reference pixel: the image centre"),
        ("CRPIX2", centre, ""),
        ("CRVAL1", 0.0, "[deg] arbitrary sky position"),
        ("CRVAL2", 0.0, "[deg]"),
        ("CD1_1", -degrees, "[deg/pixel] RA increases to the left"),
        ("CD1_2", 0.0, ""),
        ("CD2_1", 0.0, ""),
        ("CD2_2", degrees, "[deg/pixel]"),
    ]
    return fits.Header(cards)


def _psf_shape_cards(galaxy: Galaxy, config: SimulationConfig) -> list[tuple]:
    """``PSF_BETA`` of a Moffat PSF, or ``PSFMODEL`` of another; the first presets (no
    nuisances) keep their original single card."""
    if not config.has_nuisances:
        return [("PSF_BETA", config.psf.beta, "Moffat PSF beta")]
    if galaxy.psf_model != "moffat":
        return [("PSFMODEL", galaxy.psf_model, "PSF profile")]
    beta = config.psf.beta if math.isnan(galaxy.psf_beta) else galaxy.psf_beta
    return [("PSFMODEL", "moffat", "PSF profile"), ("PSF_BETA", beta, "Moffat PSF beta")]


def psf_hdu(galaxy: Galaxy, config: SimulationConfig) -> fits.ImageHDU:
    """The cutout's ``PSF`` HDU: :func:`~gampen.simulation.render.draw_psf`, a float32
    ``PSF_STAMP`` (41) pixels square image of unit sum centred on the central pixel, at the
    survey's pixel scale, pixel response included; the PSF as reported (FWHM ``psf_fwhm``),
    which differs from the rendered one by the ``psf.fwhm_error`` nuisance."""
    header = fits.Header(
        [
            ("PIXSCALE", config.survey.pixel_scale, "[arcsec/pixel]"),
            ("PSF_FWHM", galaxy.psf_fwhm, "[arcsec] PSF FWHM (as a PSF model reports it)"),
            ("COMMENT", "The PSF as a PSF model reports it: the rendered PSF dilated to"),
            ("COMMENT", "the reported FWHM (PSF_FWHM), pixel response included, centred"),
            ("COMMENT", "on the central pixel, normalised to unit sum."),
        ]
    )
    return fits.ImageHDU(data=draw_psf(galaxy, config), header=header, name=PSF_HDU)


def write_cutout(
    path: str | os.PathLike[str],
    data: np.ndarray,
    header: fits.Header,
    psf: fits.ImageHDU | None = None,
) -> Path:
    """Write ``data`` as float32 in the primary HDU of ``path`` (and the ``psf`` HDU, when
    given, after it), atomically."""
    hdus = [fits.PrimaryHDU(data=np.asarray(data, dtype=np.float32), header=header)]
    if psf is not None:
        hdus.append(psf)
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return Path(path)


def add_psf_hdu(path: str | os.PathLike[str], galaxy: Galaxy, config: SimulationConfig) -> bool:
    """Give the cutout ``path`` the ``PSF`` HDU of ``galaxy`` unless it has one; True when
    it was added.  The file is rewritten atomically, the primary HDU byte for byte, so the
    result is the file a run writing the ``PSF`` HDU makes.  A symlinked cutout (or folder)
    is updated where it lies, for every set that shares it."""
    final = Path(path).resolve()
    with fits.open(final, memmap=False) as hdul:
        if PSF_HDU in hdul:
            return False
        primary = hdul[0]
        if len(hdul) != 1 or not primary.is_image or primary.data is None:
            raise CutoutError(
                final, "is not a gampen simulate cutout (one image HDU)", flag=Flag.UNREADABLE
            )
        with atomic_path(final) as tmp:
            fits.HDUList([primary, psf_hdu(galaxy, config)]).writeto(tmp)
    return True
