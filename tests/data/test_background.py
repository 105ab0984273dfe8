"""The border background estimate against known skies: a pedestal and a gradient under a
galaxy and noise are recovered, a neighbour on the border is clipped, and a model trained
with it removes the same sky at prediction."""

from __future__ import annotations

import numpy as np
import pytest

from gampen.data import background
from gampen.data.background import BorderBackground, fit_plane
from gampen.errors import ConfigError

SIZE = 96


def _sky(pedestal: float, gx: float, gy: float) -> np.ndarray:
    """pedestal + gx x + gy y, with x and y in units of the half side from the centre."""
    y, x = (np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2) / (SIZE / 2)
    return pedestal + gx * x + gy * y


def _galaxy(flux: float = 600.0, r: float = 5.0) -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    profile = np.exp(-1.678 * np.hypot(x, y) / r)
    return flux * profile / profile.sum()


@pytest.mark.parametrize(
    ("pedestal", "gx", "gy"), [(0.0, 0.0, 0.0), (0.035, 0.0, 0.0), (-0.02, 0.015, -0.01)]
)
def test_a_known_sky_is_recovered_under_a_galaxy_and_noise(pedestal, gx, gy):
    rng = np.random.default_rng(1)
    image = _sky(pedestal, gx, gy) + _galaxy() + rng.normal(0, 0.07, (SIZE, SIZE))
    estimate = BorderBackground().estimate(image[None])[0]
    truth = _sky(pedestal, gx, gy)
    # the border holds 2,816 pixels: each of the plane's three numbers is known to about
    # 0.07 / sqrt(2816) ~ 0.0013, its corners (pedestal and both slopes) to ~0.0023
    assert abs(np.mean(estimate - truth)) < 0.004  # the pedestal: 3 sigma
    assert np.abs(estimate - truth).max() < 0.012  # the worst corner: 5 sigma
    cleaned = BorderBackground()(image[None].astype(np.float32))[0]
    assert cleaned.dtype == np.float32
    # the aperture sum of the cleaned image is the galaxy's, within the estimate's noise
    assert cleaned.sum() == pytest.approx(600.0, abs=0.004 * SIZE * SIZE + 10)


def test_a_neighbour_on_the_border_is_clipped():
    rng = np.random.default_rng(2)
    image = _sky(0.03, 0.0, 0.0) + rng.normal(0, 0.07, (SIZE, SIZE))
    image[2:9, 20:27] += 5.0  # a bright neighbour cut by the edge
    clipped = BorderBackground().estimate(image[None])[0]
    assert abs(np.mean(clipped) - 0.03) < 0.004
    # the case that must fail: a plain least-squares plane is pulled by the neighbour
    design = np.stack([np.ones(SIZE * SIZE), np.zeros(SIZE * SIZE), np.zeros(SIZE * SIZE)], 1)
    frame = np.ones((SIZE, SIZE), bool)
    frame[8:-8, 8:-8] = False
    plain = np.linalg.lstsq(design[frame.ravel()], image.ravel()[frame.ravel()], rcond=None)[0]
    assert abs(plain[0] - 0.03) > 0.02


def _sersic_wings(amplitude: float, cx: float, cy: float, r: float) -> np.ndarray:
    """A neighbour with extended wings (n = 2 Sersic-like), centred at (cx, cy) pixels."""
    y, x = np.mgrid[:SIZE, :SIZE]
    return amplitude * np.exp(-3.67 * (np.hypot(x - cx, y - cy) / r) ** 0.5)


