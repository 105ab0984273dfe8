"""Pixels without data: which are taken as missing, how they are filled, and what a cutout
at a survey's edge gives the network.

Oracles: masks drawn by hand, a galaxy GalSim draws symmetric about the cutout's centre
(its missing strip must come back exactly), and the photometry of the same noisy galaxy
without the strip.
"""

from __future__ import annotations

import galsim
import numpy as np
import pytest
import torch
from astropy.table import Table

from gampen.data.background import BorderBackground
from gampen.data.catalog import load_catalog
from gampen.data.cutouts import read_cutout
from gampen.data.dataset import CutoutDataset, PackedDataset
from gampen.data.missing import blank_pixels, filled
from gampen.data.normalize import ArcsinhStretch
from gampen.data.packfile import write_pack
from gampen.data.scalars import annulus_fluxes
from gampen.flags import Flag, is_fatal

from .fixtures import write_fits

SIZE = 48


def test_blocks_of_exact_zeros_are_missing_and_stray_zeros_are_not():
    image = np.random.default_rng(1).normal(0.0, 0.1, (1, SIZE, SIZE))
    image[0, :, :7] = 0.0  # a strip
    image[0, 20:23, 30:33] = 0.0  # a 3x3 block
    image[0, 40:42, 40:42] = 0.0  # a 2x2 block: too small
    image[0, [5, 9, 33], [25, 44, 12]] = 0.0  # stray zeros
    expected = np.zeros_like(image, dtype=bool)
    expected[0, :, :7] = True
    expected[0, 20:23, 30:33] = True
    assert np.array_equal(blank_pixels(image), expected)


def _symmetric_galaxy() -> np.ndarray:
    """A noiseless inclined exponential at the cutout's centre: unchanged by a half turn."""
    profile = galsim.Exponential(half_light_radius=1.2, flux=500.0).shear(
        q=0.5, beta=0.4 * galsim.radians
    )
    return profile.drawImage(nx=SIZE, ny=SIZE, scale=0.2).array[None].astype(np.float64)


def test_a_missing_strip_comes_back_from_the_other_side():
    truth = _symmetric_galaxy()
    lost = np.zeros(truth.shape, dtype=bool)
    lost[0, 10:30, :12] = True
    damaged = np.where(lost, 0.0, truth)
    np.testing.assert_allclose(filled(damaged, lost), truth, rtol=1e-6, atol=1e-9)
    assert filled(damaged, None) is damaged


def test_each_band_is_filled_from_its_own_pixels_and_a_blank_band_is_left():
    """Band 0 has no data at all (left as it is), band 1 a strip whose half-turn image
    is whole but whose mirror images are missing too: the half turn, not a mirror, fills."""
    truth = _symmetric_galaxy()[0]
    image = np.stack([np.zeros_like(truth), truth])
    lost = np.zeros(image.shape, dtype=bool)
    lost[0] = True
    lost[1, 5:15, :8] = lost[1, 5:15, -8:] = True  # a strip and its left-right mirror
    lost[1, 2:6, 10:14] = lost[1, -6:-2, 10:14] = True  # a patch and its up-down mirror
    damaged = np.where(lost, 0.0, image)
    out = filled(damaged, lost)
    assert np.all(out[0] == 0.0)
    np.testing.assert_allclose(out[1], truth, rtol=0, atol=1e-6)  # float32 symmetry
    assert np.all(damaged[1][lost[1]] == 0.0)  # the input is left alone


def test_where_both_sides_are_missing_the_fill_is_the_median_of_the_rest():
    image = np.full((1, SIZE, SIZE), 0.3)
    image[0, 0, 0] = 5.0  # one bright pixel does not move a median
    lost = np.zeros(image.shape, dtype=bool)
    lost[0, 20:28, :5] = lost[0, 20:28, -5:] = True  # a band and its half-turn image
    out = filled(np.where(lost, np.nan, image), lost)
    assert np.all(out[lost] == 0.3)


