"""Posteriors marginalised over a PSF model's size error (``gampen predict --psf-fwhm-error``).

A network is told each galaxy's PSF (its FWHM, its PSF image) and believes it: where the
survey's PSF model is wrong by a few per cent, r_e moves and its interval stays as narrow
as before (issue 19: at 9 % rms, r_e's 68 % intervals held 41 %).  No image says how good
a PSF model is, but its makers do (star residuals, cross-validation on reserved stars).
Given that figure, ``sigma`` (the rms of ln(true FWHM / reported FWHM); one for all
galaxies, or each galaxy's from a catalog column), each galaxy's Monte Carlo passes are
spread over :data:`NODES` PSFs, ``FWHM * exp(sigma * u_j)``, the ``u_j`` equal-weight
normal quantiles scaled to unit variance
(:func:`gampen.data.psf_features.size_factors`): the posterior becomes the
mixture over PSF sizes, wider where the size matters (small galaxies) and hardly at all
where it does not.  The calibration map (fitted with the PSF taken as exact) reshapes the
spread within each PSF size; the shifts between sizes are kept as they are
(:func:`gampen.infer.sampling.posterior_samples`).
"""

from __future__ import annotations

import numpy as np

from gampen.data.catalog import Catalog
from gampen.data.scalars import ScalarInputs
from gampen.errors import CatalogError, ConfigError
from gampen.infer.options import MAX_PSF_ERROR

#: PSF sizes per galaxy; passes go to them in turn (pass j to size j mod NODES).
NODES = 10


def psf_sigmas(scalars: ScalarInputs, error: float | str, catalog: Catalog) -> np.ndarray | None:
    """Each galaxy's PSF FWHM error: ``error`` for all, or the values of the catalog
    column it names (None when every one is 0).  Refuses a model told nothing of the PSF,
    which nothing could widen, and a value that is not a number in [0, MAX]."""
    if isinstance(error, str):
        sigmas = _column(catalog, error)
    else:
        sigmas = np.full(len(catalog), float(error), dtype=np.float32)
    if not sigmas.any():
        return None
    if "psf_fwhm" not in scalars.conditions and not scalars.psf_image:
        raise ConfigError(
            "--psf-fwhm-error needs a model that takes the PSF (a psf_fwhm condition or PSF "
            "images); this one takes neither",
            value=error,
            allowed="0",
        )
    return sigmas


def _column(catalog: Catalog, name: str) -> np.ndarray:
    """The catalog column ``name`` as PSF FWHM errors, each checked."""
    if name not in catalog.kept.colnames:
        raise CatalogError(
            f"{catalog.source}: --psf-fwhm-error names a column the catalog lacks",
            value=name,
            allowed=list(catalog.column_names),
        )
    column = catalog.kept[name]
    try:
        values = np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)
    except (TypeError, ValueError) as exc:
        raise CatalogError(
            f"{catalog.source}: column {name!r} does not hold numbers (PSF FWHM errors)",
            value=str(column.dtype),
            allowed=f"numbers in [0, {MAX_PSF_ERROR}]",
        ) from exc
    bad = ~((values >= 0) & (values <= MAX_PSF_ERROR))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CatalogError(
            f"{catalog.source}: column {name!r} holds {int(bad.sum())} PSF FWHM error(s) "
            f"that are not numbers in [0, {MAX_PSF_ERROR}] (the rms of ln(true / reported "
            f"FWHM)), the first for object_id {catalog.object_ids[row]}",
            value="an empty cell" if np.ma.is_masked(column[row]) else str(column[row]),
            allowed=f"[0, {MAX_PSF_ERROR}]",
        )
    return values.astype(np.float32)