def test_masking_the_border_sources_halves_the_pull_of_a_neighbours_wings():
    centre = slice(SIZE // 2 - 10, SIZE // 2 + 10)  # under the galaxy: where photometry is
    masked_bias, clipped_bias = [], []
    for seed in range(4, 10):
        rng = np.random.default_rng(seed)
        truth = _sky(0.02, -0.01, 0.015)
        neighbour = _sersic_wings(40.0, rng.uniform(0, 20), rng.uniform(0, SIZE), 6.0)
        image = truth + _galaxy(3000.0, 9.0) + neighbour + rng.normal(0, 0.07, (SIZE, SIZE))
        for method, biases in ((True, masked_bias), (False, clipped_bias)):
            estimate = BorderBackground(mask_sources=method).estimate(image[None])[0]
            biases.append(np.mean(estimate[centre, centre] - truth[centre, centre]))
    # the neighbour's wings below any detection threshold still pull the plane up a little
    assert 0 < np.mean(masked_bias) < 0.5 * np.mean(clipped_bias)
    assert max(masked_bias) < 0.012  # 0.17 sky sigma at worst
    # the case that must fail: clipping alone is pulled by the wings it cannot see
    assert np.mean(clipped_bias) > 0.008 and max(clipped_bias) > 0.02


def test_masking_leaves_a_clean_sky_nearly_as_the_clipped_plane_finds_it():
    rng = np.random.default_rng(7)
    truth = _sky(-0.01, 0.02, 0.0)
    image = truth + _galaxy(300.0, 4.0) + rng.normal(0, 0.07, (SIZE, SIZE))
    masked = BorderBackground(mask_sources=True).estimate(image[None])[0]
    clipped = BorderBackground().estimate(image[None])[0]
    # noise peaks are too small to be masked (masking them, one-sided, would lower the
    # plane by ~0.05 sky sigma): both planes are the sky within their own noise
    assert abs(np.mean(masked - truth)) < 0.004  # the pedestal: 3 sigma, as above
    assert abs(np.mean(masked - clipped)) < 0.0015


def test_a_frame_mostly_masked_keeps_the_clipped_plane(monkeypatch):
    rng = np.random.default_rng(8)
    image = _sky(0.02, 0.0, 0.0) + _sersic_wings(40.0, 10.0, 50.0, 6.0)
    image += rng.normal(0, 0.07, (SIZE, SIZE))
    clipped = BorderBackground().estimate(image[None])
    masked = BorderBackground(mask_sources=True)
    assert not np.array_equal(masked.estimate(image[None]), clipped)
    # when fewer than MIN_FREE of the frame's pixels stay free, nothing is refitted
    monkeypatch.setattr(background, "MIN_FREE", 1.0)
    np.testing.assert_array_equal(masked.estimate(image[None]), clipped)


def test_fit_plane_is_least_squares_without_outliers():
    rng = np.random.default_rng(3)
    design = np.column_stack([np.ones(500), rng.uniform(-1, 1, 500), rng.uniform(-1, 1, 500)])
    values = design @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.01, 500)
    expected = np.linalg.lstsq(design, values, rcond=None)[0]
    np.testing.assert_allclose(fit_plane(design, values), expected, atol=2e-3)
    values[:5] = np.nan  # damaged pixels are ignored
    assert np.isfinite(fit_plane(design, values)).all()


def test_round_trip_and_bad_settings():
    assert BorderBackground.from_dict(BorderBackground(width=6).to_dict()) == BorderBackground(6)
    masked = BorderBackground(recentre=True, mask_sources=True)
    assert masked.to_dict() == {
        "method": "border",
        "width": 8,
        "recentre": True,
        "mask_sources": True,
    }
    assert BorderBackground.from_dict(masked.to_dict()) == masked
    assert BorderBackground.from_dict({"method": "border", "width": 8}).mask_sources is False
    with pytest.raises(ConfigError, match="unknown background estimate"):
        BorderBackground.from_dict({"method": "border", "mask_sources": "yes"})
    assert BorderBackground.from_dict(None) is None
    with pytest.raises(ConfigError, match="unknown background estimate"):
        BorderBackground.from_dict({"method": "median"})
    with pytest.raises(ConfigError, match="positive integer"):
        BorderBackground(width=0)


@pytest.mark.parametrize("pedestal", [0.25, -0.25])
def test_a_model_with_the_border_estimate_ignores_a_residual_sky(tmp_path, pedestal):
    """The fitted plane moves with a constant sky exactly (least squares is equivariant and
    the clipped residuals are the same), so the cleaned cutouts, and the posteriors, are;
    and the flags: a negative sky that drives the raw aperture flux below zero is removed
    before the flux is checked, so it flags nothing."""
    import json
    import shutil

    from astropy.io import fits
    from astropy.table import Table

    from gampen.infer.options import PredictOptions
    from gampen.infer.predict import predict

    from ..synthetic import tiny_bundle, write_labelled_set

    catalog = write_labelled_set(tmp_path / "data", n=12)
    plain = tiny_bundle(tmp_path)
    cleaning = tmp_path / "cleaning"
    shutil.copytree(plain, cleaning)
    document = json.loads((cleaning / "gampen.json").read_text())
    document["preprocessing"]["background"] = BorderBackground().to_dict()
    (cleaning / "gampen.json").write_text(json.dumps(document))
    table = Table.read(catalog)
    (tmp_path / "sky").mkdir()
    for name in table["file_name"]:
        with fits.open(catalog.parent / "cutouts" / name) as hdul:
            hdul[0].data = hdul[0].data + np.float32(pedestal)  # 5 sigma of residual sky
            hdul.writeto(tmp_path / "sky" / name)
    table.write(tmp_path / "sky" / "info.csv")
    options = PredictOptions(n_passes=2, n_samples=50, num_workers=0, progress=False)
    runs = {
        (model.name, where): predict(where / "info.csv", model=model, options=options)
        for model in (plain, cleaning)
        for where in (catalog.parent, tmp_path / "sky")
    }

    def shift(model: str) -> float:
        """The largest relative change of the flux median that the sky makes (of galaxies
        it does not flag fatally)."""
        before, after = runs[(model, catalog.parent)], runs[(model, tmp_path / "sky")]
        return float(np.nanmax(np.abs(after["flux_median"] / before["flux_median"] - 1)))

    assert shift("cleaning") < 1e-5  # float rounding only
    assert np.array_equal(
        runs[("cleaning", tmp_path / "sky")]["flags"], runs[("cleaning", catalog.parent)]["flags"]
    )
    # the case that must fail: the same network without the estimate is moved by the sky
    assert shift("bundle") > 100 * max(shift("cleaning"), 1e-6)


