"""Drawing one galaxy's parameters from the priors, reproducibly from (seed, object_id).

Each object has its own random streams, derived with NumPy's ``SeedSequence`` from the run
seed and the object id: one stream for the parameters and one for the pixel noise.  So an
object's parameters and image never depend on which process drew it, in which order, or
whether the run was interrupted, and its truth row can be recomputed without drawing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gampen.simulation.config import Interval, SimulationConfig
from gampen.simulation.psf_images import psf_library

#: Spawn keys of an object's random streams: parameters, pixel noise, clump positions.
_PARAMS_STREAM, _NOISE_STREAM, _CLUMP_STREAM = 0, 1, 2
#: Neighbour positions are drawn until one is far enough from the central galaxy; config
#: validation keeps the excluded disc under half the cutout, so this is never reached.
_MAX_POSITION_TRIES = 10_000


@dataclass(frozen=True)
class Neighbour:
    """A single-Sersic neighbour; ``x``, ``y`` in arcsec from the cutout centre."""

    x: float
    y: float
    mag: float
    n: float
    half_light_radius: float
    q: float
    pa: float  #: degrees


@dataclass(frozen=True)
class Galaxy:
    """Every random choice behind one cutout: the central galaxy, PSF, noise, neighbours."""

    object_id: int
    mag: float
    bt: float
    r_disk: float  #: arcsec, circular half-light radius before the shear
    r_bulge: float  #: arcsec, circular half-light radius before the shear
    q_disk: float
    q_bulge: float
    pa: float  #: degrees, shared by bulge and disk
    dx: float  #: centre offset from the cutout centre, pixels
    dy: float
    psf_fwhm: float  #: arcsec, as reported with the cutout (catalog, header, PSF HDU)
    sky_sigma: float  #: per-pixel sky noise, flux units
    neighbours: tuple[Neighbour, ...]
    # The nuisances of real data (all off in the first presets, see PsfConfig,
    # CentralPrior and NoiseConfig); drawn after everything above, so turning them on
    # leaves every other parameter of a galaxy as it was.
    psf_fwhm_true: float = math.nan  #: arcsec, the FWHM rendered (NaN: ``psf_fwhm``)
    psf_model: str = "moffat"  #: "moffat" or "kolmogorov"
    psf_beta: float = math.nan  #: Moffat index (NaN: the config's fixed beta)
    psf_g1: float = 0.0  #: PSF shear
    psf_g2: float = 0.0
    bulge_n: float = 4.0  #: Sersic indices
    disk_n: float = 1.0
    clump_fraction: float = 0.0  #: share of the disk's light in clumps
    clump_count: int = 0
    clump_seed: int = 0  #: GalSim seed of the clump positions
    noise_correlation: float = 0.0  #: neighbouring pixels' noise correlation
    sky_pedestal: float = 0.0  #: residual sky per pixel, in units of ``sky_sigma``
    sky_gradient: float = 0.0  #: residual sky rise from centre to edge, x ``sky_sigma``
    gradient_angle: float = 0.0  #: degrees, direction of the rise
    sky_bump: float = 0.0  #: peak of the residual sky's Gaussian bump, x ``sky_sigma``
    bump_sigma: float = 0.0  #: its sigma, arcsec
    bump_dx: float = 0.0  #: its centre, arcsec from the cutout's centre
    bump_dy: float = 0.0
    psf_file: str = ""  #: the survey PSF image drawn with ("" for a profile)

    @property
    def rendered_fwhm(self) -> float:
        """The FWHM of the PSF the cutout was drawn with (arcsec)."""
        return self.psf_fwhm if math.isnan(self.psf_fwhm_true) else self.psf_fwhm_true


def galaxy_rng(seed: int, object_id: int) -> np.random.Generator:
    """The parameter stream of one object."""
    sequence = np.random.SeedSequence(seed, spawn_key=(object_id, _PARAMS_STREAM))
    return np.random.Generator(np.random.PCG64(sequence))


def noise_seed(seed: int, object_id: int) -> int:
    """A GalSim seed for one object's noise, in [1, 2**31 - 1] (GalSim treats 0 as 'random')."""
    sequence = np.random.SeedSequence(seed, spawn_key=(object_id, _NOISE_STREAM))
    return int(sequence.generate_state(1, dtype=np.uint32)[0]) % (2**31 - 1) + 1


def clump_seed(seed: int, object_id: int) -> int:
    """A GalSim seed for one object's clump positions, in [1, 2**31 - 1]."""
    sequence = np.random.SeedSequence(seed, spawn_key=(object_id, _CLUMP_STREAM))
    return int(sequence.generate_state(1, dtype=np.uint32)[0]) % (2**31 - 1) + 1


