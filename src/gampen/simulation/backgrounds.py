"""Real sky for simulated galaxies: ``gampen simulate --backgrounds DIR``.

Simulated cutouts have ideal noise; a survey's have correlated noise, residual sky,
artefacts and real neighbours.  Injecting simulated galaxies into the survey's own empty
sky cutouts (as GaLNet does with HSC-SSP) gives a training set with all of them and an
exact truth for the galaxy.  Each galaxy gets a crop of one background file, both chosen
from its own random stream (so the set is the same whatever the worker count), with only
the galaxy's own shot noise added: the sky's noise is the background's.  The truth's
``sky_sigma`` is then the crop's measured noise (its MAD standard deviation).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.stats import mad_std

from gampen.data.catalog import FITS_IMAGE_SUFFIXES
from gampen.data.contract import PIXEL_SCALE_TOLERANCE, read_header_facts
from gampen.data.cutouts import read_image
from gampen.errors import ConfigError, CutoutError

#: Spawn key of an object's background stream (after parameters, noise and clumps).
_BACKGROUND_STREAM = 3


@dataclass(frozen=True)
class Crop:
    """A galaxy's sky: which file, where in it (0-based pixel of the crop's corner), the
    pixels and their measured noise."""

    name: str
    x0: int
    y0: int
    pixels: np.ndarray
    sigma: float


@dataclass(frozen=True)
class Backgrounds:
    """The sky cutouts of a folder, checked against the simulation's survey."""

    folder: Path
    names: tuple[str, ...]
    shapes: tuple[tuple[int, int], ...]

    @classmethod
    def scan(cls, folder: str | os.PathLike[str], pixel_scale: float, size: int) -> Backgrounds:
        """Every FITS image of ``folder``: a floating-point image at least ``size`` pixels
        on a side, at ``pixel_scale`` (when its header states one); else a
        :class:`ConfigError` naming the file."""
        path = Path(folder)
        if not path.is_dir():
            raise ConfigError("--backgrounds: not a folder", value=str(path))
        names = sorted(
            p.name for p in path.iterdir() if p.name.lower().endswith(FITS_IMAGE_SUFFIXES)
        )
        if not names:
            raise ConfigError(
                f"--backgrounds: {path} holds no FITS images", allowed=str(FITS_IMAGE_SUFFIXES)
            )
        shapes = tuple(_check(path / name, pixel_scale, size) for name in names)
        return cls(path, tuple(names), shapes)

    def settings(self) -> dict[str, object]:
        """What a resumed run must find again: the folder's name and its files' names
        and shapes, digested."""
        digest = hashlib.sha256(repr(list(zip(self.names, self.shapes, strict=True))).encode())
        return {"folder": self.folder.name, "files": len(self.names), "sha256": digest.hexdigest()}

    def crop(self, seed: int, object_id: int, size: int) -> Crop:
        """Object ``object_id``'s crop: a file and a position drawn from its own stream."""
        sequence = np.random.SeedSequence(seed, spawn_key=(object_id, _BACKGROUND_STREAM))
        rng = np.random.Generator(np.random.PCG64(sequence))
        index = int(rng.integers(len(self.names)))
        ny, nx = self.shapes[index]
        y0, x0 = int(rng.integers(ny - size + 1)), int(rng.integers(nx - size + 1))
        pixels = _read(self.folder / self.names[index])[y0 : y0 + size, x0 : x0 + size]
        finite = pixels[np.isfinite(pixels)]
        sigma = float(mad_std(finite)) if finite.size else float("nan")
        return Crop(self.names[index], x0, y0, np.nan_to_num(pixels), sigma)


def _read(path: Path) -> np.ndarray:
    """The floating-point image of a background file, as float64."""
    return read_image(path, None, np.float64)[0]


def _check(path: Path, pixel_scale: float, size: int) -> tuple[int, int]:
    """A background file's shape, after checking it can serve: else a ConfigError."""
    try:
        pixels, header = read_image(path, None, np.float64)
    except CutoutError as exc:
        raise ConfigError(f"--backgrounds: {path} cannot be read ({exc})") from exc
    shape = pixels.shape
    if len(shape) != 2 or min(shape) < size:
        raise ConfigError(
            f"--backgrounds: {path} is {'x'.join(map(str, shape))} pixels",
            allowed=f"2-D images of at least {size} x {size} pixels (survey.stamp_size)",
        )
    facts = read_header_facts(header)
    stated = facts.pixel_scale
    if stated is not None and abs(stated / pixel_scale - 1) > PIXEL_SCALE_TOLERANCE:
        raise ConfigError(
            f"--backgrounds: {path} has {stated:.4g} arcsec pixels ({facts.pixel_scale_source})",
            allowed=f"the survey's {pixel_scale:g} arcsec (survey.pixel_scale)",
        )
    return (int(shape[0]), int(shape[1]))