def test_width_bounds_and_what_a_bad_width_error_says():
    assert BorderBackground(width=1).width == 1  # the narrowest frame is allowed
    for bad in (0, -3, True, 2.0):
        with pytest.raises(ConfigError, match="positive integer") as caught:
            BorderBackground(width=bad)
        assert str(caught.value).startswith("background width must be a positive integer")
        assert repr(bad) in str(caught.value)  # the message names the value


def test_from_dict_defaults_and_refusals_name_what_was_given():
    assert BorderBackground.from_dict({"method": "border"}) == BorderBackground()
    assert BorderBackground.from_dict({"method": "border"}).width == 8
    for bad in ({"method": "border", "extra": 1}, {"method": "border", "recentre": "yes"}):
        with pytest.raises(ConfigError, match="unknown background estimate") as caught:
            BorderBackground.from_dict(bad)
        message = str(caught.value)
        assert message.startswith("unknown background estimate")
        assert repr(bad) in message and "expected method border" in message


def test_recentring_happens_only_when_asked():
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    off = np.exp(-0.5 * ((x - 3) ** 2 + y**2) / 2.0**2)[None]  # 3 pixels right of centre
    plain = BorderBackground()(off)
    centred = BorderBackground(recentre=True)(off)
    assert np.argmax(plain[0].sum(axis=0)) in (50, 51)  # left where it was
    assert np.argmax(centred[0].sum(axis=0)) in (47, 48)  # rolled back to the centre


def test_the_estimate_is_computed_in_float64_whatever_the_image_dtype():
    rng = np.random.default_rng(11)
    image = (_sky(3.0, 0.5, -0.25) + rng.normal(0, 0.07, (SIZE, SIZE)))[None]
    single = image.astype(np.float32)
    for method in (BorderBackground(), BorderBackground(mask_sources=True)):
        estimate = method.estimate(single)
        assert estimate.dtype == np.float64
        np.testing.assert_array_equal(estimate, method.estimate(single.astype(np.float64)))


def test_masking_works_on_a_steep_sky():
    # the mask is found on the image with the first plane removed: on the raw image a
    # steep gradient would swamp the detection threshold and leave the wings unmasked
    rng = np.random.default_rng(12)
    truth = _sky(0.5, 0.6, -0.4)
    neighbour = _sersic_wings(40.0, 12.0, 30.0, 6.0)
    image = truth + _galaxy(3000.0, 9.0) + neighbour + rng.normal(0, 0.07, (SIZE, SIZE))
    centre = slice(SIZE // 2 - 10, SIZE // 2 + 10)
    masked = BorderBackground(mask_sources=True).estimate(image[None])[0]
    clipped = BorderBackground().estimate(image[None])[0]
    masked_bias = np.mean(masked[centre, centre] - truth[centre, centre])
    clipped_bias = np.mean(clipped[centre, centre] - truth[centre, centre])
    assert abs(masked_bias) < 0.5 * clipped_bias


def test_fit_plane_edge_cases():
    rng = np.random.default_rng(13)
    design = np.column_stack([np.ones(50), rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50)])
    exact = design @ np.array([0.3, -1.0, 2.0])
    # a noiseless plane (zero residual scale) is returned exactly, not dropped
    np.testing.assert_allclose(fit_plane(design, exact), [0.3, -1.0, 2.0], atol=1e-12)
    # three finite points still determine the plane
    few = np.full(50, np.nan)
    few[:3] = exact[:3]
    np.testing.assert_allclose(fit_plane(design, few), [0.3, -1.0, 2.0], atol=1e-9)
    # fewer than three: no fit, a zero plane (nothing is removed)
    few[2] = np.nan
    np.testing.assert_array_equal(fit_plane(design, few), np.zeros(3))


