"""Reading FITS cutouts into (bands, size, size) float32 arrays (DESIGN §4.2).

A cutout comes from the primary HDU, the first image extension, or a named HDU; it is
2-D (one band) or a 3-D (bands, y, x) cube, or one 2-D file per band.  Larger cutouts are
centre-cropped, smaller ones rejected (never padded).  Problems that make a galaxy
unusable raise :class:`~gampen.errors.CutoutError` carrying the flag a batch run records;
fixable ones (NaN pixels, cropping, a blank image) are reported as flags on the result.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from gampen.errors import CutoutError
from gampen.flags import Flag

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Cutout:
    """A cutout ready for normalisation, with what was done to it."""

    #: (bands, size, size) float32, native byte order, non-finite pixels set to 0.
    image: np.ndarray
    #: :class:`~gampen.flags.Flag` bits (NONFINITE, CROPPED, EMPTY).
    flags: int
    #: How many pixels were NaN or inf before replacement.
    n_bad_pixels: int


def read_cutout(
    paths: PathLike | Sequence[PathLike],
    size: int,
    *,
    n_bands: int | None = None,
    hdu: str | int | None = None,
) -> Cutout:
    """Read one galaxy's cutout: a single file (2-D or cube) or one 2-D file per band.

    Raises :class:`CutoutError` for a missing or unreadable file, a wrong shape, a wrong
    band count (when ``n_bands`` is given) or a cutout smaller than ``size``.
    """
    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    planes = [_read_array(Path(p), hdu) for p in files]
    if len(files) > 1:
        for path, plane in zip(files, planes, strict=True):
            if plane.ndim != 2:
                _bad_shape(path, f"is {plane.ndim}-D; one file per band must be 2-D")
        _check_same_shape(files, planes)
        cube = np.stack(planes)
    else:
        cube = planes[0]
        if cube.ndim == 2:
            cube = cube[np.newaxis]
        elif cube.ndim != 3:
            _bad_shape(
                files[0],
                f"is {cube.ndim}-D with shape {cube.shape}; expected 2-D "
                "(y, x) or 3-D (bands, y, x)",
            )
    if n_bands is not None and cube.shape[0] != n_bands:
        _bad_shape(files[0], f"has {cube.shape[0]} band(s); the model expects {n_bands}")
    return _finish(files[0], cube, size)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` pixels of the last two axes.

    For an odd excess the extra pixel is dropped from the high end, so the pixel at
    index ``n // 2`` stays at index ``size // 2`` whenever ``n - size`` is even.
    """
    ny, nx = image.shape[-2:]
    y0, x0 = (ny - size) // 2, (nx - size) // 2
    return image[..., y0 : y0 + size, x0 : x0 + size]


def _read_array(path: Path, hdu: str | int | None) -> np.ndarray:
    """The pixel array of the chosen HDU of one FITS file, as native float32."""
    if not path.is_file():
        raise CutoutError(path, "file not found", flag=Flag.UNREADABLE)
    try:
        with open(path, "rb") as handle, warnings.catch_warnings():
            # astropy only warns about a truncated file; treat that as unreadable.
            warnings.simplefilter("error", AstropyUserWarning)
            with fits.open(handle, memmap=False) as hdul:
                data = select_hdu(path, hdul, hdu).data
                array = np.array(data, dtype=np.float32)  # native order, a private copy
    except CutoutError:
        raise
    except Exception as exc:  # astropy/OS raise many types for a broken file
        raise CutoutError(path, f"unreadable FITS file ({exc})", flag=Flag.UNREADABLE) from exc
    return array


def select_hdu(
    path: Path, hdul: fits.HDUList, hdu: str | int | None
) -> fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU:
    """The requested HDU, else the primary HDU if it holds data, else the first image HDU.

    ``hdu`` is a name or an index; a string of digits (as typed on a command line) is an index.
    """
    if hdu is not None:
        try:
            chosen = hdul[int(hdu) if isinstance(hdu, str) and hdu.isdigit() else hdu]
        except (KeyError, IndexError) as exc:
            names = [h.name for h in hdul]
            raise CutoutError(
                path, f"has no HDU {hdu!r} (HDUs present: {names})", flag=Flag.UNREADABLE
            ) from exc
        if not chosen.is_image or chosen.data is None:
            raise CutoutError(path, f"HDU {hdu!r} holds no image", flag=Flag.UNREADABLE)
        return chosen
    for candidate in hdul:
        if candidate.is_image and candidate.data is not None:
            return candidate
    raise CutoutError(path, "holds no image HDU with data", flag=Flag.UNREADABLE)


def _check_same_shape(files: Sequence[PathLike], planes: list[np.ndarray]) -> None:
    """Per-band planes must share one shape; say which file differs if not."""
    shape = planes[0].shape
    for path, plane in zip(files, planes, strict=True):
        if plane.shape != shape:
            _bad_shape(path, f"has shape {plane.shape}, other bands have {shape}")


def _finish(path: PathLike, cube: np.ndarray, size: int) -> Cutout:
    """Crop to ``size``, replace non-finite pixels and flag what was done."""
    ny, nx = cube.shape[-2:]
    if ny < size or nx < size:
        _bad_shape(
            path,
            f"is {ny}x{nx} pixels, smaller than the model input {size}x{size} "
            "(gampen never pads cutouts; make larger cutouts)",
        )
    flags = 0
    if (ny, nx) != (size, size):
        cube = np.ascontiguousarray(center_crop(cube, size))
        flags |= Flag.CROPPED
    bad = ~np.isfinite(cube)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        cube[bad] = 0.0
        flags |= Flag.NONFINITE
    flat = cube.reshape(cube.shape[0], -1)
    if np.any(flat.max(axis=1) == flat.min(axis=1)):
        flags |= Flag.EMPTY
    return Cutout(image=cube, flags=int(flags), n_bad_pixels=n_bad)


def _bad_shape(path: PathLike, reason: str) -> None:
    """Raise the error for a cutout whose geometry the model cannot use."""
    raise CutoutError(path, reason, flag=Flag.BAD_SHAPE)


def header_number(path: PathLike, key: str) -> float:
    """The number under ``key`` in the first header of the file holding it; NaN when no
    header has it, it is not a number, or the file cannot be read."""
    try:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if key in hdu.header:
                    return float(hdu.header[key])
    except (OSError, ValueError, TypeError):
        pass
    return float("nan")


def header_photometry(path: PathLike) -> dict[str, float]:
    """``pixel_scale`` (PIXSCALE) and ``zero_point`` (MAGZP) from a cutout's primary header."""
    try:
        header = fits.getheader(path)
    except (OSError, ValueError):
        return {}
    keys = {"pixel_scale": "PIXSCALE", "zero_point": "MAGZP"}
    return {name: float(header[key]) for name, key in keys.items() if key in header}
