"""Posteriors marginalised over a PSF model's size error (``gampen predict --psf-fwhm-error``).

A network is told each galaxy's PSF (its FWHM, its PSF image) and believes it: where the
survey's PSF model is wrong by a few per cent, r_e moves and its interval stays as narrow
as before (issue 19: at 9 % rms, r_e's 68 % intervals held 41 %).  No image says how good
a PSF model is, but its makers do (star residuals, cross-validation on reserved stars).
Given that figure, ``sigma`` (the rms of ln(true FWHM / reported FWHM)), each galaxy's
Monte Carlo passes are spread over :data:`NODES` PSFs, ``FWHM * exp(sigma * u_j)``, the
``u_j`` equal-weight normal quantiles scaled to unit variance: the posterior becomes the
mixture over PSF sizes, wider where the size matters (small galaxies) and hardly at all
where it does not.  The calibration map (fitted with the PSF taken as exact) reshapes the
spread within each PSF size; the shifts between sizes are kept as they are
(:func:`gampen.infer.sampling.posterior_samples`).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from gampen.data.scalars import ScalarInputs
from gampen.errors import ConfigError

#: PSF sizes per galaxy; passes go to them in turn (pass j to size j mod NODES).
NODES = 10


def psf_factors(scalars: ScalarInputs, sigma: float, n_passes: int) -> np.ndarray | None:
    """The PSF size factors of a prediction with PSF FWHM error ``sigma`` (None for 0);
    refuses a model told nothing of the PSF, which nothing could widen."""
    if sigma == 0:
        return None
    if "psf_fwhm" not in scalars.conditions and not scalars.psf_image:
        raise ConfigError(
            "--psf-fwhm-error needs a model that takes the PSF (a psf_fwhm condition or PSF "
            "images); this one takes neither",
            value=sigma,
            allowed="0",
        )
    return size_factors(sigma, min(NODES, n_passes))


def size_factors(sigma: float, n: int = NODES) -> np.ndarray:
    """``n`` equal-weight factors by which to widen the PSF, ``exp(sigma * u)``, with the
    ``u`` the normal quantiles at ``(j + 0.5) / n`` rescaled so their mean is 0 and their
    rms exactly 1 (the raw quantiles' rms is below 1, most for small ``n``)."""
    u = norm.ppf((np.arange(n) + 0.5) / n)
    if n > 1:
        u = u / np.sqrt(np.mean(u**2))
    return np.exp(sigma * u)