def test_fit_plane_clips_a_one_sided_crowd_of_outliers():
    # 30 % of the points 50 sigma high (a frame half covered by a bright neighbour): the
    # least-squares plane is pulled up by ~15, the residuals' median sits well below zero,
    # and only scales and cuts taken about that median find the true plane again
    rng = np.random.default_rng(21)
    design = np.column_stack([np.ones(1000), rng.uniform(-1, 1, 1000), rng.uniform(-1, 1, 1000)])
    values = design @ np.array([2.0, 0.5, -1.0]) + rng.normal(0, 1.0, 1000)
    values[:300] += 50.0
    assert np.linalg.lstsq(design, values, rcond=None)[0][0] > 15.0
    np.testing.assert_allclose(fit_plane(design, values), [2.0, 0.5, -1.0], atol=0.2)


def test_source_mask_measures_the_noise_about_the_frames_own_level():
    # a residual left 10 ADU high (sd 1): the detection threshold is the frame's median
    # plus DETECT robust sigmas of the smoothed noise, not of the offset itself
    rng = np.random.default_rng(22)
    residual = 10.0 + rng.normal(0, 1.0, (SIZE, SIZE))
    residual[2:8, 30:40] += 3.0  # a faint source on the frame: 3 sd a pixel, 60 pixels
    frame = np.flatnonzero(_frame())
    mask = background.source_mask(residual, frame)
    assert mask[4, 35] and mask[2:8, 30:40].all()
    assert mask.mean() < 0.1  # the noise itself is not a source


def test_source_mask_keeps_a_detection_of_exactly_the_least_area(monkeypatch):
    # smoothing off (a kernel narrower than a pixel is the identity), a 4 x 5 block far
    # above the noise is a detection of MIN_AREA = 20 pixels: masked, and grown
    monkeypatch.setattr(background, "SMOOTH", 1e-3)
    rng = np.random.default_rng(23)
    residual = rng.normal(0, 1.0, (SIZE, SIZE))
    residual[1:5, 40:45] = 100.0
    mask = background.source_mask(residual, np.flatnonzero(_frame()))
    assert mask[1:5, 40:45].all() and mask[4 + background.GROW, 42]
    residual[1, 40] = 0.0  # 19 pixels: noise
    assert not background.source_mask(residual, np.flatnonzero(_frame()))[2:5, 41:44].any()


def _frame(width: int = 8) -> np.ndarray:
    """The border frame's mask, by hand: the pixels within ``width`` of an edge."""
    inner = np.zeros((SIZE, SIZE), dtype=bool)
    inner[width:-width, width:-width] = True
    return ~inner


def test_border_noise_recovers_a_known_sigma_under_a_residual_sky():
    """White noise of known sd under a galaxy: the estimate's mean over 40 cutouts is
    within 1 % of it (one cutout's scatter is ~2.5 %, its mean's ~0.4 %), each one within
    10 %; a pedestal of 4 sigma, a gradient of 0.7 sigma from centre to edge and a bump
    of 1 sigma (30 px wide) move each by under 2 % (the median picks other pixels)."""
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    sky = _sky(0.3, 0.05, 0.0) + 0.07 * np.exp(-(x**2 + y**2) / (2 * 30.0**2))
    ratios = []
    for seed in range(40):
        noise = np.random.default_rng(seed).normal(0, 0.07, (SIZE, SIZE))
        flat = background.border_noise((_galaxy() + noise)[None])[0]
        assert background.border_noise((_galaxy() + noise + sky)[None])[0] == pytest.approx(
            flat, rel=0.02
        )
        ratios.append(flat / 0.07)
    assert abs(np.mean(ratios) - 1) < 0.01 and np.all(np.abs(np.array(ratios) - 1) < 0.1)


def test_border_noise_is_not_raised_by_a_large_galaxys_wings():
    """A bright galaxy large enough to reach the border (0.11 ADU there, 1.6 sigma): the
    estimate comes out within 6 % of the noise on average over 10 cutouts (10 % each),
    where the frame's plain MAD (the must-fail case) comes out 15 % or more high."""
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    wings = np.exp(-1.678 * np.hypot(x, y) / 20.0)
    wings *= 5000.0 / wings.sum()
    ours, plain = [], []
    for seed in range(10):
        image = wings + np.random.default_rng(seed).normal(0, 0.07, (SIZE, SIZE))
        ours.append(background.border_noise(image[None])[0] / 0.07)
        edge = image[_frame()]
        plain.append(1.4826 * np.median(np.abs(edge - np.median(edge))) / 0.07)
    assert np.all(np.abs(np.array(ours) - 1) < 0.1) and abs(np.mean(ours) - 1) < 0.06
    assert np.mean(plain) > 1.15


