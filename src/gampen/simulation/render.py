"""Rendering a cutout with GalSim: central bulge + disk, neighbours, Moffat PSF, coadd noise.

Each object is drawn on its own stamp, sized by GalSim for that profile and clipped to the
cutout, and added into the cutout.  Drawing the scene as one summed profile would make GalSim
size its FFT for the whole scene (far-apart neighbours mean huge FFTs); per-object stamps keep
every FFT as small as the object needs.
"""

from __future__ import annotations

import galsim
import numpy as np

from gampen.simulation.config import SimulationConfig
from gampen.simulation.priors import Galaxy, Neighbour, flux_from_mag
from gampen.simulation.truth import central_components

#: Neighbours are distractors, not truth.  GalSim builds a new Sersic table for every index n;
#: these looser tolerances make that ~3x faster and change no pixel by more than ~5e-7 of the
#: neighbour's flux (far below the noise).  The central galaxy keeps GalSim's defaults.
NEIGHBOUR_GSPARAMS = galsim.GSParams(
    kvalue_accuracy=1e-4, integration_relerr=1e-5, integration_abserr=1e-7
)


def psf_profile(galaxy: Galaxy, config: SimulationConfig) -> galsim.GSObject:
    """The galaxy's Moffat PSF."""
    return galsim.Moffat(beta=config.psf.beta, fwhm=galaxy.psf_fwhm)


def central_profile(galaxy: Galaxy, config: SimulationConfig) -> galsim.GSObject:
    """The intrinsic (pre-PSF) central galaxy centred on the origin: sheared bulge + disk."""
    bulge, disk = central_components(galaxy, config)
    angle = galaxy.pa * galsim.degrees
    parts = []
    if bulge.flux > 0.0:
        profile = galsim.DeVaucouleurs(half_light_radius=bulge.half_light_radius, flux=bulge.flux)
        parts.append(profile.shear(q=bulge.q, beta=angle))
    if disk.flux > 0.0:
        profile = galsim.Exponential(half_light_radius=disk.half_light_radius, flux=disk.flux)
        parts.append(profile.shear(q=disk.q, beta=angle))
    return parts[0] if len(parts) == 1 else galsim.Add(parts)


def neighbour_profile(neighbour: Neighbour, config: SimulationConfig) -> galsim.GSObject:
    """The intrinsic (pre-PSF) profile of a neighbour, centred on the origin."""
    flux = flux_from_mag(neighbour.mag, config.survey.zero_point)
    profile = galsim.Sersic(n=neighbour.n, half_light_radius=neighbour.half_light_radius, flux=flux)
    return profile.shear(q=neighbour.q, beta=neighbour.pa * galsim.degrees)


def blank_image(config: SimulationConfig) -> galsim.ImageD:
    """An empty cutout with the survey's pixel scale (1-based GalSim bounds)."""
    size = config.survey.stamp_size
    return galsim.ImageD(size, size, scale=config.survey.pixel_scale)


def central_position(galaxy: Galaxy, image: galsim.Image) -> galsim.PositionD:
    """Pixel position of the central galaxy: the image centre plus its offset."""
    return image.true_center + galsim.PositionD(galaxy.dx, galaxy.dy)


def draw_noiseless(
    galaxy: Galaxy, config: SimulationConfig, *, neighbours: bool = True
) -> galsim.ImageD:
    """The PSF-convolved, pixelated, noiseless cutout (optionally without neighbours)."""
    image = blank_image(config)
    psf = psf_profile(galaxy, config)
    centre = central_position(galaxy, image)
    _add_object(image, galsim.Convolve(central_profile(galaxy, config), psf), centre)
    if neighbours:
        scale = config.survey.pixel_scale
        for neighbour in galaxy.neighbours:
            position = image.true_center + galsim.PositionD(neighbour.x, neighbour.y) / scale
            profile = galsim.Convolve(
                neighbour_profile(neighbour, config), psf, gsparams=NEIGHBOUR_GSPARAMS
            )
            _add_object(image, profile, position)
    return image


def add_noise(image: galsim.Image, galaxy: Galaxy, config: SimulationConfig, seed: int) -> None:
    """Poisson noise on (image + sky) with the gain giving ``sky_sigma``, sky subtracted after.

    GalSim's CCDNoise adds ``sky_level``, draws Poisson electrons with ``gain`` e-/unit and
    removes the sky again; with gain = sky_level / sky_sigma^2 the blank-sky noise is exactly
    ``sky_sigma`` and brighter pixels get their extra source shot noise.
    """
    sky = config.noise.sky_level
    noise = galsim.CCDNoise(
        galsim.BaseDeviate(seed), sky_level=sky, gain=sky / galaxy.sky_sigma**2, read_noise=0.0
    )
    image.addNoise(noise)


def render_cutout(galaxy: Galaxy, config: SimulationConfig, seed: int) -> np.ndarray:
    """The final float32 cutout of ``galaxy``: scene, PSF, pixel response and noise."""
    image = draw_noiseless(galaxy, config)
    add_noise(image, galaxy, config, seed)
    return image.array.astype(np.float32)


def _add_object(image: galsim.Image, profile: galsim.GSObject, position: galsim.PositionD) -> None:
    """Draw ``profile`` centred at ``position`` on a stamp of its own size, added to ``image``."""
    half = profile.getGoodImageSize(image.scale) // 2 + 1
    ix, iy = round(position.x), round(position.y)
    bounds = galsim.BoundsI(ix - half, ix + half, iy - half, iy + half) & image.bounds
    if not bounds.isDefined():
        return
    profile.drawImage(image=image[bounds], center=position, add_to_image=True)
