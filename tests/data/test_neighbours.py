"""The bright-neighbour check: peak ratios of Gaussian sources with known peaks, and the
flag a bright star raises where a neighbour like the training ones does not."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from gampen.data.catalog import load_catalog
from gampen.data.contract import InputContract
from gampen.data.dataset import CutoutDataset
from gampen.data.neighbours import MAX_PEAK_RATIO, peak_ratio, ratio_above
from gampen.flags import Flag

SIZE, SCALE = 65, 0.2  # odd: the centre is a pixel, as are the sources below


def _gaussian(peak: float, dx_arcsec: float, sigma_pix: float = 2.0) -> np.ndarray:
    """A round Gaussian of the given peak, ``dx_arcsec`` right of the cutout's centre."""
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2.0
    return peak * np.exp(-((x - dx_arcsec / SCALE) ** 2 + y**2) / (2 * sigma_pix**2))


@pytest.mark.parametrize("ratio", [0.5, 3.0, 40.0])
def test_the_ratio_of_two_equal_width_peaks_is_their_peak_ratio(ratio):
    """Smoothing lowers both peaks by the same factor, so the ratio is exact."""
    image = (_gaussian(1.0, 0.0) + _gaussian(ratio, 4.4))[None]
    assert peak_ratio(image, SCALE) == pytest.approx(ratio, rel=1e-3)


def test_light_within_the_training_separation_is_not_a_neighbour():
    image = (_gaussian(1.0, 0.0) + _gaussian(50.0, 1.6))[None]  # 1.6 arcsec: the galaxy's
    assert peak_ratio(image, SCALE) == 0.0
    assert peak_ratio((_gaussian(-1.0, 0.0) + _gaussian(2.0, 5.0))[None], SCALE) == np.inf
    assert peak_ratio((_gaussian(-1.0, 0.0) + _gaussian(0.5, 5.0))[None], SCALE) == np.inf
    assert peak_ratio((_gaussian(-1.0, 0.0) - _gaussian(0.5, 5.0))[None], SCALE) == 0.0
    assert peak_ratio(np.zeros((1, SIZE, SIZE)), SCALE) == 0.0


def test_a_bright_star_is_flagged_and_a_neighbour_like_the_training_ones_is_not():
    contract = InputContract(SCALE, 27.0, SIZE)
    noise = np.random.default_rng(0).normal(0.0, 0.01, (SIZE, SIZE))
    galaxy = _gaussian(1.0, 0.0, sigma_pix=4.0) + noise
    star = galaxy + _gaussian(MAX_PEAK_RATIO * 3, -4.0, sigma_pix=1.5)
    similar = galaxy + _gaussian(2.0, 4.0, sigma_pix=1.5)
    flags, reason = contract.check_neighbours(star[None])
    assert flags == Flag.OUT_OF_DISTRIBUTION and "bright star" in reason
    assert contract.check_neighbours(similar[None]) == (0, "")
    assert contract.check_neighbours(galaxy[None]) == (0, "")


def test_predict_flags_a_galaxy_beside_a_bright_star(tmp_path):
    noise = np.random.default_rng(1).normal(0.0, 0.01, (SIZE, SIZE))
    galaxy = _gaussian(1.0, 0.0, sigma_pix=4.0) + noise
    header = fits.Header({"PIXSCALE": SCALE, "MAGZP": 27.0})
    images = {"alone": galaxy, "star": galaxy + _gaussian(100.0, 5.0, sigma_pix=1.5)}
    for name, image in images.items():
        fits.PrimaryHDU(image.astype(np.float32), header=header).writeto(tmp_path / f"{name}.fits")
    table = Table({"object_id": list(images), "file_name": [f"{n}.fits" for n in images]})
    data = CutoutDataset(
        load_catalog(table, image_dir=tmp_path),
        input_size=SIZE,
        contract=InputContract(SCALE, 27.0, SIZE),
    )
    assert [data[i]["flags"] for i in range(2)] == [0, Flag.OUT_OF_DISTRIBUTION]


def test_ratio_above_a_limit_is_the_peak_ratio_or_none():
    bright = (_gaussian(1.0, 0.0) + _gaussian(40.0, 4.4))[None]
    faint = (_gaussian(1.0, 0.0) + _gaussian(3.0, 4.4))[None]
    assert ratio_above(bright, SCALE, 25.0) == pytest.approx(40.0, rel=1e-3)
    assert ratio_above(faint, SCALE, 25.0) is None
    # wings beyond 2.5 arcsec of a source inside it: bright pixels there, but no peak
    inside = (_gaussian(1.0, 0.0) + _gaussian(5000.0, 2.2, sigma_pix=1.5))[None]
    assert ratio_above(inside, SCALE, 25.0) is None
