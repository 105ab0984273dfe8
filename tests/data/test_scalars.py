"""Scalar inputs: aperture photometry against a pixel-by-pixel oracle, conditions and flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.table import Table

from gampen.data.catalog import load_catalog
from gampen.data.contract import InputContract
from gampen.data.dataset import CutoutDataset
from gampen.data.psf_features import PSF_FEATURES
from gampen.data.scalars import (
    APERTURE_EDGES,
    ScalarInputs,
    annulus_fluxes,
    aperture_photometry,
    crowding_index,
    largest_aperture_flux,
)
from gampen.errors import CatalogError, ConfigError
from gampen.flags import FATAL, Flag

from .fixtures import galaxy, write_fits

SIZE = 32
N_ANNULI = len(APERTURE_EDGES) - 1


def _enclosed_oracle(plane: np.ndarray) -> np.ndarray:
    """Flux inside each aperture edge, pixel by pixel: sum of pixels with r < edge."""
    size = plane.shape[0]
    centre = (size - 1) / 2
    out = np.zeros(N_ANNULI)
    for k, edge in enumerate(APERTURE_EDGES[1:]):
        radius = edge * size / 2
        for y in range(size):
            for x in range(size):
                if (y - centre) ** 2 + (x - centre) ** 2 < radius**2:
                    out[k] += plane[y, x]
    return out


def test_curve_of_growth_from_sums_matches_the_pixel_oracle_per_band():
    rng = np.random.default_rng(3)
    image = rng.normal(2.0, 1.0, (2, SIZE, SIZE)).astype(np.float32)
    values = aperture_photometry(annulus_fluxes(image), (1.0, 4.0))
    assert values.shape == (4 * N_ANNULI,) and values.dtype == np.float32
    for band, softening in enumerate((1.0, 4.0)):
        expected = np.arcsinh(_enclosed_oracle(image[band].astype(np.float64)) / softening)
        got = values[2 * band * N_ANNULI : (2 * band + 1) * N_ANNULI]
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_median_curve_ignores_a_neighbour_the_sum_curve_counts():
    plane = np.full((SIZE, SIZE), 3.0, np.float32)
    plane[2:6, 14:18] = 500.0  # a bright neighbour near the edge: few pixels of its annuli
    values = aperture_photometry(annulus_fluxes(plane[None]), (1.0,))
    sums, medians = values[:N_ANNULI], values[N_ANNULI:]
    flat = _enclosed_oracle(np.full((SIZE, SIZE), 3.0))
    np.testing.assert_allclose(medians, np.arcsinh(flat), rtol=1e-6)
    np.testing.assert_allclose(sums, np.arcsinh(_enclosed_oracle(plane.astype(float))), rtol=1e-6)
    assert sums[-1] > medians[-1] + 1.0  # the neighbour lies in the outer annuli
    np.testing.assert_allclose(sums[:5], medians[:5], rtol=1e-6)  # the core is clean


def test_photometry_is_unchanged_by_the_dihedral_group():
    image = galaxy(SIZE, seed=4)[None]
    values = aperture_photometry(annulus_fluxes(image), (1.0,))
    for turned in (np.rot90(image, 1, (1, 2)), np.flip(image, 2), np.rot90(image, 3, (1, 2))):
        np.testing.assert_allclose(
            aperture_photometry(annulus_fluxes(turned.copy()), (1.0,)), values, rtol=1e-6
        )


def test_count_and_round_trip():
    inputs = ScalarInputs(photometry=True, conditions=("psf_fwhm", "sky"))
    assert inputs.count(1) == 2 * N_ANNULI + 2 and inputs.count(3) == 6 * N_ANNULI + 2
    assert ScalarInputs(conditions=("psf_fwhm",)).count(2) == 1
    assert ScalarInputs.from_dict(inputs.to_dict()) == inputs
    assert ScalarInputs.from_dict(None) == ScalarInputs() and ScalarInputs().count(1) == 0
    with pytest.raises(ConfigError, match=r"unknown scalar-input fields.*\['apertures'\]"):
        ScalarInputs.from_dict({"photometry": True, "conditions": [], "apertures": 3})
    with pytest.raises(ConfigError, match=r"distinct.*\['psf_fwhm', 'psf_fwhm'\]"):
        ScalarInputs(conditions=("psf_fwhm", "psf_fwhm"))
    listed = ScalarInputs(conditions=["psf_fwhm"])  # as read from YAML or JSON
    assert listed.conditions == ("psf_fwhm",) and listed == ScalarInputs(conditions=("psf_fwhm",))
    assert hash(listed) == hash(ScalarInputs(conditions=("psf_fwhm",)))


def test_psf_features_come_last_and_only_psf_models_say_so():
    """Bundles of models without PSF images keep their exact JSON."""
    plain = ScalarInputs(photometry=True, conditions=("psf_fwhm",))
    assert plain.to_dict() == {"photometry": True, "conditions": ["psf_fwhm"]}
    with_psf = ScalarInputs(photometry=True, conditions=("psf_fwhm",), psf_image=True)
    assert with_psf.to_dict() == {**plain.to_dict(), "psf_image": True}
    assert ScalarInputs.from_dict(with_psf.to_dict()) == with_psf
    assert with_psf.count(2) == plain.count(2) + PSF_FEATURES == 4 * N_ANNULI + 1 + PSF_FEATURES
    assert with_psf.psf_slice(2) == slice(4 * N_ANNULI + 1, 4 * N_ANNULI + 1 + PSF_FEATURES)
    assert plain.psf_slice(2) == slice(plain.count(2), plain.count(2))
    fluxes, psf = np.ones((2, 2, N_ANNULI)), np.arange(PSF_FEATURES, dtype=np.float32)
    values = with_psf.values(fluxes, [1.0, 1.0], np.array([0.7]), psf)
    np.testing.assert_array_equal(values[with_psf.psf_slice(2)], psf)
    assert values[4 * N_ANNULI] == np.float32(0.7)
    absent = with_psf.values(fluxes, [1.0, 1.0], np.array([0.7]))
    assert not absent[with_psf.psf_slice(2)].any()
    np.testing.assert_array_equal(
        plain.values(fluxes, [1.0, 1.0], np.array([0.7]), psf), absent[:-PSF_FEATURES]
    )


@pytest.fixture
def catalog(tmp_path) -> Table:
    for i in range(3):
        write_fits(tmp_path / f"g{i}.fits", galaxy(SIZE, seed=i))
    return Table(
        {
            "object_id": [10, 11, 12],
            "file_name": [f"g{i}.fits" for i in range(3)],
            "psf_fwhm": np.ma.masked_array([0.6, np.nan, 0.8], mask=[False, False, False]),
        }
    )


def _dataset(table: Table, folder, inputs: ScalarInputs | None = None) -> CutoutDataset:
    """The dataset of ``table`` (files in ``folder``) with the scalar ``inputs``."""
    inputs = inputs or ScalarInputs()
    loaded = load_catalog(table, image_dir=folder, conditions=inputs.conditions)
    return CutoutDataset(loaded, input_size=SIZE, scalars=inputs)


def test_dataset_items_carry_photometry_then_conditions_and_flag_bad_ones(tmp_path, catalog):
    catalog["psf_fwhm"].mask[2] = True  # a masked value, as a FITS null reads
    inputs = ScalarInputs(photometry=True, conditions=("psf_fwhm",))
    data = _dataset(catalog, tmp_path, inputs)
    first = data[0]
    assert first["scalars"].shape == (2 * N_ANNULI + 1,)
    assert first["scalars"].dtype == torch.float32
    np.testing.assert_allclose(
        first["scalars"][:-1].numpy(),
        aperture_photometry(annulus_fluxes(galaxy(SIZE, seed=0)[None]), (1.0,)),
    )
    assert first["scalars"][-1].item() == pytest.approx(0.6) and first["flags"] == 0
    for row in (1, 2):  # NaN, then masked
        item = data[row]
        assert item["flags"] & Flag.BAD_CONDITION and item["flags"] & int(FATAL)
        assert item["scalars"][-1].item() == 0.0


def test_a_condition_neither_in_the_catalog_nor_the_headers_is_a_clear_error(tmp_path, catalog):
    inputs = ScalarInputs(conditions=("psf_fwhm", "seeing"))
    with pytest.raises(CatalogError, match=r"needs the condition\(s\) \['seeing'\].*SEEING"):
        _dataset(catalog, tmp_path, inputs)
    with pytest.raises(CatalogError, match=r"condition column\(s\) \['seeing'\].*columns among"):
        load_catalog(catalog, images=False, conditions=inputs.conditions)  # no headers
    later = ("seeing", "psf_fwhm")  # a header-sourced one first
    values = load_catalog(catalog, image_dir=tmp_path, conditions=later).conditions
    assert np.isnan(values[:, 0]).all() and values[0, 1] == pytest.approx(0.6)
    assert values.dtype == np.float32
    catalog["seeing"] = ["good", "bad", "ugly"]
    with pytest.raises(CatalogError, match=r"'seeing' is not numeric.*<U4"):
        _dataset(catalog, tmp_path, inputs)


def test_image_only_items_have_an_empty_scalar_vector(tmp_path, catalog):
    data = _dataset(catalog, tmp_path)
    assert data[1]["scalars"].shape == (0,) and data[1]["flags"] == 0


def test_conditions_missing_from_the_catalog_come_from_the_cutout_headers(tmp_path):
    for i, fwhm in enumerate((0.55, 0.75, None)):
        header = fits.Header() if fwhm is None else fits.Header({"PSF_FWHM": fwhm})
        write_fits(tmp_path / f"h{i}.fits", galaxy(SIZE, seed=i), header=header)
    table = Table({"object_id": [1, 2, 3], "file_name": [f"h{i}.fits" for i in range(3)]})
    inputs = ScalarInputs(conditions=("psf_fwhm",))
    data = _dataset(table, tmp_path, inputs)
    assert data[0]["scalars"].item() == pytest.approx(0.55)
    assert data[1]["scalars"].item() == pytest.approx(0.75) and data[1]["flags"] == 0
    assert data[2]["flags"] & Flag.BAD_CONDITION  # this one's header lacks the keyword
    table["psf_fwhm"] = [0.9, 0.9, 0.9]  # a catalog column wins over the headers
    data = _dataset(table, tmp_path, inputs)
    assert data[0]["scalars"].item() == pytest.approx(0.9) and data[2]["flags"] == 0


def test_crowding_index_against_a_hand_worked_image():
    """A flat image: sums equal median x count in every annulus, index 0.  One bright pixel
    (a neighbour) adds its flux to the sum but leaves every median alone."""
    size = 32
    flat = np.full((1, size, size), 2.0)
    assert crowding_index(annulus_fluxes(flat), [1.0]) == pytest.approx(0.0, abs=1e-12)
    y, x = np.mgrid[:size, :size]
    inside = np.hypot(y - 15.5, x - 15.5) < size / 2  # the aperture's pixels
    spot = flat.copy()
    spot[0, 12, 25] += 50.0
    assert crowding_index(annulus_fluxes(spot), [1.0]) == pytest.approx(50.0 / (2.0 * inside.sum()))
    for k in range(4):  # rotations and flips leave it unchanged
        assert crowding_index(
            annulus_fluxes(np.rot90(spot, k, axes=(1, 2))), [1.0]
        ) == pytest.approx(crowding_index(annulus_fluxes(spot), [1.0]))
    # Noise-level images: the floor (the softening) keeps the ratio finite.
    empty = np.zeros((1, size, size))
    empty[0, 12, 25] = 3.0
    assert crowding_index(annulus_fluxes(empty), [10.0]) == pytest.approx(3.0 / 10.0)
    two = np.concatenate([spot, flat])  # bands add up
    assert crowding_index(annulus_fluxes(two), [1.0, 1.0]) == pytest.approx(
        50.0 / (4.0 * inside.sum())
    )


def test_largest_aperture_flux_sees_a_faint_core_under_a_negative_total():
    """A faint galaxy whose sky came out 0.01 too low: 20 in the four central pixels and
    one more in a pixel of the second annulus, -0.01 everywhere.  The whole aperture sums
    21 - 0.01 x (pixels within 48 px) < 0; the largest aperture flux is the pixel-mask
    oracle's best radius (the second edge, 2.5 px); the negated galaxy holds none."""
    size = 96
    galaxy = np.zeros((1, size, size))
    galaxy[0, 47:49, 47:49] = 5.0
    galaxy[0, 46, 47] = 1.0  # 1.58 px from the centre
    image = galaxy - 0.01
    y, x = np.mgrid[:size, :size]
    radius = np.hypot(y - 47.5, x - 47.5)
    within = {edge: int((radius < edge).sum()) for edge in (1.5, 2.5, 48.0)}
    assert annulus_fluxes(image)[0, 0].sum() == pytest.approx(21.0 - 0.01 * within[48.0])
    assert 21.0 - 0.01 * within[48.0] < 0  # the whole aperture: not positive
    assert within[1.5] == 4 and 21.0 - 0.01 * within[2.5] > 19.96  # the second edge wins
    best = max(image[0][radius < edge * size / 2].sum() for edge in APERTURE_EDGES[1:])
    assert best == pytest.approx(21.0 - 0.01 * within[2.5])
    assert largest_aperture_flux(annulus_fluxes(image)) == pytest.approx(best)
    contract = InputContract(pixel_scale=0.168, zero_point=27.0, input_size=size)
    assert contract.check_flux(largest_aperture_flux(annulus_fluxes(image))) == (0, "")
    negated = annulus_fluxes(-galaxy - 0.01)  # the same sky error under a negated galaxy
    assert largest_aperture_flux(negated) == pytest.approx(-20.04)
    assert contract.check_flux(largest_aperture_flux(negated))[0] == Flag.BAD_FLUX
    # bands add up before the curve is taken: a second band of twice the negated galaxy
    both = annulus_fluxes(np.concatenate([image, -2.0 * galaxy]))
    assert largest_aperture_flux(both) < 0
