"""The truth catalog row of a simulated galaxy, with the exact definitions below.

- ``bt``: bulge flux / total flux of the central galaxy (intrinsic), as drawn; a disk's
  clumps are disk light.
- ``r_e``: radius (arcsec) of the circle centred on the central galaxy that encloses half of
  its intrinsic (pre-PSF, noiseless) flux, bulge, disk and clumps included, all sheared
  (the clumps are points: their positions as drawn are counted exactly).
- ``flux``: total flux of the central galaxy in pixel units; ``mag = ZP - 2.5 log10(flux)``.
- ``r_disk``, ``r_bulge``: circular half-light radii (arcsec) before the shear; ``q_*`` the
  axis ratios; ``pa`` (degrees, [0, 180)) counter-clockwise from the image +x axis (GalSim's
  convention; with the cutouts' WCS, north is +y and east is -x).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import galsim
import numpy as np

from gampen.errors import CatalogError
from gampen.simulation.config import SimulationConfig
from gampen.simulation.halflight import SersicComponent, circular_half_light_radius
from gampen.simulation.priors import Galaxy, flux_from_mag

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
#: Columns appended when a configuration turns any nuisance of real data on: what each
#: galaxy was really drawn with (``psf_fwhm`` is then the FWHM *reported*, with error).
NUISANCE_COLUMNS: tuple[str, ...] = (
    "psf_fwhm_true",
    "psf_model",
    "psf_beta",
    "psf_g1",
    "psf_g2",
    "bulge_n",
    "disk_n",
    "clump_fraction",
    "clump_count",
    "noise_correlation",
    "sky_pedestal",
    "sky_gradient",
    "psf_file",
)


#: Columns appended when a configuration puts a bump in the residual sky: its peak (x the
#: sky sigma), sigma and centre (arcsec from the cutout's centre).
BUMP_COLUMNS: tuple[str, ...] = ("sky_bump", "bump_sigma", "bump_dx", "bump_dy")

#: Columns appended when galaxies are drawn into real sky cutouts (``--backgrounds``):
#: the file and the 0-based pixel of the crop's corner in it.
BACKGROUND_COLUMNS: tuple[str, ...] = ("background", "background_x", "background_y")


def truth_columns(config: SimulationConfig, *, backgrounds: bool = False) -> tuple[str, ...]:
    """The columns of ``info.csv`` for ``config`` (with or without real backgrounds)."""
    nuisances = NUISANCE_COLUMNS if config.has_nuisances else ()
    bumps = BUMP_COLUMNS if config.noise.bump else ()
    return TRUTH_COLUMNS + nuisances + bumps + (BACKGROUND_COLUMNS if backgrounds else ())


def cutout_name(object_id: int) -> str:
    """Path of an object's cutout relative to the output folder (the ``file_name`` column)."""
    return f"cutouts/{object_id}.fits"


def central_components(galaxy: Galaxy, config: SimulationConfig) -> tuple[SersicComponent, ...]:
    """The smooth bulge and disk of the central galaxy, fluxes in pixel units (the disk
    without the light its clumps hold)."""
    flux = flux_from_mag(galaxy.mag, config.survey.zero_point)
    smooth_disk = (1.0 - galaxy.bt) * flux * (1.0 - galaxy.clump_fraction)
    return (
        SersicComponent(galaxy.bt * flux, galaxy.bulge_n, galaxy.r_bulge, galaxy.q_bulge),
        SersicComponent(smooth_disk, galaxy.disk_n, galaxy.r_disk, galaxy.q_disk),
    )


def clumps(galaxy: Galaxy, config: SimulationConfig) -> galsim.RandomKnots | None:
    """The disk's star-forming clumps: ``clump_count`` point sources holding
    ``clump_fraction`` of the disk's light, spread like the disk and sheared with it."""
    if not galaxy.clump_count:
        return None
    disk_flux = (1.0 - galaxy.bt) * flux_from_mag(galaxy.mag, config.survey.zero_point)
    knots = galsim.RandomKnots(
        galaxy.clump_count,
        half_light_radius=galaxy.r_disk,
        flux=galaxy.clump_fraction * disk_flux,
        rng=galsim.BaseDeviate(galaxy.clump_seed),
    )
    return knots.shear(q=galaxy.q_disk, beta=galaxy.pa * galsim.degrees)


