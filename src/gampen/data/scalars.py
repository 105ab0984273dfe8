"""Per-galaxy numbers fed to the network beside the image: aperture photometry, conditions.

A CNN that sees arcsinh-stretched pixels must learn to integrate ``sinh`` of them to get a
flux, and it cannot know how blurred an image is.  Both are cheap to hand it directly:

* **Aperture photometry** (``photometry: true``): a curve of growth measured on the linear
  (unstretched) pixels, in ``len(APERTURE_EDGES) - 1`` circular annuli about the cutout's
  centre, twice per band: from each annulus's *sum* (the classic curve of growth) and
  from its *median* times its pixel count (robust to a neighbour covering part of an
  annulus; the two differ where neighbours are).  Each cumulative flux ``F`` enters as
  ``arcsinh(F / a)`` with the band's stretch softening ``a``: linear for noise-level
  fluxes, logarithmic for bright ones.  Computed before augmentation, so the numbers are
  those of the galaxy as catalogued; dihedral transforms about the centre leave them
  unchanged anyway.
* **Conditions** (``conditions: [psf_fwhm, ...]``): catalog columns such as the PSF FWHM
  in arcsec, as given (read by :func:`gampen.data.catalog.load_catalog`).  A model trained
  with them needs them at prediction.  Where a catalog lacks the column (e.g. a folder of
  FITS files), each cutout's header keyword of the same name, upper-cased (``PSF_FWHM``,
  as ``gampen simulate`` writes), is used.  A galaxy whose value is missing or not finite
  is flagged ``BAD_CONDITION`` (fatal), never guessed.
* **PSF image** (``psf_image: true``, ``gampen train --psf-image``): the
  :data:`~gampen.data.psf_features.PSF_FEATURES` numbers of
  :func:`gampen.data.psf_features.psf_features` (an indicator, encircled energies, ``|e|``)
  of the galaxy's PSF image: the file its catalog's ``psf_image`` column names, else its
  cutout's ``PSF`` HDU.  Without one they are all zeros
  (:data:`~gampen.data.psf_features.ABSENT`) and the network relies on the conditions
  (``psf_fwhm``): not flagged.  A PSF image that cannot be used (missing file, not 2-D,
  non-finite, sum not positive) is ``BAD_CONDITION`` (fatal).

They are stored raw: the network standardises them with a mean and std fixed on the
training set (:meth:`gampen.model.network.GampenNet.set_scalar_statistics`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from gampen.data.psf_features import ABSENT, PSF_FEATURES
from gampen.errors import ConfigError

#: Annulus edges in units of half the cutout side (48 px at 96x96: 0, 1.5, 2.5, ... 48 px).
APERTURE_EDGES: tuple[float, ...] = tuple(
    r / 48.0 for r in (0.0, 1.5, 2.5, 3.5, 5.0, 7.0, 10.0, 14.0, 20.0, 28.0, 40.0, 48.0)
)


@dataclass(frozen=True)
class ScalarInputs:
    """Which numbers go beside the image: photometry (per band), catalog conditions and
    the PSF image's features, in that order."""

    photometry: bool = False
    conditions: tuple[str, ...] = ()
    psf_image: bool = False

    def __post_init__(self) -> None:
        names = tuple(str(c) for c in self.conditions)
        if len(set(names)) != len(names) or any(not n for n in names):
            raise ConfigError(
                "conditions must be distinct, non-empty column names", value=list(names)
            )
        object.__setattr__(self, "conditions", names)

    def count(self, n_bands: int) -> int:
        """How many numbers per galaxy: ``2 (len(APERTURE_EDGES) - 1)`` per band, plus one
        per condition, plus ``PSF_FEATURES`` with the PSF image."""
        n_photometry = 2 * (len(APERTURE_EDGES) - 1) * n_bands if self.photometry else 0
        return n_photometry + len(self.conditions) + (PSF_FEATURES if self.psf_image else 0)

    def psf_slice(self, n_bands: int) -> slice:
        """Where the PSF features sit in :meth:`values` (empty without them)."""
        end = self.count(n_bands)
        return slice(end - PSF_FEATURES, end) if self.psf_image else slice(end, end)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description, stored in the model bundle's preprocessing;
        ``psf_image`` only when set, so that the bundles of models without it read as
        before."""
        out: dict[str, Any] = {"photometry": self.photometry, "conditions": list(self.conditions)}
        if self.psf_image:
            out["psf_image"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ScalarInputs:
        """Rebuild from :meth:`to_dict` output; ``None`` (older bundles) means none."""
        if data is None:
            return cls()
        unknown = set(data) - {"photometry", "conditions", "psf_image"}
        if unknown:
            raise ConfigError("unknown scalar-input fields", value=sorted(unknown))
        return cls(
            photometry=bool(data["photometry"]),
            conditions=tuple(data["conditions"]),
            psf_image=bool(data.get("psf_image", False)),
        )

    def values(
        self,
        fluxes: np.ndarray,
        softening: Sequence[float],
        row: np.ndarray,
        psf: np.ndarray | None = None,
    ) -> np.ndarray:
        """The numbers of one galaxy: the photometry of its :func:`annulus_fluxes`, its
        conditions ``row``, then (with ``psf_image``) its ``psf`` features (absent:
        zeros); float32."""
        parts = [aperture_photometry(fluxes, softening)] if self.photometry else []
        parts.append(np.asarray(row, dtype=np.float32))
        if self.psf_image:
            parts.append(np.asarray(ABSENT if psf is None else psf, dtype=np.float32))
        return np.concatenate(parts).astype(np.float32, copy=False)


def annulus_fluxes(image: np.ndarray) -> np.ndarray:
    """Per band of ``image`` (bands, size, size, linear pixels) and annulus: the sum, and
    the median times the pixel count (0 for an empty annulus); (bands, 2, n_annuli).
    Measured once per galaxy, for both the photometry and the crowding index."""
    members, counts = _annuli(image.shape[-1])
    out = np.empty((image.shape[0], 2, len(members)))
    for band in range(image.shape[0]):
        pixels = np.nan_to_num(image[band].astype(np.float64).ravel())
        out[band, 0] = [pixels[m].sum() for m in members]
        out[band, 1] = [np.median(pixels[m]) if m.size else 0.0 for m in members]
        out[band, 1] *= counts
    return out


def aperture_photometry(fluxes: np.ndarray, softening: Sequence[float]) -> np.ndarray:
    """Curves of growth (from annulus sums, then from annulus medians) per band of
    :func:`annulus_fluxes`, stretched with ``arcsinh(F / softening[b])``;
    (2 * n_annuli * bands,) float32.  An annulus with no pixel centre in it (the innermost
    ones of small cutouts) adds nothing."""
    scales = np.broadcast_to(np.asarray(softening, dtype=np.float64), (fluxes.shape[0],))
    curves = np.arcsinh(np.cumsum(fluxes, axis=-1) / scales[:, None, None])
    return curves.ravel().astype(np.float32)


def largest_aperture_flux(fluxes: np.ndarray) -> float:
    """The most light any circular aperture about the centre holds, over all bands, from
    :func:`annulus_fluxes`: the curve of growth's maximum.  The whole 48-pixel aperture
    alone sums ~7,200 pixels, whose noise and border-background error can take a faint
    galaxy's total below zero while its core stands out at 10-40 sigma; a negated image
    stays negative at every radius."""
    return float(np.cumsum(fluxes[:, 0].sum(axis=0)).max())


def crowding_index(fluxes: np.ndarray, softening: Sequence[float]) -> float:
    """How much more light the whole aperture holds than its annulus medians explain, from
    :func:`annulus_fluxes`: ``(F_sum - F_median) / max(|F_median|, a)`` over all bands
    (``a``: the summed softenings).  About 0 for a lone galaxy (noise and profile curvature
    give a few per cent); a neighbour inside the aperture raises it.  Rotations and flips
    about the centre leave it unchanged."""
    total_sum, total_median = (float(v) for v in fluxes.sum(axis=(0, 2)))
    floor = float(
        np.sum(np.broadcast_to(np.asarray(softening, dtype=np.float64), (fluxes.shape[0],)))
    )
    return (total_sum - total_median) / max(abs(total_median), floor)


@cache
def _annuli(size: int) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Flat pixel indices of each annulus about the centre of a ``size``-pixel cutout, and
    the pixel counts."""
    half = size / 2.0
    y, x = np.mgrid[:size, :size]
    radius = np.hypot(y - (size - 1) / 2.0, x - (size - 1) / 2.0).ravel()
    edges = np.asarray(APERTURE_EDGES) * half
    members = tuple(
        np.flatnonzero((radius >= lo) & (radius < hi)) for lo, hi in itertools.pairwise(edges)
    )
    return members, np.array([m.size for m in members], dtype=np.float64)
