"""Rendering a cutout with GalSim: central bulge + disk, neighbours, Moffat PSF, coadd noise,
and the image of the PSF as a PSF model reports it (:func:`draw_psf`, the cutout's ``PSF`` HDU).

Each object is drawn on its own stamp, sized by GalSim for that profile and clipped to the
cutout, and added into the cutout.  Drawing the scene as one summed profile would make GalSim
size its FFT for the whole scene (far-apart neighbours mean huge FFTs); per-object stamps keep
every FFT as small as the object needs.
"""

from __future__ import annotations

import math

import galsim
import numpy as np
from scipy import ndimage

from gampen.simulation.config import SimulationConfig
from gampen.simulation.priors import Galaxy, Neighbour, flux_from_mag
from gampen.simulation.psf_images import psf_library
from gampen.simulation.truth import central_components, clumps

#: Neighbours are distractors, not truth.  GalSim builds a new Sersic table for every index n;
#: these looser tolerances make that ~3x faster and change no pixel by more than ~5e-7 of the
#: neighbour's flux (far below the noise).  The central galaxy keeps GalSim's defaults.
NEIGHBOUR_GSPARAMS = galsim.GSParams(
    kvalue_accuracy=1e-4, integration_relerr=1e-5, integration_abserr=1e-7
)
#: Side in pixels of the PSF image written with each cutout (odd: the PSF's centre is the
#: centre of the central pixel).
PSF_STAMP = 41


def psf_profile(galaxy: Galaxy, config: SimulationConfig) -> galsim.GSObject:
    """The PSF the galaxy is drawn with: Moffat or Kolmogorov at the rendered FWHM,
    sheared by the PSF's ellipticity."""
    fwhm = galaxy.rendered_fwhm
    if galaxy.psf_file:
        return psf_library(config.psf.images, config.survey.pixel_scale).get(galaxy.psf_file)
    if galaxy.psf_model == "kolmogorov":
        psf = galsim.Kolmogorov(fwhm=fwhm)
    else:
        beta = config.psf.beta if math.isnan(galaxy.psf_beta) else galaxy.psf_beta
        psf = galsim.Moffat(beta=beta, fwhm=fwhm)
    if galaxy.psf_g1 or galaxy.psf_g2:
        psf = psf.shear(g1=galaxy.psf_g1, g2=galaxy.psf_g2)
    return psf


def reported_psf_profile(galaxy: Galaxy, config: SimulationConfig) -> galsim.GSObject:
    """The PSF as a PSF model reports it: the rendered PSF (same family, beta, shear, or
    survey image) dilated by ``psf_fwhm / rendered_fwhm``, so its FWHM is the reported
    ``psf_fwhm``.  The ``psf.fwhm_error`` nuisance is thus an error of the PSF model, not
    only of a catalog number; without nuisances the two FWHMs agree and this is the
    rendered PSF itself."""
    psf = psf_profile(galaxy, config)
    ratio = galaxy.psf_fwhm / galaxy.rendered_fwhm
    return psf if ratio == 1.0 else psf.dilate(ratio)


def draw_psf(galaxy: Galaxy, config: SimulationConfig) -> np.ndarray:
    """The reported PSF (:func:`reported_psf_profile`) as a float32 ``PSF_STAMP`` x
    ``PSF_STAMP`` image at the survey's pixel scale, centred on the central pixel and
    normalised to unit sum: the cutout's ``PSF`` HDU.

    Drawn with ``method="auto"``, i.e. convolved with the pixel response, as every object
    of the cutout is (:func:`_add_object` draws with GalSim's default, ``"auto"``): the
    image is what a point source at the centre of a pixel would look like in the cutout,
    the effective PSF a network compares with the galaxy's pixels and what a survey's PSF
    model (PSFEx, Piff) reports.  ``"no_pixel"`` would give a PSF narrower than the one in
    the cutouts by the pixel's width.  So the image's own FWHM is that of the reported PSF
    convolved with the pixel: 1.5-4 % above ``psf_fwhm`` at the hsc and lsst scales,
    11-14 % at euclid-vis's (``PSF_FWHM`` stays the profile's, as catalogs give it)."""
    image = galsim.ImageD(PSF_STAMP, PSF_STAMP, scale=config.survey.pixel_scale)
    reported_psf_profile(galaxy, config).drawImage(image=image, method="auto")
    pixels = image.array
    return (pixels / pixels.sum()).astype(np.float32)