def half_light_radius(galaxy: Galaxy, config: SimulationConfig) -> float:
    """The truth ``r_e`` of the central galaxy: smooth components and clumps together."""
    knots = clumps(galaxy, config)
    if knots is None:
        return circular_half_light_radius(central_components(galaxy, config))
    return circular_half_light_radius(
        central_components(galaxy, config),
        points=np.asarray(knots.points),
        point_flux=knots.flux / galaxy.clump_count,
    )


def truth_row(galaxy: Galaxy, config: SimulationConfig) -> tuple:
    """The values of :func:`truth_columns` for one galaxy."""
    bulge, disk = central_components(galaxy, config)
    clump_flux = (1.0 - galaxy.bt) * flux_from_mag(galaxy.mag, config.survey.zero_point)
    flux = bulge.flux + disk.flux + clump_flux * galaxy.clump_fraction
    row = (
        galaxy.object_id,
        cutout_name(galaxy.object_id),
        bulge.flux / flux,
        half_light_radius(galaxy, config),
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
    if not config.has_nuisances:
        return row
    beta = galaxy.psf_beta
    if galaxy.psf_model == "moffat" and math.isnan(beta):
        beta = float(config.psf.beta)  # a fixed beta
    drawn = {"psf_fwhm_true": galaxy.rendered_fwhm, "psf_beta": beta}
    row += tuple(drawn.get(name, getattr(galaxy, name, None)) for name in NUISANCE_COLUMNS)
    return row + tuple(getattr(galaxy, name) for name in BUMP_COLUMNS) if config.noise.bump else row


def psf_galaxy(row: Mapping[str, Any], config: SimulationConfig) -> Galaxy:
    """A :class:`Galaxy` with the PSF of a truth row of ``config``'s set (``psf_fwhm``, and
    with nuisances ``psf_fwhm_true``, ``psf_model``, ``psf_beta``, ``psf_g1``, ``psf_g2``,
    ``psf_file``), its other fields zero: what the cutout's ``PSF`` HDU is drawn from, for
    a set written before cutouts had one.  The CSV floats round-trip exactly, so the HDU is
    the one the run would have written."""
    fields: dict[str, Any] = {"psf_fwhm": float(row["psf_fwhm"])}
    if config.has_nuisances:
        names = row.keys()  # an astropy Row's `in` looks at its values, not its columns
        missing = [name for name in _PSF_COLUMNS if name not in names]
        if missing:
            raise CatalogError(f"the catalog lacks the column(s) {missing} of a {config.name} set")
        psf_file = row["psf_file"]
        fields |= {
            "psf_fwhm_true": float(row["psf_fwhm_true"]),
            "psf_model": str(row["psf_model"]),
            "psf_beta": float(row["psf_beta"]),
            "psf_g1": float(row["psf_g1"]),
            "psf_g2": float(row["psf_g2"]),
            "psf_file": "" if _blank(psf_file) else str(psf_file),
        }
    zero = {"mag": 0.0, "bt": 0.0, "r_disk": 0.0, "r_bulge": 0.0, "q_disk": 1.0, "q_bulge": 1.0}
    return Galaxy(
        object_id=int(row["object_id"]),
        **zero,
        pa=0.0,
        dx=0.0,
        dy=0.0,
        sky_sigma=0.0,
        neighbours=(),
        **fields,
    )


#: The truth columns a nuisance set's PSF is rebuilt from.
_PSF_COLUMNS = ("psf_fwhm_true", "psf_model", "psf_beta", "psf_g1", "psf_g2", "psf_file")


def _blank(value: Any) -> bool:
    """True for an empty catalog cell (masked, or an empty string)."""
    return value is None or np.ma.is_masked(value) or str(value) == ""
