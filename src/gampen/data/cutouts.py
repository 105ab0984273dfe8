"""Reading FITS cutouts into (bands, size, size) float32 arrays (docs/architecture.md, "Data flow").

A cutout comes from the primary HDU, the first image extension, or a named HDU; it is
2-D (one band) or a 3-D (bands, y, x) cube, or one 2-D file per band.  Larger cutouts are
centre-cropped, smaller ones rejected (never padded).  Problems that make a galaxy
unusable raise :class:`~gampen.errors.CutoutError` carrying the flag a batch run records;
fixable ones (NaN pixels, cropping, a blank image) are reported as flags on the result.
Only floating-point images are pixels: integer or boolean HDUs (masks, bit planes, exposure
counts) are skipped when choosing, and refused when named.  The same open also reads what
the header says about the pixels (:func:`gampen.data.contract.read_header_facts`).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from gampen.data.contract import Cards, HeaderFacts, psf_pixel_scale, read_header_facts
from gampen.data.missing import blank_pixels
from gampen.data.psf_features import PsfImage
from gampen.errors import CutoutError
from gampen.flags import Flag

PathLike = str | os.PathLike[str]
#: The facts of a cutout whose header was not read.
NO_FACTS = HeaderFacts()
#: Radius of the central disc, as a fraction of the cutout side, whose damaged pixels
#: can change the galaxy's measurement (12 px of a 96 px cutout).
CORE_RADIUS = 1 / 8
#: Fraction of non-finite pixels in the central disc above which a galaxy is unusable.
MAX_CORE_DAMAGE = 0.05
#: EXTNAME of the HDU holding a galaxy's PSF image, in its cutout or a PSF file.
PSF_HDU = "PSF"


@dataclass(frozen=True)
class Cutout:
    """A cutout ready for normalisation, with what was done to it."""

    #: (bands, size, size) float32, native byte order, non-finite pixels set to 0.
    image: np.ndarray
    #: :class:`~gampen.flags.Flag` bits (NONFINITE, CROPPED, EMPTY).
    flags: int
    #: How many pixels were NaN or inf before replacement.
    n_bad_pixels: int
    #: What the (first) file's header says about its pixels.
    facts: HeaderFacts = NO_FACTS
    #: The PSF image of the (first) file's ``PSF`` HDU, when asked for and present.
    psf: PsfImage | None = None
    #: Pixels without data (NaN/inf, or blocks of exact zeros; now 0), or None if none.
    missing: np.ndarray | None = None


def read_cutout(
    paths: PathLike | Sequence[PathLike],
    size: int,
    *,
    n_bands: int | None = None,
    hdu: str | int | None = None,
    header_keys: Sequence[str] = (),
    pixel_scale: float | None = None,
    psf: bool = False,
) -> Cutout:
    """Read one galaxy's cutout: a single file (2-D or cube) or one 2-D file per band,
    with the first file's :class:`HeaderFacts` (``header_keys``: numbers to read too;
    ``pixel_scale``: the model's, for surface-brightness units) and, with ``psf``, the
    PSF image of its ``PSF`` HDU (a problem with it never fails the cutout).

    Raises :class:`CutoutError` for a missing or unreadable file, a wrong shape, a wrong
    band count (when ``n_bands`` is given) or a cutout smaller than ``size``.
    """
    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    read = [_read_fits(Path(p), hdu, np.float32, psf=psf and i == 0) for i, p in enumerate(files)]
    planes = [array for array, _, _ in read]
    facts = read_header_facts(read[0][1], header_keys, pixel_scale)
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
    return dataclasses.replace(_finish(files[0], cube, size), facts=facts, psf=read[0][2])


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` pixels of the last two axes.

    For an odd excess the extra pixel is dropped from the high end, so the pixel at
    index ``n // 2`` stays at index ``size // 2`` whenever ``n - size`` is even.
    """
    ny, nx = image.shape[-2:]
    y0, x0 = (ny - size) // 2, (nx - size) // 2
    return image[..., y0 : y0 + size, x0 : x0 + size]