def test_border_noise_ignores_a_neighbour_and_keeps_correlated_noise_per_pixel():
    """A bright neighbour across two border blocks moves the estimate by under 3 %; noise
    smoothed to a neighbour correlation of ~0.4 is measured at its own per-pixel sd (the
    sd of the whole noise field, an independent oracle) within 5 %; bands apart."""
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 0.05, (SIZE, SIZE))
    y, x = np.mgrid[:SIZE, :SIZE]
    neighbour = 20.0 * np.exp(-((x - 48) ** 2 + (y - 3) ** 2) / (2 * 2.5**2))
    alone = background.border_noise(noise[None])[0]
    assert background.border_noise((noise + neighbour)[None])[0] == pytest.approx(alone, rel=0.03)
    white = rng.normal(0, 1.0, (SIZE + 2, SIZE + 2))
    smooth = white[1:-1, 1:-1] + 0.5 * (
        white[:-2, 1:-1] + white[2:, 1:-1] + white[1:-1, :-2] + white[1:-1, 2:]
    )
    correlation = np.corrcoef(smooth[:, :-1].ravel(), smooth[:, 1:].ravel())[0, 1]
    assert 0.3 < correlation < 0.5
    measured = background.border_noise(smooth[None])[0]
    assert measured == pytest.approx(smooth.std(), rel=0.05)
    both = background.border_noise(np.stack([noise, 3 * noise]))
    assert both.shape == (2,) and both[1] == pytest.approx(3 * both[0], rel=1e-9)
    single = noise.astype(np.float32)  # computed in float64 whatever the image's type
    assert background.border_noise(single[None])[0] == pytest.approx(
        background.border_noise(single.astype(np.float64)[None])[0], rel=1e-13
    )


@pytest.mark.parametrize("size", [96, 100, 32])
def test_frame_blocks_are_the_frames_whole_squares(size):
    """Against a hand-built oracle: with each pixel's value its own flat index, every
    block is one 8 x 8 square of the frame (rows and columns consecutive), no pixel comes
    twice, and together they are the frame's whole squares: along the top and bottom the
    first 8 x (size // 8) columns, down the sides the rows between them in whole steps."""
    width = 8
    pixels = np.arange(size * size, dtype=np.float64).reshape(size, size)
    blocks = background._frame_blocks(pixels, width)
    rows, cols = np.divmod(blocks.astype(int), size)
    for r, c in zip(rows, cols, strict=True):
        assert sorted(set(r)) == list(range(r.min(), r.min() + width))
        assert sorted(set(c)) == list(range(c.min(), c.min() + width))
    expected = set()
    across, down = (size // width) * width, width + ((size - 2 * width) // width) * width
    for y in range(size):
        for x in range(size):
            top_or_bottom = (y < width or y >= size - width) and x < across
            side = width <= y < down and (x < width or x >= size - width)
            if top_or_bottom or side:
                expected.add(y * size + x)
    flat = blocks.astype(int).ravel()
    assert len(flat) == len(set(flat)) and set(flat) == expected


def test_border_noise_drops_an_artefacts_blocks_whatever_the_blocks_levels():
    """Half the frame 5 sigma above the sky, half 5 below (a step on a block edge), and a
    striped artefact (columns of +-4 sigma) across three top blocks: each block's spread
    about its own median singles the artefact's blocks out, so the estimate moves by under
    2 %; spreads about one median for all would see every block as 5 sigma wide and keep
    the artefact (the estimate then grows by ~10 %)."""
    rng = np.random.default_rng(11)
    noise = rng.normal(0, 0.05, (SIZE, SIZE))
    step = np.where(np.arange(SIZE) < SIZE // 2, 0.25, -0.25)[None, :] * np.ones((SIZE, 1))
    y, x = np.mgrid[:SIZE, :SIZE]
    stripes = np.where((y < 8) & (x >= 16) & (x < 40), np.where(x % 2, 0.2, -0.2), 0.0)
    alone = background.border_noise((noise + step)[None])[0]
    assert alone == pytest.approx(0.05, rel=0.05)
    striped = background.border_noise((noise + step + stripes)[None])[0]
    assert striped == pytest.approx(alone, rel=0.02)