def flux_from_mag(mag: float, zero_point: float) -> float:
    """Flux in pixel units of a magnitude: mag = zero_point - 2.5 log10(flux)."""
    return 10.0 ** (-0.4 * (mag - zero_point))


def draw_galaxy(config: SimulationConfig, seed: int, object_id: int) -> Galaxy:
    """Draw one object's parameters; the same (config, seed, object_id) gives the same galaxy."""
    rng = galaxy_rng(seed, object_id)
    central = config.central
    mag = _uniform(rng, central.mag)
    bt = _uniform(rng, central.bt)
    r_disk = _log_uniform(rng, central.r_disk)
    r_bulge = r_disk * _uniform(rng, central.bulge_size_ratio)
    q_disk = _uniform(rng, central.q_disk)
    q_bulge = _uniform(rng, central.q_bulge)
    pa = float(rng.uniform(0.0, 180.0))
    dx, dy = (float(v) for v in rng.uniform(-central.offset, central.offset, size=2))
    psf_fwhm = _uniform(rng, config.psf.fwhm)
    sky_sigma = _uniform(rng, config.noise.sky_sigma)
    scale = config.survey.pixel_scale
    neighbours = _draw_neighbours(rng, config, mag, (dx * scale, dy * scale))
    nuisances = _draw_nuisances(rng, config, psf_fwhm, clump_seed(seed, object_id))
    psf_fwhm = nuisances.pop("psf_fwhm", psf_fwhm)  # as reported, with the PSF model's error
    bt, r_bulge = _pure_shares(rng, central, bt, r_disk, r_bulge)
    if bt == 1.0 and nuisances.get("clump_count"):  # no disk, so no clumps in it
        nuisances |= {"clump_fraction": 0.0, "clump_count": 0, "clump_seed": 0}
    return Galaxy(
        object_id=object_id,
        mag=mag,
        bt=bt,
        r_disk=r_disk,
        r_bulge=r_bulge,
        q_disk=q_disk,
        q_bulge=q_bulge,
        pa=pa,
        dx=dx,
        dy=dy,
        psf_fwhm=psf_fwhm,
        sky_sigma=sky_sigma,
        neighbours=neighbours,
        **nuisances,
    )


def _draw_nuisances(
    rng: np.random.Generator,
    config: SimulationConfig,
    psf_fwhm: float,
    seed_of_clumps: int,
) -> dict[str, Any]:
    """The nuisance fields of :class:`Galaxy`, drawn after every other parameter; with the
    nuisances off (the first presets) there are none: the reported FWHM is the rendered
    one, the profiles de Vaucouleurs and exponential, the noise white, the sky flat."""
    if not config.has_nuisances:
        return {}
    psf, central, noise = config.psf, config.central, config.noise
    error = rng.normal(0.0, psf.fwhm_error) if psf.fwhm_error else 0.0
    if _spike(rng, psf.fwhm_exact_fraction):
        error = 0.0
    kolmogorov = bool(rng.uniform() < psf.kolmogorov_fraction)
    beta = psf.beta if isinstance(psf.beta, float) else _uniform(rng, psf.beta)
    g = float(rng.uniform(0.0, psf.ellipticity))
    angle = float(rng.uniform(0.0, math.pi))
    clumpy = bool(rng.uniform() < central.clump_probability)
    count = int(rng.integers(round(central.clump_count[0]), round(central.clump_count[1]) + 1))
    fraction = _uniform(rng, central.clump_fraction)
    drawn = {
        "psf_fwhm": psf_fwhm * math.exp(error),
        "psf_fwhm_true": psf_fwhm,
        "psf_model": "kolmogorov" if kolmogorov else "moffat",
        "psf_beta": math.nan if kolmogorov else beta,
        "psf_g1": g * math.cos(2 * angle),
        "psf_g2": g * math.sin(2 * angle),
        "bulge_n": _sersic_index(rng, central.bulge_n, central.canonical_n_fraction, 4.0),
        "disk_n": _sersic_index(rng, central.disk_n, central.canonical_n_fraction, 1.0),
        "clump_fraction": fraction if clumpy else 0.0,
        "clump_count": count if clumpy else 0,
        "clump_seed": seed_of_clumps if clumpy else 0,
        "noise_correlation": _uniform(rng, noise.correlation),
        "sky_pedestal": float(rng.uniform(-noise.pedestal, noise.pedestal)),
        "sky_gradient": float(rng.uniform(0.0, noise.gradient)),
        "gradient_angle": float(rng.uniform(0.0, 360.0)),
    }
    if psf.images:  # a survey PSF image replaces the profile, with its own FWHM
        library = psf_library(psf.images, config.survey.pixel_scale)
        chosen = library[int(rng.integers(len(library)))]
        drawn |= {"psf_file": chosen.name, "psf_fwhm_true": chosen.fwhm, "psf_model": "image"}
        drawn |= {"psf_fwhm": chosen.fwhm * math.exp(error), "psf_beta": math.nan}
        drawn |= {"psf_g1": 0.0, "psf_g2": 0.0}
    if noise.bump:  # drawn last, and only when on: older sets keep their random streams
        reach = config.survey.stamp_size * config.survey.pixel_scale
        drawn |= {
            "sky_bump": float(rng.uniform(-noise.bump, noise.bump)),
            "bump_sigma": _uniform(rng, noise.bump_width),
            "bump_dx": float(rng.uniform(-reach, reach)),
            "bump_dy": float(rng.uniform(-reach, reach)),
        }
    return drawn