def read_image(
    path: Path, hdu: str | int | None, dtype: type = np.float32
) -> tuple[np.ndarray, Cards]:
    """The pixel array of the chosen HDU of one FITS file, as native ``dtype``, and its
    header: the HDU's cards over the primary header's (where surveys put shared ones)."""
    array, header, _ = _read_fits(path, hdu, dtype, psf=False)
    return array, header


def _read_fits(
    path: Path, hdu: str | int | None, dtype: type, *, psf: bool
) -> tuple[np.ndarray, Cards, PsfImage | None]:
    """:func:`read_image`, and with ``psf`` the file's ``PSF`` HDU, in one open."""
    found = None
    if not path.is_file():
        raise CutoutError(path, "file not found", flag=Flag.UNREADABLE)
    try:
        with open(path, "rb") as handle, warnings.catch_warnings():
            # astropy only warns about a truncated file; treat that as unreadable.
            warnings.simplefilter("error", AstropyUserWarning)
            with fits.open(handle, memmap=False) as hdul:
                chosen = select_hdu(path, hdul, hdu)
                array = np.array(chosen.data, dtype=dtype)  # native order, a private copy
                header = Cards(chosen.header, hdul[0].header)
                if psf:
                    found = _named_psf(path, hdul)
    except CutoutError:
        raise
    except Exception as exc:  # astropy/OS raise many types for a broken file
        raise CutoutError(path, f"unreadable FITS file ({exc})", flag=Flag.UNREADABLE) from exc
    return array, header, found


def read_psf(path: Path) -> PsfImage:
    """The PSF image in the file ``path`` (a catalog's ``psf_image``): its HDU named
    ``PSF``, else its first 2-D image HDU; a missing or unreadable file gives a
    :class:`PsfImage` whose ``problem`` says so.  Read once per process while the file is
    unchanged (many galaxies share one PSF)."""
    try:
        stat = path.stat()
    except OSError:
        return PsfImage(np.zeros((0, 0)), None, str(path), "file not found")
    return _read_psf(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=1024)
def _read_psf(name: str, mtime_ns: int, size: int) -> PsfImage:
    """:func:`read_psf` of a file at one modification time and size."""
    path = Path(name)
    try:
        with open(path, "rb") as handle, warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)
            with fits.open(handle, memmap=False) as hdul:
                found = _named_psf(path, hdul)
                if found is None:
                    chosen = next((h for h in hdul if _is_2d_image(h)), None)
                    chosen = chosen or next(
                        (h for h in hdul if h.is_image and h.data is not None), None
                    )
                    if chosen is None:
                        return PsfImage(np.zeros((0, 0)), None, name, "holds no image HDU")
                    found = _psf_of(chosen, hdul, name)
    except Exception as exc:  # astropy/OS raise many types for a broken file
        return PsfImage(np.zeros((0, 0)), None, name, f"unreadable FITS file ({exc})")
    return found


def _named_psf(path: Path, hdul: fits.HDUList) -> PsfImage | None:
    """The PSF image of the HDU named ``PSF`` in ``hdul`` (None when there is none); one
    that cannot be read has a ``problem``, and never makes the rest of the file unreadable."""
    source = f"{path}[{PSF_HDU}]"
    try:
        chosen = hdul[PSF_HDU]
    except KeyError:
        return None
    except Exception as exc:  # a truncated file: the PSF HDU is usually its last
        return PsfImage(np.zeros((0, 0)), None, source, f"unreadable ({exc})")
    try:
        if not chosen.is_image or chosen.data is None:
            return PsfImage(np.zeros((0, 0)), None, source, "holds no image")
        return _psf_of(chosen, hdul, source)
    except Exception as exc:  # astropy raises many types for broken data
        return PsfImage(np.zeros((0, 0)), None, source, f"unreadable ({exc})")


