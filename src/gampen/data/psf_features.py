"""Numbers that describe a galaxy's PSF image to the network (numpy only).

A PSF FWHM says how wide the core is, not how much light the wings hold or how
elongated the PSF is; a PSF image says both.  :func:`psf_features` turns one into
:data:`PSF_FEATURES` numbers, appended to the scalar inputs of models trained with
``--psf-image`` (:class:`gampen.data.scalars.ScalarInputs`):

1. an indicator: 1.0 (a PSF image was given; :data:`ABSENT`, all zeros, otherwise);
2. the **encircled-energy fraction** within circles of :data:`EE_RADII` arcsec about the
   PSF's flux-weighted centroid.  The image (normalised to unit sum) is taken as
   pixel-integrated, each value the flux falling in its pixel (as GalSim draws a PSF and
   surveys' PSF models give it); the pixel's top-hat is divided out of its discrete
   Fourier transform, and the band-limited profile that remains is integrated over each
   disc exactly: ``EE(R) = sum_k F(k) exp(2 pi i k.c) R J1(2 pi R |k|) / |k|``
   (:func:`encircled_energy`).  No sub-pixel grid is involved, so the features describe
   the PSF itself, the same at any sampling (tested: a PSF at half the pixel scale agrees
   to a few 0.001);
3. the **ellipticity modulus** ``|e| = |(M_xx - M_yy, 2 M_xy)| / (M_xx + M_yy)`` (the
   distortion: ``(1 - q^2) / (1 + q^2)`` for axis ratio ``q``) of the adaptive
   (elliptical-Gaussian-weighted, iterated to the PSF's own shape) second moments ``M``,
   of the pixel-deconvolved profile (the pixel's top-hat divided out in Fourier space).

Every feature is unchanged by flips and rotations of the PSF image (quarter turns
exactly; any angle up to sampling), as the training augmentation moves the galaxy
image without touching its scalar inputs: ``e1`` and ``e2`` alone would change sign.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import j1
from scipy.stats import norm

#: Radii (arcsec) of the circles whose encircled-energy fractions describe a PSF.
EE_RADII: tuple[float, ...] = (0.15, 0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)
#: Numbers per galaxy: the indicator, one encircled energy per radius, and ``|e|``.
PSF_FEATURES = 1 + len(EE_RADII) + 1
#: The features of a galaxy without a PSF image (the network then relies on psf_fwhm).
ABSENT: np.ndarray = np.zeros(PSF_FEATURES, dtype=np.float32)
ABSENT.flags.writeable = False
#: Iterations and relative tolerance of the adaptive moments.
MOMENT_ITERATIONS = 100
MOMENT_TOLERANCE = 1e-7


@dataclass(frozen=True, eq=False)
class PsfImage:
    """A galaxy's PSF image as read: its pixels (any normalisation), the pixel scale its
    header states (arcsec; None: the model's), where it came from (for messages) and
    why it could not be read ('' when it was).  Hashed by identity: one read of a file
    shared by many galaxies is measured once."""

    pixels: np.ndarray
    pixel_scale: float | None
    source: str
    problem: str = ""


def measure_psf(psf: PsfImage | None, pixel_scale: float | None) -> tuple[np.ndarray, str]:
    """A galaxy's PSF features (:data:`ABSENT` without a PSF image) and, for one that
    cannot be used, why ('' otherwise; its features are then :data:`ABSENT` too).
    ``pixel_scale`` (the model's) stands in where the image states none."""
    if psf is None:
        return ABSENT, ""
    scale = psf.pixel_scale or pixel_scale
    problem = psf.problem or psf_problem(psf.pixels)
    if not problem and not scale:
        problem = "states no pixel scale, and the model's is unknown"
    if problem:
        return ABSENT, f"PSF image {psf.source}: {problem}"
    return psf_features(psf.pixels, float(scale)), ""


def psf_problem(image: np.ndarray) -> str:
    """Why ``image`` cannot be a PSF ('' when it can): not 2-D, non-finite values or a
    sum that is not positive."""
    if image.ndim != 2:
        return f"is {image.ndim}-D with shape {image.shape}, not a 2-D image"
    if image.size == 0:
        return "is empty"
    bad = int(np.count_nonzero(~np.isfinite(image)))
    if bad:
        return f"holds {bad} non-finite value(s)"
    total = float(image.sum(dtype=np.float64))
    if not total > 0:
        return f"sums to {total:.4g}, not a positive flux"
    return ""


def psf_features(image: np.ndarray, pixel_scale: float) -> np.ndarray:
    """The :data:`PSF_FEATURES` numbers of a usable PSF ``image`` (see
    :func:`psf_problem`) sampled at ``pixel_scale`` arcsec/px: 1, the encircled
    energies at :data:`EE_RADII` and ``|e|``; float32."""
    return widened_features(image, pixel_scale, [1.0])[0]


def widened_features(
    image: np.ndarray, pixel_scale: float, factors: Sequence[float] | np.ndarray
) -> np.ndarray:
    """:func:`psf_features` of the same PSF made each of ``factors`` times wider
    (len(factors), :data:`PSF_FEATURES`): a PSF ``f`` times wider holds within ``R`` what
    this one holds within ``R / f``, and its indicator and ``|e|`` are this one's."""
    psf = np.asarray(image, dtype=np.float64)
    psf = psf / psf.sum()
    centre = centroid(psf)
    scales = float(pixel_scale) * np.asarray(factors, dtype=np.float64)[:, None]
    radii = np.asarray(EE_RADII, dtype=np.float64)[None, :] / scales
    energies = encircled_energy(psf, centre, radii.ravel()).reshape(radii.shape)
    ones = np.ones((len(radii), 1))
    values = np.hstack([ones, energies, ones * ellipticity(psf, centre)])
    return values.astype(np.float32)


def centroid(psf: np.ndarray) -> tuple[float, float]:
    """The flux-weighted centroid (y, x) of ``psf`` in pixels (index units)."""
    total = psf.sum()
    y = float(psf.sum(axis=1) @ np.arange(psf.shape[0])) / total
    x = float(psf.sum(axis=0) @ np.arange(psf.shape[1])) / total
    return y, x


def encircled_energy(
    psf: np.ndarray, centre: tuple[float, float], radii: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Fractions of the flux of the unit-sum, pixel-integrated ``psf`` within discs of
    ``radii`` (pixels) about ``centre`` (y, x): the disc integrals of its band-limited,
    pixel-deconvolved interpolant, summed in Fourier space."""
    radii = np.asarray(radii, dtype=np.float64)
    spectrum, k_y, k_x = centred_spectrum(psf, centre, float(radii.max(initial=0.0)))
    k = np.hypot(k_y, k_x)
    return np.array([float(np.sum(spectrum * disc_transform(k, r)).real) for r in radii])


def centred_spectrum(
    psf: np.ndarray, centre: tuple[float, float], margin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half the DFT of ``psf`` (zero-padded by ``margin`` + 2 pixels to an odd square, so
    no light wraps into a disc or weight of that reach) with the pixel's top-hat divided
    out, phased so that ``centre`` (y, x) is the origin, divided by the number of samples
    and doubled where ``k_x > 0`` (the other half mirrors it): for any real, even ``h``
    with Fourier transform ``H``, ``integral of f(x + c) h(x) dx`` is the real part of
    ``sum(spectrum * H(k))``.  With the frequencies ``k_y`` (a column) and ``k_x`` (a
    row) in cycles per pixel."""
    size = max(psf.shape) + math.ceil(margin) + 2
    size += 1 - size % 2  # odd: the frequencies are symmetric, the interpolant real
    padded = np.zeros((size, size))
    padded[: psf.shape[0], : psf.shape[1]] = psf
    k_y = np.fft.fftfreq(size)[:, None]
    k_x = np.fft.rfftfreq(size)[None, :]
    spectrum = np.fft.rfft2(padded) / (np.sinc(k_y) * np.sinc(k_x))  # the pixel removed
    spectrum *= np.exp(2j * np.pi * (k_y * centre[0] + k_x * centre[1])) / size**2
    spectrum[:, 1:] *= 2
    return spectrum, k_y, k_x


def disc_transform(k: np.ndarray, radius: float) -> np.ndarray:
    """The Fourier transform of a disc of ``radius`` at spatial frequencies ``k`` (cycles
    per unit): ``R J1(2 pi R k) / k``, and its area ``pi R^2`` at ``k = 0``."""
    k = np.asarray(k, dtype=np.float64)
    safe = np.where(k > 0, k, 1.0)
    return np.where(k > 0, radius * j1(2 * np.pi * radius * safe) / safe, np.pi * radius**2)


def ellipticity(psf: np.ndarray, centre: tuple[float, float]) -> float:
    """``|e|`` (distortion) of the adaptive second moments of ``psf`` about ``centre``."""
    moments = adaptive_moments(psf, centre)
    yy, xx, xy = moments[0, 0], moments[1, 1], moments[0, 1]
    return float(math.hypot(xx - yy, 2 * xy) / (xx + yy))


def adaptive_moments(psf: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """The (y, x) second moments (pixels^2) of the pixel-deconvolved, band-limited
    profile of the unit-sum ``psf``, weighted by the elliptical Gaussian of those same
    moments about ``centre``: ``M <- 2 Q_W(M)`` iterated (twice the weighted moments;
    exact for a Gaussian).  The integrals are sums over its spectrum (exact, however few
    pixels the weight spans).  Starts from the round Gaussian of the PSF's peak and
    stops where an update would not be positive-definite."""
    start = 1.0 / (2 * np.pi * max(float(psf.max()), 1e-12))
    moments = np.eye(2) * max(start, 0.25)
    spectrum, k_y, k_x = centred_spectrum(psf, centre, 4 * math.sqrt(max(start, 0.25)))
    for _ in range(MOMENT_ITERATIONS):
        update = 2 * weighted_moments(spectrum, k_y, k_x, moments)
        if not (update[0, 0] > 0 and np.linalg.det(update) > 0):
            break
        change = np.abs(update - moments).max()
        moments = update
        if change < MOMENT_TOLERANCE * np.trace(moments):
            break
    return moments


def weighted_moments(
    spectrum: np.ndarray, k_y: np.ndarray, k_x: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """Second moments (y, x) of the profile of :func:`centred_spectrum` under the
    Gaussian weight ``exp(-u^T W^-1 u / 2)`` of covariance ``weight`` (symmetric): from the weight's
    transform ``G(k) = exp(-2 pi^2 k^T W k)`` (its constant cancels) and that of
    ``u_i u_j`` times it, ``G(k) (W_ij - 4 pi^2 (W k)_i (W k)_j)``."""
    w_k = (weight[0, 0] * k_y + weight[0, 1] * k_x, weight[0, 1] * k_y + weight[1, 1] * k_x)
    gaussian = spectrum * np.exp(-2 * np.pi**2 * (k_y * w_k[0] + k_x * w_k[1]))
    total = float(gaussian.sum().real)
    if not total > 0:  # no flux under the weight: no moments (the iteration stops)
        return np.full((2, 2), np.nan)
    yy, xx, xy = (
        float((gaussian * (weight[i, j] - 4 * np.pi**2 * w_k[i] * w_k[j])).sum().real) / total
        for i, j in ((0, 0), (1, 1), (0, 1))
    )
    return np.array([[yy, xy], [xy, xx]])  # symmetric by construction: no drift


def size_factors(sigma: float, n: int) -> np.ndarray:
    """``n`` equal-weight factors by which to widen the PSF, ``exp(sigma * u)``, with the
    ``u`` the normal quantiles at ``(j + 0.5) / n`` rescaled so their mean is 0 and their
    rms exactly 1 (the raw quantiles' rms is below 1, most for small ``n``)."""
    u = norm.ppf((np.arange(n) + 0.5) / n)
    if n > 1:
        u = u / np.sqrt(np.mean(u**2))
    return np.exp(sigma * u)