def _pure_shares(
    rng: np.random.Generator, central: Any, bt: float, r_disk: float, r_bulge: float
) -> tuple[float, float]:
    """``(bt, r_bulge)`` after the draw of a pure disk (bt = 0) or a pure bulge (bt = 1),
    made last and only when a share is set, so presets without shares draw as before.  A
    pure bulge (an elliptical) takes the disk's size draw, spanning the sizes of galaxies
    rather than those of bulges inside disks."""
    if not (central.pure_disk_fraction or central.pure_bulge_fraction):
        return bt, r_bulge
    u = float(rng.uniform())
    if u < central.pure_disk_fraction:
        return 0.0, r_bulge
    if u < central.pure_disk_fraction + central.pure_bulge_fraction:
        return 1.0, r_disk
    return bt, r_bulge


def _draw_neighbours(
    rng: np.random.Generator,
    config: SimulationConfig,
    central_mag: float,
    central_xy: tuple[float, float],
) -> tuple[Neighbour, ...]:
    """Draw how many neighbours the cutout holds and each one's parameters."""
    prior = config.neighbours
    if rng.uniform() >= prior.probability:
        return ()
    count = int(rng.integers(1, prior.max_count + 1))
    brightest = max(prior.mag[0], central_mag - prior.max_brighter_than_central)
    neighbours = []
    for _ in range(count):
        n = _uniform(rng, prior.sersic_n)
        mag = float(rng.uniform(brightest, prior.mag[1]))
        hlr = _log_uniform(rng, prior.half_light_radius)
        q = _uniform(rng, prior.q)
        pa = float(rng.uniform(0.0, 180.0))
        x, y = _neighbour_position(rng, config, central_xy)
        neighbours.append(Neighbour(x=x, y=y, mag=mag, n=n, half_light_radius=hlr, q=q, pa=pa))
    return tuple(neighbours)


def _neighbour_position(
    rng: np.random.Generator, config: SimulationConfig, central_xy: tuple[float, float]
) -> tuple[float, float]:
    """A position uniform over the cutout, at least ``min_separation`` from the central."""
    half = 0.5 * config.field_size
    for _ in range(_MAX_POSITION_TRIES):
        x, y = (float(v) for v in rng.uniform(-half, half, size=2))
        if math.hypot(x - central_xy[0], y - central_xy[1]) >= config.neighbours.min_separation:
            return x, y
    raise RuntimeError("no neighbour position found; neighbours.min_separation is too large")


def _uniform(rng: np.random.Generator, interval: Interval) -> float:
    """A uniform draw from ``interval``."""
    return float(rng.uniform(interval[0], interval[1]))


#: Sersic indices are drawn on a grid of this step: GalSim builds a table per index (about
#: 0.1 s), and a grid lets it reuse them; the truth uses the index as drawn.
SERSIC_STEP = 0.05


def _spike(rng: np.random.Generator, fraction: float) -> bool:
    """True with probability ``fraction``; draws nothing when it is 0, so presets without
    the spike keep their random streams."""
    return bool(fraction) and bool(rng.uniform() < fraction)


def _sersic_index(
    rng: np.random.Generator, interval: Interval, canonical_fraction: float, canonical: float
) -> float:
    """``canonical`` with probability ``canonical_fraction``, else a uniform draw from
    ``interval`` rounded to the :data:`SERSIC_STEP` grid."""
    if _spike(rng, canonical_fraction):
        return canonical
    if interval[0] == interval[1]:
        return float(interval[0])
    value = round(_uniform(rng, interval) / SERSIC_STEP) * SERSIC_STEP
    return float(min(max(round(value, 6), interval[0]), interval[1]))


def _log_uniform(rng: np.random.Generator, interval: Interval) -> float:
    """A draw whose logarithm is uniform over ``interval`` (scale-free sizes)."""
    return float(math.exp(rng.uniform(math.log(interval[0]), math.log(interval[1]))))
