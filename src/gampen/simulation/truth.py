"""The truth catalog row of a simulated galaxy, with the exact definitions of DESIGN §4.3.

- ``bt``: bulge flux / total flux of the central galaxy (intrinsic), as drawn.
- ``r_e``: radius (arcsec) of the circle centred on the central galaxy that encloses half of
  its intrinsic (pre-PSF, noiseless) flux, bulge and disk included, both sheared.
- ``flux``: total flux of the central galaxy in pixel units; ``mag = ZP - 2.5 log10(flux)``.
- ``r_disk``, ``r_bulge``: circular half-light radii (arcsec) before the shear; ``q_*`` the
  axis ratios; ``pa`` (degrees, [0, 180)) counter-clockwise from the image +x axis (GalSim's
  convention; with the cutouts' WCS, north is +y and east is -x).
"""

from __future__ import annotations

import math

from gampen.simulation.config import SimulationConfig
from gampen.simulation.halflight import SersicComponent, circular_half_light_radius
from gampen.simulation.priors import Galaxy, flux_from_mag

#: Sersic indices of the central galaxy's components.
BULGE_N, DISK_N = 4.0, 1.0

#: Columns of ``info.csv``, in order.
TRUTH_COLUMNS: tuple[str, ...] = (
    "object_id",
    "file_name",
    "bt",
    "r_e",
    "flux",
    "mag",
    "n_neighbours",
    "psf_fwhm",
    "sky_sigma",
    "r_disk",
    "r_bulge",
    "q_disk",
    "q_bulge",
    "pa",
)


def cutout_name(object_id: int) -> str:
    """Path of an object's cutout relative to the output folder (the ``file_name`` column)."""
    return f"cutouts/{object_id}.fits"


def central_components(galaxy: Galaxy, config: SimulationConfig) -> tuple[SersicComponent, ...]:
    """The bulge and disk of the central galaxy, fluxes in pixel units."""
    flux = flux_from_mag(galaxy.mag, config.survey.zero_point)
    return (
        SersicComponent(galaxy.bt * flux, BULGE_N, galaxy.r_bulge, galaxy.q_bulge),
        SersicComponent((1.0 - galaxy.bt) * flux, DISK_N, galaxy.r_disk, galaxy.q_disk),
    )


def truth_row(galaxy: Galaxy, config: SimulationConfig) -> tuple:
    """The values of :data:`TRUTH_COLUMNS` for one galaxy."""
    bulge, disk = central_components(galaxy, config)
    flux = bulge.flux + disk.flux
    return (
        galaxy.object_id,
        cutout_name(galaxy.object_id),
        bulge.flux / flux,
        circular_half_light_radius((bulge, disk)),
        flux,
        config.survey.zero_point - 2.5 * math.log10(flux),
        len(galaxy.neighbours),
        galaxy.psf_fwhm,
        galaxy.sky_sigma,
        galaxy.r_disk,
        galaxy.r_bulge,
        galaxy.q_disk,
        galaxy.q_bulge,
        galaxy.pa,
    )
