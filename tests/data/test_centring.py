"""Recentring against galaxies drawn by GalSim at known sub-pixel offsets: the whole-pixel
move is the rounded offset (noiseless, and at S/N 30 away from the rounding boundaries), the
moved light centre lies within half a pixel of the cutout's centre, the pixels are only
rolled, a neighbour or a galaxy beyond the search box moves nothing, all bands move together,
and ``BorderBackground(recentre=True)`` is the plane removal followed by that roll.  The
windowed centroid itself is checked against GalSim's placement and against a root-finder for
its defining equation, and the search box's edges pixel by pixel."""

from __future__ import annotations

import itertools

import galsim
import numpy as np
import pytest
from scipy.ndimage import center_of_mass, gaussian_filter
from scipy.optimize import root

from gampen.data import centring
from gampen.data.background import BorderBackground
from gampen.data.centring import (
    MAX_SHIFT,
    SMOOTHING,
    WINDOW,
    centre_offset,
    recentred,
    windowed_centroid,
)
from gampen.errors import ConfigError

SIZE = 96
SCALE = 0.168  # arcsec per pixel (HSC)
CENTRE = (SIZE - 1) / 2  # GalSim's true centre of an even image, 0-based numpy coordinates
PSF = galsim.Moffat(beta=3.5, fwhm=0.6)

#: (axis ratio, position angle in degrees) of the galaxies drawn.
ROUND = (1.0, 0.0)
ELONGATED = (0.4, 0.0)  # major axis along x
TILTED = (0.4, 30.0)
SHAPES = [
    pytest.param(ROUND, id="round"),
    pytest.param(ELONGATED, id="elongated"),
    pytest.param(TILTED, id="tilted"),
]

#: Offsets (pixels) of the noiseless grid: up to +-5, some 0.05-0.15 px from a boundary.
GRID = (-5.0, -3.7, -2.2, -1.35, -0.3, 0.0, 0.45, 1.1, 2.6, 3.8, 5.0)
#: Offsets of the noisy grid: at least 0.4 px from a rounding boundary.
NOISY_GRID = (-5.0, -3.9, -2.0, -1.1, 0.0, 0.1, 1.0, 2.9, 4.0)


def _galaxy(
    dx: float,
    dy: float,
    shape: tuple[float, float] = ROUND,
    *,
    flux: float = 1000.0,
    size: int = SIZE,
) -> np.ndarray:
    """A PSF-convolved Sersic (n=1.5, r_e = 0.5") centred ``(dx, dy)`` pixels from the
    cutout's centre (GalSim's offset is (x, y)), (size, size) float64."""
    q, angle = shape
    profile = galsim.Sersic(n=1.5, half_light_radius=0.5, flux=flux)
    if q != 1.0:
        profile = profile.shear(q=q, beta=angle * galsim.degrees)
    image = galsim.Convolve(profile, PSF).drawImage(nx=size, ny=size, scale=SCALE, offset=(dx, dy))
    return image.array.astype(np.float64)


def _star(dx: float, dy: float, flux: float) -> np.ndarray:
    """A compact source (a star, or a compact neighbour) at ``(dx, dy)`` from the centre."""
    image = galsim.Convolve(galsim.Gaussian(sigma=0.05, flux=flux), PSF).drawImage(
        nx=SIZE, ny=SIZE, scale=SCALE, offset=(dx, dy)
    )
    return image.array.astype(np.float64)