def central_profile(galaxy: Galaxy, config: SimulationConfig) -> galsim.GSObject:
    """The intrinsic (pre-PSF) central galaxy centred on the origin: sheared bulge + disk
    (+ the disk's clumps)."""
    bulge, disk = central_components(galaxy, config)
    angle = galaxy.pa * galsim.degrees
    parts = []
    for component in (bulge, disk):
        if component.flux > 0.0:
            profile = sersic(component.n, component.half_light_radius, component.flux)
            parts.append(profile.shear(q=component.q, beta=angle))
    knots = clumps(galaxy, config)
    if knots is not None:
        parts.append(knots)
    return parts[0] if len(parts) == 1 else galsim.Add(parts)


def sersic(n: float, half_light_radius: float, flux: float) -> galsim.GSObject:
    """A Sersic profile; GalSim's exact de Vaucouleurs and exponential classes for n = 4
    and n = 1 (the first presets' images, byte for byte)."""
    if n == 4.0:
        return galsim.DeVaucouleurs(half_light_radius=half_light_radius, flux=flux)
    if n == 1.0:
        return galsim.Exponential(half_light_radius=half_light_radius, flux=flux)
    return galsim.Sersic(n=n, half_light_radius=half_light_radius, flux=flux)


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


def render_cutout(
    galaxy: Galaxy, config: SimulationConfig, seed: int, background: np.ndarray | None = None
) -> np.ndarray:
    """The final float32 cutout of ``galaxy``: scene, PSF, pixel response, noise (made
    correlated when asked) and residual sky; or, drawn into a real sky ``background``
    crop, the scene with its own shot noise only, added to the crop."""
    image = draw_noiseless(galaxy, config)
    if background is not None:
        gain = config.noise.sky_level / galaxy.sky_sigma**2
        image.addNoise(galsim.CCDNoise(galsim.BaseDeviate(seed), sky_level=0.0, gain=gain))
        return (image.array + background).astype(np.float32)
    noiseless = image.array.copy() if galaxy.noise_correlation else None
    add_noise(image, galaxy, config, seed)
    pixels = image.array
    if noiseless is not None:
        pixels = noiseless + correlate(pixels - noiseless, galaxy.noise_correlation)
    sky = residual_sky(galaxy, pixels.shape[0], config.survey.pixel_scale)
    return (pixels + sky).astype(np.float32)


def correlate(noise: np.ndarray, rho: float) -> np.ndarray:
    """White ``noise`` made correlated as a coadd's resampling does: convolved with a
    cross kernel (1 at the centre, ``a`` on its four neighbours) whose neighbouring-pixel
    correlation ``2a / (1 + 4a^2)`` is ``rho``, and rescaled to keep each pixel's variance.
    Periodic at the edges, so every pixel's statistics are the same."""
    if rho <= 0.0:
        return noise
    a = (1.0 - math.sqrt(1.0 - 4.0 * rho**2)) / (4.0 * rho)
    kernel = np.array([[0.0, a, 0.0], [a, 1.0, a], [0.0, a, 0.0]]) / math.sqrt(1.0 + 4.0 * a**2)
    return ndimage.convolve(noise, kernel, mode="wrap")


def residual_sky(galaxy: Galaxy, size: int, pixel_scale: float) -> np.ndarray | float:
    """The sky a real coadd's subtraction leaves: a pedestal, a plane rising by
    ``sky_gradient`` from the centre to the edge along ``gradient_angle`` and a circular
    Gaussian bump of peak ``sky_bump`` (all in units of the galaxy's sky noise)."""
    if not (galaxy.sky_pedestal or galaxy.sky_gradient or galaxy.sky_bump):
        return 0.0
    centred = np.mgrid[:size, :size] - (size - 1) / 2.0  # pixels from the cutout's centre
    y, x = centred / (size / 2.0)
    angle = math.radians(galaxy.gradient_angle)
    plane = x * math.cos(angle) + y * math.sin(angle)
    sky = galaxy.sky_pedestal + galaxy.sky_gradient * plane
    if galaxy.sky_bump:
        dy, dx = centred * pixel_scale - np.array([galaxy.bump_dy, galaxy.bump_dx])[:, None, None]
        sky = sky + galaxy.sky_bump * np.exp(-(dx**2 + dy**2) / (2.0 * galaxy.bump_sigma**2))
    return galaxy.sky_sigma * sky


def _add_object(image: galsim.Image, profile: galsim.GSObject, position: galsim.PositionD) -> None:
    """Draw ``profile`` centred at ``position`` on a stamp of its own size, added to ``image``."""
    half = profile.getGoodImageSize(image.scale) // 2 + 1
    ix, iy = round(position.x), round(position.y)
    bounds = galsim.BoundsI(ix - half, ix + half, iy - half, iy + half) & image.bounds
    if not bounds.isDefined():
        return
    profile.drawImage(image=image[bounds], center=position, add_to_image=True)
