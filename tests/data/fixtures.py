"""Small FITS writers for the data-layer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits


def galaxy(size: int = 32, *, seed: int = 0, bands: int | None = None) -> np.ndarray:
    """A noisy Gaussian blob, (size, size) or (bands, size, size) float32."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    blob = 10 * np.exp(-(x**2 + y**2) / 20.0)
    shape = (size, size) if bands is None else (bands, size, size)
    return (blob + rng.normal(0, 0.1, shape)).astype(np.float32)


def write_fits(path: Path, data: np.ndarray, **hdu_kwargs) -> Path:
    """Write ``data`` to a primary HDU at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data, **hdu_kwargs).writeto(path, overwrite=True)
    return path