def _psf_of(hdu: fits.ImageHDU | fits.PrimaryHDU, hdul: fits.HDUList, source: str) -> PsfImage:
    """A PSF image from an image HDU: a read-only float32 copy of its pixels (as a pack
    stores them, so both give the same features) and the pixel scale its cards (over the
    primary header's) state."""
    with np.errstate(over="ignore"):  # beyond float32: inf, reported as non-finite
        pixels = np.array(hdu.data, dtype=np.float32)
    pixels.flags.writeable = False
    scale = psf_pixel_scale(Cards(hdu.header, hdul[0].header))
    return PsfImage(pixels, scale, source)


def _is_2d_image(hdu: fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU) -> bool:
    """True for an HDU holding a 2-D image."""
    return bool(hdu.is_image and hdu.data is not None and hdu.data.ndim == 2)


def select_hdu(
    path: Path, hdul: fits.HDUList, hdu: str | int | None
) -> fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU:
    """The requested HDU, else the first HDU holding a floating-point image.

    ``hdu`` is a name or an index; a string of digits (as typed on a command line) is an
    index.  Integer and boolean images (masks, bit planes, counts of exposures) are never
    pixels: they are skipped, and refused when named.
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
        if not _is_float_image(chosen):
            raise CutoutError(
                path,
                f"HDU {hdu!r} holds {chosen.data.dtype} values, not a floating-point image "
                f"(a mask or bit plane?); HDUs present: {_describe_hdus(hdul)}",
                flag=Flag.UNREADABLE,
            )
        return chosen
    for candidate in hdul:
        if candidate.is_image and candidate.data is not None and _is_float_image(candidate):
            return candidate
    raise CutoutError(
        path,
        f"holds no floating-point image HDU (HDUs present: {_describe_hdus(hdul)})",
        flag=Flag.UNREADABLE,
    )


def _is_float_image(hdu: fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU) -> bool:
    """True for real-valued pixels: floating-point data, or integers that BSCALE/BZERO
    scale to floats (astropy returns those as floats)."""
    return hdu.data.dtype.kind == "f"


def _describe_hdus(hdul: fits.HDUList) -> list[str]:
    """``NAME (dtype)`` of every HDU, for messages about which one to pick."""
    return [
        f"{h.name} ({h.data.dtype})" if h.is_image and h.data is not None else h.name for h in hdul
    ]


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
    if bad.any():
        cube[bad] = 0.0
    flat = cube.reshape(cube.shape[0], -1)
    empty = bool(np.any(flat.max(axis=1) == flat.min(axis=1)))
    missing = bad if empty else bad | blank_pixels(cube)  # a blank image is EMPTY alone
    n_bad = int(np.count_nonzero(missing))
    if empty:
        flags |= Flag.EMPTY
    if n_bad:
        flags |= Flag.NONFINITE
        if core_damage(missing) > MAX_CORE_DAMAGE:
            flags |= Flag.MASKED_CORE
    return Cutout(
        image=cube, flags=int(flags), n_bad_pixels=n_bad, missing=missing if n_bad else None
    )


def core_damage(bad: np.ndarray) -> float:
    """Fraction of the pixels (over all bands) within ``CORE_RADIUS`` of the side from the
    centre of a (bands, size, size) mask that are set."""
    size = bad.shape[-1]
    y, x = np.mgrid[:size, :size] - (size - 1) / 2.0
    core = np.hypot(y, x) <= CORE_RADIUS * size
    return float(bad[:, core].mean())


def _bad_shape(path: PathLike, reason: str) -> None:
    """Raise the error for a cutout whose geometry the model cannot use."""
    raise CutoutError(path, reason, flag=Flag.BAD_SHAPE)


def header_photometry(path: PathLike, hdu: str | int | None = None) -> dict[str, float]:
    """``pixel_scale`` (arcsec) and ``zero_point`` a cutout's header states (PIXSCALE or
    the WCS; MAGZP-style keywords, FLUXMAG0 or an AB BUNIT); empty when unreadable."""
    try:
        _, header = read_image(Path(path), hdu)
    except CutoutError:
        return {}
    facts = read_header_facts(header)
    found = {"pixel_scale": facts.pixel_scale, "zero_point": facts.zero_point}
    return {name: float(value) for name, value in found.items() if value is not None}