@pytest.mark.parametrize("value", [np.nan, 0.0])
def test_reading_a_cutout_with_a_strip_without_data(tmp_path, value):
    image = np.random.default_rng(2).normal(0.0, 0.1, (SIZE, SIZE)).astype(np.float32)
    image[:, -9:] = value
    cut = read_cutout(write_fits(tmp_path / "g.fits", image), SIZE)
    assert cut.flags == Flag.NONFINITE
    assert cut.n_bad_pixels == 9 * SIZE
    assert cut.missing is not None and cut.missing[0, :, -9:].all()
    assert np.count_nonzero(cut.missing) == 9 * SIZE
    whole = np.random.default_rng(2).normal(0.0, 0.1, (SIZE, SIZE)).astype(np.float32)
    clean = read_cutout(write_fits(tmp_path / "h.fits", whole), SIZE)
    assert clean.missing is None and clean.flags == 0 and clean.n_bad_pixels == 0


def test_a_zero_core_is_fatal(tmp_path):
    image = np.random.default_rng(3).normal(0.0, 0.1, (SIZE, SIZE)).astype(np.float32)
    image[18:30, 18:30] = 0.0
    cut = read_cutout(write_fits(tmp_path / "g.fits", image), SIZE)
    assert cut.flags & Flag.MASKED_CORE and is_fatal(cut.flags)


def test_photometry_of_a_cutout_at_the_edge_of_a_survey(tmp_path):
    """A symmetric galaxy with noise and a residual sky pedestal, once whole and once with
    a strip zeroed (as some pipelines leave no-data pixels): after the border background,
    the aperture fluxes must agree within the strip's share of the noise, and must not
    agree with the zeros taken as sky (the must-fail case)."""
    rng = np.random.default_rng(4)
    sigma, pedestal = 0.05, 0.025
    whole = (_symmetric_galaxy()[0] + pedestal + rng.normal(0.0, sigma, (SIZE, SIZE))).astype(
        np.float32
    )
    edge = whole.copy()
    edge[:, :14] = 0.0
    write_fits(tmp_path / "whole.fits", whole)
    write_fits(tmp_path / "edge.fits", edge)
    table = Table({"object_id": ["whole", "edge"], "file_name": ["whole.fits", "edge.fits"]})
    data = CutoutDataset(
        load_catalog(table, image_dir=tmp_path),
        input_size=SIZE,
        stretch=ArcsinhStretch(),
        background=BorderBackground(),
    )
    fluxes = [annulus_fluxes(data._without_background(*_parts(data, i)))[0, 0] for i in (0, 1)]
    totals = [np.cumsum(f)[-1] for f in fluxes]
    noise = sigma * np.sqrt(14 * SIZE)  # the strip's pixels, counted twice at most
    assert abs(totals[1] - totals[0]) < 5 * noise
    assert data[1]["flags"] == Flag.NONFINITE and data[0]["flags"] == 0
    as_sky = annulus_fluxes(BorderBackground()(edge[None]))[0, 0].sum()
    assert abs(as_sky - totals[0]) > 5 * noise


def test_a_pack_fills_the_same_pixels_as_the_files(tmp_path):
    image = _symmetric_galaxy()[0] + np.random.default_rng(5).normal(0, 0.05, (SIZE, SIZE))
    image[6:40, -11:] = np.nan
    write_fits(tmp_path / "g.fits", image.astype(np.float32))
    table = Table({"object_id": ["g"], "file_name": ["g.fits"]})
    catalog = load_catalog(table, image_dir=tmp_path, keep_columns="all")
    write_pack(catalog, tmp_path / "p.h5", input_size=SIZE, progress=False)
    options = {"stretch": ArcsinhStretch(), "background": BorderBackground()}
    files = CutoutDataset(catalog, input_size=SIZE, **options)[0]
    pack = load_catalog(tmp_path / "p.h5", images=False)
    packed = PackedDataset(tmp_path / "p.h5", pack, **options)[0]
    assert torch.equal(files["image"], packed["image"])
    assert files["flags"] == packed["flags"] == Flag.NONFINITE


def _parts(data: CutoutDataset, index: int) -> tuple[np.ndarray, int, np.ndarray | None]:
    """What the dataset hands its background step for row ``index``."""
    cutout = data.read(index)
    return cutout.image, cutout.flags, cutout.missing