def _noisy(image: np.ndarray, snr: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` plus white noise at the matched-filter S/N ``snr`` (GalSim's addNoiseSNR:
    sigma = sqrt(sum image^2) / snr)."""
    sigma = np.sqrt(np.sum(image**2)) / snr
    return image + rng.normal(0.0, sigma, image.shape)


def _rounded(offset: float) -> int:
    """The nearest whole pixel (no offset used here lies on a half)."""
    return int(np.floor(offset + 0.5))


def _sky(pedestal: float, gx: float, gy: float) -> np.ndarray:
    """pedestal + gx x + gy y, with x and y in units of the half side from the centre."""
    y, x = (np.mgrid[:SIZE, :SIZE] - CENTRE) / (SIZE / 2)
    return pedestal + gx * x + gy * y


def test_the_oracle_places_the_light_where_asked():
    """GalSim's offset is (x, y) about (n - 1) / 2: the light centroid (an independent
    measure) of the drawn galaxy is there."""
    for dx, dy in [(2.3, -4.1), (-5.0, 0.45), (0.0, 0.0)]:
        cy, cx = center_of_mass(_galaxy(dx, dy, TILTED))
        assert (cy - CENTRE, cx - CENTRE) == pytest.approx((dy, dx), abs=0.02)


@pytest.mark.parametrize("shape", SHAPES)
def test_the_rounded_offset_is_found_on_a_grid_without_noise(shape):
    wrong = [
        (dx, dy, got)
        for dx, dy in itertools.product(GRID, GRID)
        if (got := centre_offset(_galaxy(dx, dy, shape)[None])) != (_rounded(dy), _rounded(dx))
    ]
    assert wrong == []


@pytest.mark.parametrize("shape", [ROUND, ELONGATED, TILTED], ids=["round", "elongated", "tilted"])
def test_the_rounded_offset_is_found_at_snr_30(shape):
    """At S/N 30 the position of this galaxy is known to ~0.14 px (round) to ~0.18 px (along
    the major axis of the elongated one: the Cramer-Rao bound), so even an ideal estimator
    rounds a few per cent of cutouts 0.4 px from a boundary the wrong way; allow 10 %, and
    never more than one pixel from the right move."""
    rng = np.random.default_rng(30)
    misses = []
    for dx, dy in itertools.product(NOISY_GRID, NOISY_GRID):
        got = centre_offset(_noisy(_galaxy(dx, dy, shape), 30.0, rng)[None])
        misses.append((abs(got[0] - _rounded(dy)), abs(got[1] - _rounded(dx))))
    misses = np.array(misses)
    assert misses.max() <= 1
    assert np.mean(misses.max(axis=1) > 0) <= 0.10


@pytest.mark.parametrize("shape", SHAPES)
def test_a_galaxy_within_half_a_pixel_is_left_untouched(shape):
    for dx, dy in itertools.product((-0.45, -0.2, 0.0, 0.3, 0.45), repeat=2):
        image = _galaxy(dx, dy, shape)[None].astype(np.float32)
        assert centre_offset(image) == (0, 0), (dx, dy)
        assert recentred(image) is image


@pytest.mark.parametrize("shape", SHAPES)
def test_recentring_rolls_the_light_centre_to_within_half_a_pixel(shape):
    offsets = [(2.3, -4.1), (-5.0, 3.8), (1.1, 0.0), (-0.7, -2.6), (4.4, 4.6), (-5.0, 2.6)]
    for dx, dy in offsets:
        image = _galaxy(dx, dy, shape)[None].astype(np.float32)
        out = recentred(image)
        cy, cx = center_of_mass(out[0].astype(np.float64))
        assert abs(cy - CENTRE) <= 0.5 and abs(cx - CENTRE) <= 0.5, (dx, dy, cy, cx)
        # the pixels are the original ones, rolled by the rounded offset
        expected = np.roll(image, (-_rounded(dy), -_rounded(dx)), axis=(-2, -1))
        assert out.dtype == image.dtype and np.array_equal(out, expected), (dx, dy)


def test_an_odd_cutout_is_recentred_about_its_central_pixel():
    for dx, dy in [(0.0, 0.0), (0.4, -0.4), (3.3, -1.8), (-4.7, 5.2)]:
        image = _galaxy(dx, dy, ROUND, size=SIZE - 1)[None]
        assert centre_offset(image) == (_rounded(dy), _rounded(dx))


@pytest.mark.parametrize("where", [(15.0, 0.0), (0.0, -15.0), (10.6, 10.6)])
@pytest.mark.parametrize("flux", [1e3, 1e4])
def test_a_neighbour_does_not_move_the_cutout(where, flux):
    """A compact neighbour 15 px from a faint galaxy near the centre, 27 or 270 times its
    peak: either the faint galaxy's own peak is found, or the light rises to the search
    box's edge (the neighbour's) and the move is refused; the cutout never moves."""
    faint = _galaxy(0.3, -0.2, ROUND, flux=100.0)
    image = (faint + _star(*where, flux=flux))[None]
    assert centre_offset(image) == (0, 0)
    assert recentred(image) is image


@pytest.mark.parametrize(
    ("dx", "dy"), [(0.0, 7.6), (8.2, 0.0), (-9.0, 9.0), (0.0, -12.0), (7.6, 7.6), (-7.2, 0.3)]
)
def test_a_galaxy_beyond_the_search_box_is_not_followed(dx, dy):
    assert max(abs(dx), abs(dy)) > MAX_SHIFT + 1
    rng = np.random.default_rng(4)
    image = _galaxy(dx, dy, ROUND)
    assert centre_offset(image[None]) == (0, 0)
    assert centre_offset(_noisy(image, 100.0, rng)[None]) == (0, 0)


def test_all_bands_move_together():
    """The light centre is that of all bands: a faint band and a bright band of another
    shape at the same place move by the same whole pixels."""
    dx, dy = -2.3, 3.1
    image = np.stack([_galaxy(dx, dy, ROUND, flux=200.0), _galaxy(dx, dy, TILTED, flux=2000.0)])
    image = image.astype(np.float32)
    out = recentred(image)
    assert out.shape == image.shape
    for band in range(2):
        expected = np.roll(image[band], (-_rounded(dy), -_rounded(dx)), axis=(0, 1))
        assert np.array_equal(out[band], expected)


# --- the windowed centroid itself, against oracles that do not use its doubled step ---


def _gaussian(dx: float, dy: float, sigma: float) -> np.ndarray:
    """A pixel-integrated Gaussian of ``sigma`` pixels (no PSF) at ``(dx, dy)``."""
    image = galsim.Gaussian(sigma=sigma * SCALE, flux=100.0).drawImage(
        nx=SIZE, ny=SIZE, scale=SCALE, offset=(dx, dy)
    )
    return image.array.astype(np.float64)


def _window_root(image: np.ndarray, start: tuple[float, float], window: float) -> np.ndarray:
    """Where the first moment of ``image`` in a Gaussian window of ``window`` pixels about
    the point vanishes (the definition of the windowed centroid), by root-finding from
    ``start``: independent of the iteration under test."""
    y, x = np.indices(image.shape, dtype=np.float64)

    def moment(point: np.ndarray) -> list[float]:
        dy, dx = y - point[0], x - point[1]
        weights = image * np.exp(-(dy**2 + dx**2) / (2 * window**2))
        return [(weights * dy).sum() / weights.sum(), (weights * dx).sum() / weights.sum()]

    solution = root(moment, np.asarray(start, dtype=np.float64), tol=1e-12)
    assert solution.success
    return solution.x


def _is_float_pair(point: tuple[float, float]) -> bool:
    return len(point) == 2 and all(type(v) is float for v in point)


#: Starts (dy, dx) up to 0.95 px from the light centre, along each axis and diagonally.
STARTS = [(0.95, 0.0), (0.0, -0.95), (-0.9, 0.9), (0.6, 0.7), (-0.4, -0.3), (0.0, 0.0)]


@pytest.mark.parametrize("smoothed", [False, True], ids=["raw", "smoothed"])
@pytest.mark.parametrize("shape", SHAPES)
def test_the_windowed_centroid_lands_on_a_symmetric_galaxy(shape, smoothed):
    """Whatever its shape and tilt, from starts up to 0.95 px off: within 0.01 px of where
    GalSim drew it (raw, or smoothed as ``centre_offset`` does), as Python floats."""
    for dx, dy in [(0.3, -0.2), (-2.37, 1.61)]:
        image = _galaxy(dx, dy, shape)
        if smoothed:
            image = gaussian_filter(image, SMOOTHING)
        true = (CENTRE + dy, CENTRE + dx)
        for sy, sx in STARTS:
            got = windowed_centroid(image, (true[0] + sy, true[1] + sx))
            assert _is_float_pair(got)
            assert got == pytest.approx(true, abs=0.01), (dx, dy, sy, sx)


def test_the_windowed_centroid_converges_on_a_sharp_star():
    """A sharp star drawn on a pixel corner, so that its sampled light is symmetric about
    it.  At sigma 1 px the doubled step overshoots it by 0.6 of the distance and 20 rounds
    land within 0.003 px from anywhere within a pixel.  An undersampled star (sigma 0.5 px)
    is overshot by 0.9 of the distance, so the 20 rounds only shrink what the first step
    leaves: capped at one pixel, a step from 0.98 px off leaves 0.02 px, and the rounds
    land within 0.003 px (uncapped, the first overshoot leaves ~0.008 px)."""
    true = (CENTRE, CENTRE)
    corners = [(0.98, -0.98), (-0.98, 0.98), (0.98, 0.0), (0.0, -0.98)]
    for sigma, starts in [(1.0, [*corners, (0.5, 0.3), (-0.2, 0.1)]), (0.5, corners)]:
        image = _gaussian(0.0, 0.0, sigma)
        for sy, sx in starts:
            got = windowed_centroid(image, (CENTRE + sy, CENTRE + sx))
            assert got == pytest.approx(true, abs=0.003), (sigma, sy, sx)
    # at a sub-pixel position too (sampling moves the centre by < 1e-3 px at sigma 1)
    image = _gaussian(0.3, -0.2, 1.0)
    got = windowed_centroid(image, (CENTRE - 0.2 - 0.9, CENTRE + 0.3 + 0.9))
    assert got == pytest.approx((CENTRE - 0.2, CENTRE + 0.3), abs=0.003)


@pytest.mark.parametrize("window", [WINDOW, 3.0])
def test_the_windowed_centroid_of_lopsided_light_is_where_its_windowed_moment_vanishes(
    window, monkeypatch
):
    """A companion 3 px from a galaxy pulls the centroid by ~0.7 px, by an amount that
    depends on the window's width: it is the point where the first moment in a Gaussian
    window of :data:`WINDOW` pixels vanishes (found by root-finding)."""
    monkeypatch.setattr(centring, "WINDOW", window)
    image = _galaxy(0.3, -0.2, TILTED) + _star(3.3, 0.3, flux=100.0)
    start = (CENTRE - 0.2 + 0.4, CENTRE + 0.3 - 0.3)
    expected = _window_root(image, start, window)
    assert np.abs(expected - (CENTRE - 0.2, CENTRE + 0.3)).max() > 0.3  # lopsided indeed
    assert windowed_centroid(image, start) == pytest.approx(tuple(expected), abs=0.005)
    # another width puts it elsewhere
    assert np.abs(expected - _window_root(image, start, window * 1.25)).max() > 0.02


def test_the_windowed_centroid_does_not_depend_on_the_flux_scale():
    image = _galaxy(0.3, -0.2, ELONGATED)
    start = (CENTRE + 0.5, CENTRE - 0.4)
    reference = windowed_centroid(image, start)
    assert reference == pytest.approx((CENTRE - 0.2, CENTRE + 0.3), abs=0.01)
    for scale in (1e-6, 1e-3, 1e4):
        assert windowed_centroid(image * scale, start) == pytest.approx(reference, abs=1e-6)


def test_without_positive_windowed_light_the_start_comes_back():
    start = (40.25, 51.5)
    blank = np.zeros((SIZE, SIZE))
    negative = -_galaxy(0.3, -0.2, ROUND)
    # light far outside the window is no light either (its weight underflows to 0)
    far = np.zeros((SIZE, SIZE))
    far[-1, -1] = 1.0
    for image, at in [(blank, start), (negative, start), (far, (0.25, 1.5))]:
        got = windowed_centroid(image, at)
        assert _is_float_pair(got) and got == at
    # integer starts come back as floats
    got = windowed_centroid(blank, (np.int64(40), 51))
    assert _is_float_pair(got) and got == (40.0, 51.0)


def test_a_centroid_that_wanders_more_than_a_pixel_gives_the_start_back():
    """An isolated galaxy 1.2-1.8 px from the start: the centroid reaches it, more than a
    pixel away, and the start comes back; from 0.95 px it is found."""
    dx, dy = 0.3, -0.2
    image = _galaxy(dx, dy, ROUND)
    true = (CENTRE + dy, CENTRE + dx)
    for sy, sx in [(1.2, 0.0), (0.0, -1.5), (-1.8, 0.4), (1.1, 1.1), (-0.3, 1.9)]:
        start = (true[0] + sy, true[1] + sx)
        got = windowed_centroid(image, start)
        assert _is_float_pair(got)
        assert got == start, (sy, sx)
    assert windowed_centroid(image, (true[0] + 0.95, true[1])) == pytest.approx(true, abs=0.01)


@pytest.mark.parametrize("sep", [3.0, 4.0])
def test_a_bright_neighbour_does_not_drag_the_centroid_away(sep):
    """A faint galaxy with a compact neighbour ten times brighter 3-4 px away: the windowed
    centroid from the faint one's peak runs to the neighbour (root-finding confirms it lies
    more than a pixel away), so the peak itself comes back."""
    image = _galaxy(0.3, -0.2, ROUND, flux=100.0) + _star(0.3 + sep, -0.2, flux=1000.0)
    start = (float(round(CENTRE - 0.2)), float(round(CENTRE + 0.3)))
    assert np.abs(_window_root(image, start, WINDOW) - start).max() > 1.5
    got = windowed_centroid(image, start)
    assert _is_float_pair(got) and got == start


def test_a_point_source_exactly_a_pixel_away_is_found():
    """A single lit pixel one pixel (per axis) from the start: one step reaches it exactly,
    exactly one pixel is not more than one, so its position is the answer."""
    image = np.zeros((SIZE, SIZE))
    image[40, 50] = 5.0
    for start in [(41.0, 49.0), (39.0, 50.0), (40.0, 51.0), (39.0, 51.0)]:
        got = windowed_centroid(image, start)
        assert _is_float_pair(got) and got == (40.0, 50.0), start


# --- centre_offset at the edges of its search box, and its input types ---


@pytest.mark.parametrize(
    ("size", "inside", "edge"),
    [
        # an even cutout: the box spans centre +-(MAX_SHIFT + 0.5); a peak pixel at its edge
        # (a galaxy 6-7 px off) is refused, one inside it (5.5-6 px) moves MAX_SHIFT
        (SIZE, MAX_SHIFT - 0.1, MAX_SHIFT + 0.2),
        # an odd cutout: the box spans the central pixel +-MAX_SHIFT, whose edge is refused
        (SIZE - 1, MAX_SHIFT - 0.6, MAX_SHIFT),
    ],
    ids=["even", "odd"],
)
def test_the_edges_of_the_search_box_on_each_side(size, inside, edge):
    for sign in (1, -1):
        move = _rounded(sign * inside)
        assert centre_offset(_galaxy(sign * inside, 0.0, size=size)[None]) == (0, move)
        assert centre_offset(_galaxy(0.0, sign * inside, size=size)[None]) == (move, 0)
        assert centre_offset(_galaxy(sign * edge, 0.0, size=size)[None]) == (0, 0), sign
        assert centre_offset(_galaxy(0.0, sign * edge, size=size)[None]) == (0, 0), sign
        # both axes at once: the move is refused if either axis is on the edge
        assert centre_offset(_galaxy(sign * inside, -sign * edge, size=size)[None]) == (0, 0)
        assert centre_offset(_galaxy(sign * edge, sign * inside, size=size)[None]) == (0, 0)


@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.float32])
def test_an_integer_counts_image_is_smoothed_in_floating_point(dtype):
    """A faint galaxy in whole counts (at most 2 a pixel): smoothed in integers it would be
    all zeros (its smoothed peak is ~1.2 counts), smoothed in floats it is found."""
    dx, dy = 2.3, -3.1
    counts = np.round(_galaxy(dx, dy, ROUND, flux=100.0)).astype(dtype)[None]
    assert counts.max() <= 2
    assert centre_offset(counts) == (_rounded(dy), _rounded(dx))
    assert centre_offset(counts) == centre_offset(counts.astype(np.float64))


def _sky_and_galaxy(dx: float, dy: float, *, noise: float = 0.0) -> np.ndarray:
    """Two bands, each a sky plane (pedestal and gradient) under a galaxy at (dx, dy)."""
    rng = np.random.default_rng(8)
    bands = [
        _sky(0.04, 0.02, -0.015) + _galaxy(dx, dy, ROUND, flux=800.0),
        _sky(-0.03, -0.01, 0.025) + _galaxy(dx, dy, ELONGATED, flux=1500.0),
    ]
    return (np.stack(bands) + rng.normal(0.0, noise, (2, SIZE, SIZE))).astype(np.float32)


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_border_background_with_recentre_removes_the_plane_then_rolls(noise):
    dx, dy = 2.2, -3.1
    image = _sky_and_galaxy(dx, dy, noise=noise)
    out = BorderBackground(recentre=True)(image)
    expected = np.roll(BorderBackground()(image), (-_rounded(dy), -_rounded(dx)), axis=(-2, -1))
    assert out.dtype == np.float32
    assert np.array_equal(out, expected)
    # a galaxy already at the centre comes out exactly as the plane removal leaves it
    centred = _sky_and_galaxy(0.2, -0.3, noise=noise)
    assert np.array_equal(BorderBackground(recentre=True)(centred), BorderBackground()(centred))


def test_without_recentre_the_galaxy_stays_off_centre():
    """The case that must fail: the plain border estimate leaves the light centre where it
    was, more than a pixel off; with ``recentre`` it is within half a pixel."""
    image = _sky_and_galaxy(2.2, -3.1)
    for recentre, near in [(False, False), (True, True)]:
        cleaned = BorderBackground(recentre=recentre)(image).astype(np.float64)
        for band in cleaned:
            cy, cx = center_of_mass(band)
            offset = max(abs(cy - CENTRE), abs(cx - CENTRE))
            assert (offset <= 0.5) if near else (offset > 1.0), (recentre, cy, cx)


def test_round_trip_of_the_recentre_setting():
    centring = BorderBackground(width=6, recentre=True)
    assert centring.to_dict() == {"method": "border", "width": 6, "recentre": True}
    assert BorderBackground.from_dict(centring.to_dict()) == centring
    # without it, bundles read and write as before
    assert BorderBackground().to_dict() == {"method": "border", "width": 8}
    plain = BorderBackground.from_dict({"method": "border", "width": 8})
    assert plain == BorderBackground() and plain.recentre is False
    explicit = {"method": "border", "width": 8, "recentre": False}
    assert BorderBackground.from_dict(explicit) == BorderBackground()
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError, match="unknown background estimate"):
            BorderBackground.from_dict({"method": "border", "width": 8, "recentre": bad})


def test_training_asks_for_it_with_border_centred():
    from gampen.cli import build_parser
    from gampen.training.config import BACKGROUNDS, TrainConfig, load_config
    from gampen.training.fit import _background

    assert "border-centred" in BACKGROUNDS
    args = build_parser().parse_args(
        ["train", "cat.csv", "--out", "m", "--background", "border-centred"]
    )
    config = load_config(overrides={"background": args.background})
    assert config.background == "border-centred"
    assert _background(config, None) == BorderBackground(recentre=True)
    assert _background(TrainConfig(background="border"), None) == BorderBackground()
    assert _background(TrainConfig(background="none"), None) is None
    masked = BorderBackground(recentre=True, mask_sources=True)
    assert _background(TrainConfig(background="masked-centred"), None) == masked
    with pytest.raises(ConfigError, match="'background' is invalid"):
        TrainConfig(background="centred")
