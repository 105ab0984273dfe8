"""The PSF image's features: encircled energies and |e| against analytic oracles, their
invariances, and where a galaxy's PSF image comes from (catalog column, cutout HDU,
pack), absent or unusable.

The PSFs are drawn here with numpy, pixel-integrated (each pixel the mean of 11 x 11
samples of the analytic profile), as GalSim and surveys' PSF models give them.  The
ellipticity is the distortion ``|e| = (1 - q^2) / (1 + q^2)`` of axis ratio ``q``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from gampen.data.catalog import load_catalog
from gampen.data.contract import InputContract
from gampen.data.dataset import CutoutDataset, PackedDataset
from gampen.data.packfile import write_pack
from gampen.data.psf_features import (
    ABSENT,
    EE_RADII,
    PSF_FEATURES,
    PsfImage,
    adaptive_moments,
    centroid,
    disc_transform,
    encircled_energy,
    measure_psf,
    psf_features,
    psf_problem,
)
from gampen.data.scalars import ScalarInputs
from gampen.errors import CatalogError
from gampen.flags import Flag

from .fixtures import galaxy

SCALE = 0.168
SIZE = 32
RADII = np.asarray(EE_RADII)
Profile = Callable[[np.ndarray, np.ndarray], np.ndarray]


def draw(profile: Profile, n: int, scale: float, sub: int = 11) -> np.ndarray:
    """``profile(y, x)`` (arcsec) integrated over the pixels of an ``n`` x ``n`` stamp of
    ``scale`` arcsec centred on its middle pixel (the mean of ``sub`` x ``sub`` samples)."""
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    image = np.zeros((n, n))
    for dy in offsets:
        for dx in offsets:
            image += profile((y + dy) * scale, (x + dx) * scale)
    return image / sub**2


def gaussian(sigma: float, q: float = 1.0, angle: float = 0.0) -> Profile:
    """An elliptical Gaussian of major-axis ``sigma`` (arcsec), axis ratio ``q``."""
    cos, sin = np.cos(angle), np.sin(angle)

    def profile(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        major, minor = cos * x + sin * y, -sin * x + cos * y
        return np.exp(-0.5 * (major**2 / sigma**2 + minor**2 / (q * sigma) ** 2))

    return profile


def moffat(alpha: float, beta: float) -> Profile:
    """A circular Moffat profile of core ``alpha`` (arcsec) and index ``beta``."""
    return lambda y, x: (1 + (x**2 + y**2) / alpha**2) ** -beta


def features(image: np.ndarray, scale: float = SCALE) -> np.ndarray:
    return psf_features(image, scale)


@pytest.mark.parametrize("fwhm", [0.5, 0.7, 0.9])
def test_encircled_energy_of_a_gaussian_within_one_percent(fwhm):
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    values = features(draw(gaussian(sigma), 41, SCALE))
    expected = 1 - np.exp(-(RADII**2) / (2 * sigma**2))
    assert values[0] == 1.0 and values.shape == (PSF_FEATURES,)
    np.testing.assert_allclose(values[1:-1], expected, rtol=0.01)
    assert values[-1] < 0.005  # round


@pytest.mark.parametrize(("fwhm", "beta"), [(0.6, 3.0), (0.8, 4.0)])
def test_encircled_energy_of_a_moffat_within_one_percent(fwhm, beta):
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    values = features(draw(moffat(alpha, beta), 41, SCALE))
    expected = 1 - (1 + RADII**2 / alpha**2) ** (1 - beta)
    np.testing.assert_allclose(values[1:-1], expected, rtol=0.01)


@pytest.mark.parametrize("q", [0.9, 0.75, 0.6])
@pytest.mark.parametrize("angle", [0.0, 0.4, 1.1])
def test_ellipticity_of_an_elliptical_gaussian_within_0_01(q, angle):
    values = features(draw(gaussian(0.3, q, angle), 41, SCALE))
    assert values[-1] == pytest.approx((1 - q**2) / (1 + q**2), abs=0.01)


def test_adaptive_moments_of_a_gaussian_are_its_covariance():
    sigma, q, angle = 0.3, 0.6, 0.4
    image = draw(gaussian(sigma, q, angle), 41, SCALE)
    moments = adaptive_moments(image / image.sum(), centroid(image))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    covariance_xy = rotation @ np.diag([sigma**2, (q * sigma) ** 2]) @ rotation.T
    covariance_yx = covariance_xy[::-1, ::-1] / SCALE**2  # (y, x) order, pixels^2
    np.testing.assert_allclose(moments, covariance_yx, rtol=0.005)
    assert centroid(image) == pytest.approx((20.0, 20.0), abs=1e-9)


def test_features_are_unchanged_by_flips_and_quarter_turns():
    """As the training augmentation turns the image but never the scalar inputs."""
    rng = np.random.default_rng(3)
    image = draw(gaussian(0.3, 0.7, 0.5), 41, SCALE) + draw(moffat(0.5, 2.5), 41, SCALE)
    image = image[:, 2:] + rng.normal(0, 1e-4, (41, 39))  # not square, not symmetric
    reference = features(image)
    for k in range(4):
        for flip in (False, True):
            moved = np.rot90(image, k)
            moved = np.flip(moved, 0) if flip else moved
            np.testing.assert_allclose(features(moved), reference, atol=2e-6)


def test_features_do_not_depend_on_the_pixel_scale_of_the_image():
    """The same PSF at half the pixel scale (a finer PSF model) gives the same numbers."""
    for profile in (gaussian(0.25, 0.8, 0.3), moffat(0.45, 3.0)):
        coarse = features(draw(profile, 41, SCALE), SCALE)
        fine = features(draw(profile, 81, SCALE / 2), SCALE / 2)
        np.testing.assert_allclose(fine[1:-1], coarse[1:-1], rtol=0.01)
        assert fine[-1] == pytest.approx(coarse[-1], abs=0.002)


def test_features_do_not_depend_on_normalisation_or_centring():
    image = draw(moffat(0.45, 3.0), 41, SCALE)
    shifted = np.zeros((45, 45))
    shifted[1:42, 3:44] = 7.5 * image  # off-centre, another flux
    np.testing.assert_allclose(features(shifted), features(image), atol=1e-5)


def test_features_are_float32_computed_in_float64_whatever_the_image_dtype():
    image = draw(moffat(0.45, 3.0), 41, SCALE).astype(np.float16)  # a float16 sum: ~1e-3 off
    values = features(image)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, features(image.astype(np.float64)))


def test_encircled_energy_at_radii_of_any_dtype_and_at_none():
    sigma = 0.3 / SCALE  # pixels
    image = draw(gaussian(0.3), 41, SCALE)
    psf = image / image.sum()
    radii = np.array([1.5, 3.0, 6.0])
    half = encircled_energy(psf, centroid(psf), radii.astype(np.float16))  # exact in float16
    np.testing.assert_allclose(half, 1 - np.exp(-(radii**2) / (2 * sigma**2)), rtol=0.005)
    np.testing.assert_allclose(half, encircled_energy(psf, centroid(psf), radii), rtol=1e-12)
    assert encircled_energy(psf, centroid(psf), []).shape == (0,)


def test_a_disc_reaching_past_the_stamp_takes_no_light_from_its_other_side():
    """The spectrum is zero-padded so that the periodic copy of the light at the stamp's
    left edge stays out of a disc about a point at its right edge.  Oracle: the two
    Gaussians (sigma 1.2 px, 8 px either side of the middle of a 25 px stamp) summed over
    the disc on a grid of 0.02 px."""
    sigma, radius, centre = 1.2, 10.0, (12.0, 24.0)
    blobs = ((12.0, 4.0), (12.0, 20.0))

    def profile(y, x):  # y, x: offsets from the middle pixel (12, 12)
        return sum(
            np.exp(-((y + 12 - by) ** 2 + (x + 12 - bx) ** 2) / (2 * sigma**2)) for by, bx in blobs
        )

    image = draw(profile, 25, 1.0)
    step = 0.02
    grid = np.arange(-radius, radius + step / 2, step)
    dy, dx = np.meshgrid(grid, grid, indexing="ij")
    inside = dy**2 + dx**2 <= radius**2
    light = profile(centre[0] - 12 + dy[inside], centre[1] - 12 + dx[inside]).sum() * step**2
    expected = light / (len(blobs) * 2 * np.pi * sigma**2)
    energy = encircled_energy(image / image.sum(), centre, [radius])
    assert energy[0] == pytest.approx(expected, abs=5e-4)  # with the wrapped light: +2.6e-3


def test_disc_transform_is_the_fourier_transform_of_a_disc():
    """Against ``integral over the disc of cos(2 pi k x)``, by midpoints over
    ``x = R sin(t)``; in float64 whatever the dtype of ``k``."""
    radius = 2.5
    k = np.array([0.0, 0.05, 0.13, 0.31, 0.5, 0.71], dtype=np.float32)
    t = (np.arange(4000) + 0.5) / 4000 * np.pi - np.pi / 2
    expected = [
        2 * radius**2 * np.pi * np.mean(np.cos(t) ** 2 * np.cos(2 * np.pi * f * radius * np.sin(t)))
        for f in k.astype(np.float64)
    ]
    np.testing.assert_allclose(disc_transform(k, radius), expected, rtol=1e-10, atol=1e-12)
    assert disc_transform(np.zeros(1), radius)[0] == pytest.approx(np.pi * radius**2)


def test_adaptive_moments_of_a_gaussian_narrower_than_a_pixel():
    """Moments below 1 px^2 (a PSF sampled near its Nyquist rate) are moments too."""
    image = draw(gaussian(1.0, 0.9), 15, 1.0)  # sigma_x 1 px, sigma_y 0.9 px
    moments = adaptive_moments(image / image.sum(), centroid(image))
    np.testing.assert_allclose(moments, np.diag([0.81, 1.0]), rtol=0.01, atol=1e-3)


def test_adaptive_moments_of_a_psf_filling_its_stamp_do_not_wrap():
    """The weight reaches past the stamp's edges; zero-padded far enough, none of the
    light on the opposite edge comes back into it, so more padding changes nothing."""
    image = draw(gaussian(4.0, 0.7, 0.3), 15, 1.0)  # sigma 4 px in a 15 px stamp
    psf = image / image.sum()
    padded = np.pad(psf, 20)
    np.testing.assert_allclose(
        adaptive_moments(psf, centroid(psf)), adaptive_moments(padded, centroid(padded)), rtol=1e-6
    )


def _donut() -> np.ndarray:
    image = np.zeros((7, 7))
    image[3, 3] = -1.0
    image[[1, 3, 3, 5], [3, 1, 5, 3]] = 1.0
    return image


def _moat() -> np.ndarray:
    image = np.zeros((11, 11))
    image[5, 5] = 1.0
    image[[4, 5, 5, 6], [5, 4, 6, 5]] = -0.3
    image[[1, 5, 5, 9], [5, 1, 9, 5]] = 1.0
    return image


@pytest.mark.parametrize(
    "image",
    [_donut(), _moat()],
    ids=["no flux under the weight", "negative moments"],
)
def test_adaptive_moments_keep_the_start_when_the_first_update_is_not_positive(image):
    """The iteration starts from the round Gaussian of the PSF's peak (unit flux: variance
    1 / (2 pi peak)) and stops at once if the first update is not positive-definite: a
    negative centre leaves no flux under the start's weight, and a negative moat about the
    core makes the weighted moments negative."""
    psf = image / image.sum()
    start = 1 / (2 * np.pi * psf.max())
    assert 0.25 < start < 1.25
    np.testing.assert_allclose(adaptive_moments(psf, centroid(psf)), start * np.eye(2), rtol=1e-12)
    assert features(image)[-1] == 0.0


@pytest.mark.parametrize(
    ("pixels", "problem"),
    [
        (np.ones((3, 5, 5)), "is 3-D"),
        (np.full((5, 5), np.nan), "25 non-finite"),
        (-np.ones((5, 5)), "sums to -25"),
        (np.zeros((5, 5)), "sums to 0"),
    ],
)
def test_unusable_psf_images_say_why(pixels, problem):
    assert problem in psf_problem(pixels)
    values, reason = measure_psf(PsfImage(pixels, 0.2, "psf.fits"), None)
    assert reason.startswith("PSF image psf.fits: ") and problem in reason
    assert np.array_equal(values, ABSENT)


def test_absent_is_zeros_and_the_model_scale_stands_in():
    assert measure_psf(None, SCALE) == (ABSENT, "") and not ABSENT.any()
    image = draw(gaussian(0.3), 41, SCALE)
    stated, _ = measure_psf(PsfImage(image, SCALE, "a"), 0.5)
    assumed, _ = measure_psf(PsfImage(image, None, "b"), SCALE)
    np.testing.assert_array_equal(stated, assumed)
    assert "states no pixel scale" in measure_psf(PsfImage(image, None, "c"), None)[1]


def test_psf_problem_of_empty_single_pixel_faint_and_cancelling_images():
    assert psf_problem(np.zeros((0, 5))) == "is empty"
    assert psf_problem(np.ones((1, 1))) == ""
    assert psf_problem(np.full((4, 4), 1 / 32)) == ""  # any positive flux: 0.5
    # summed in float64: 1 (float32 loses the 1 to the 1e8 and sums to 0)
    assert psf_problem(np.array([[1e8, 1.0, -1e8]], dtype=np.float32)) == ""
    reason = measure_psf(PsfImage(np.ones((3, 3)), None, "psf.fits"), None)[1]
    assert reason == "PSF image psf.fits: states no pixel scale, and the model's is unknown"


# --- where a galaxy's PSF image comes from -------------------------------------------

PSF_INPUTS = ScalarInputs(psf_image=True)


def psf_image(fwhm: float, q: float = 1.0) -> np.ndarray:
    return draw(gaussian(fwhm / 2.3548, q, 0.3), 41, 0.2).astype(np.float32)


def write_cutout(path, seed: int, psf: np.ndarray | None = None, **psf_header) -> None:
    """A galaxy cutout at 0.2 arcsec/px, with a PSF HDU when ``psf`` is given."""
    hdus = [fits.PrimaryHDU(galaxy(SIZE, seed=seed), header=fits.Header({"PIXSCALE": 0.2}))]
    if psf is not None:
        hdus.append(fits.ImageHDU(psf, header=fits.Header(psf_header), name="PSF"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def dataset(table: Table, folder, **kwargs) -> CutoutDataset:
    loaded = load_catalog(table, image_dir=folder)
    return CutoutDataset(loaded, input_size=SIZE, scalars=PSF_INPUTS, **kwargs)


def test_a_psf_hdu_and_a_psf_image_column_give_the_same_features(tmp_path):
    psfs = [psf_image(0.6), psf_image(0.9, 0.8)]
    for i, psf in enumerate(psfs):
        write_cutout(tmp_path / "hdu" / f"g{i}.fits", i, psf, PIXSCALE=0.2)
        write_cutout(tmp_path / "col" / f"g{i}.fits", i)
        fits.PrimaryHDU(psf, header=fits.Header({"PIXSCALE": 0.2})).writeto(
            tmp_path / "col" / f"psf{i}.fits"
        )
    names = {"file_name": ["g0.fits", "g1.fits"]}
    from_hdu = dataset(Table(names), tmp_path / "hdu")
    from_column = dataset(
        Table({**names, "psf_image": ["psf0.fits", "psf1.fits"]}), tmp_path / "col"
    )
    for i, psf in enumerate(psfs):
        a, b = from_hdu[i], from_column[i]
        np.testing.assert_array_equal(a["scalars"].numpy(), b["scalars"].numpy())
        np.testing.assert_allclose(a["scalars"].numpy(), psf_features(psf, 0.2), atol=1e-6)
        assert a["flags"] == b["flags"] == 0
        assert (a["sources"]["psf_image"], b["sources"]["psf_image"]) == (
            "PSF HDU",
            "column psf_image",
        )
    assert not np.allclose(from_hdu[0]["scalars"], from_hdu[1]["scalars"])


def test_the_column_wins_over_the_hdu_and_an_empty_cell_falls_back(tmp_path):
    for i in range(2):
        write_cutout(tmp_path / f"g{i}.fits", i, psf_image(0.6), PIXSCALE=0.2)
    (tmp_path / "psfs").mkdir()
    fits.PrimaryHDU(psf_image(1.0)).writeto(tmp_path / "psfs" / "wide.fits")  # no PIXSCALE
    table = Table({"file_name": ["g0.fits", "g1.fits"], "psf_image": ["psfs/wide.fits", ""]})
    contract = InputContract(pixel_scale=0.2, zero_point=27.0, input_size=SIZE, psf_image=True)
    data = dataset(table, tmp_path, contract=contract)  # the model's 0.2 arcsec stands in
    np.testing.assert_allclose(data[0]["scalars"], psf_features(psf_image(1.0), 0.2), atol=1e-6)
    np.testing.assert_allclose(data[1]["scalars"], psf_features(psf_image(0.6), 0.2), atol=1e-6)


def test_a_masked_cell_or_no_psf_at_all_is_absent_and_not_flagged(tmp_path):
    write_cutout(tmp_path / "g0.fits", 0)
    write_cutout(tmp_path / "g1.fits", 1)
    table = Table(
        {
            "file_name": ["g0.fits", "g1.fits"],
            "psf_image": np.ma.masked_array(["x.fits", "y.fits"], mask=[True, True]),
        }
    )
    for data in (dataset(table, tmp_path), dataset(table[["file_name"]], tmp_path)):
        for i in range(2):
            item = data[i]
            assert item["flags"] == 0 and item["sources"]["psf_image"] == "none"
            np.testing.assert_array_equal(item["scalars"].numpy(), ABSENT)


def test_a_model_without_psf_images_ignores_them(tmp_path):
    write_cutout(tmp_path / "g0.fits", 0, np.full((5, 5), np.nan))  # unusable, and unused
    table = Table({"file_name": ["g0.fits"], "psf_image": ["nowhere.fits"]})
    loaded = load_catalog(table, image_dir=tmp_path)
    item = CutoutDataset(loaded, input_size=SIZE, scalars=ScalarInputs(), cache=True)[0]
    assert (
        item["flags"] == 0 and item["scalars"].numel() == 0 and "psf_image" not in item["sources"]
    )


@pytest.mark.parametrize("with_contract", [False, True])
def test_an_unusable_or_missing_psf_image_is_bad_condition_naming_the_file(
    tmp_path, caplog, with_contract
):
    write_cutout(tmp_path / "g0.fits", 0, np.full((41, 41), np.nan, np.float32), PIXSCALE=0.2)
    write_cutout(tmp_path / "g1.fits", 1, np.ones((2, 9, 9), np.float32), PIXSCALE=0.2)
    write_cutout(tmp_path / "g2.fits", 2)
    table = Table(
        {"file_name": ["g0.fits", "g1.fits", "g2.fits"], "psf_image": ["", "", "gone.fits"]}
    )
    contract = InputContract(pixel_scale=0.2, zero_point=27.0, input_size=SIZE, psf_image=True)
    data = dataset(table, tmp_path, contract=contract if with_contract else None)
    with caplog.at_level(logging.WARNING):
        items = [data[i] for i in range(3)]
    for item in items:
        assert item["flags"] & Flag.BAD_CONDITION
        np.testing.assert_array_equal(item["scalars"].numpy(), ABSENT)
    text = caplog.text
    assert f"{tmp_path / 'g0.fits'}[PSF]: holds 1681 non-finite value(s)" in text
    assert f"{tmp_path / 'g1.fits'}[PSF]: is 3-D" in text
    assert f"PSF image {tmp_path / 'gone.fits'}: file not found" in text


def test_a_pack_keeps_the_psf_images_and_an_old_pack_is_refused(tmp_path):
    write_cutout(tmp_path / "g0.fits", 0, psf_image(0.7, 0.9), PIXSCALE=0.2)
    write_cutout(tmp_path / "g1.fits", 1, np.full((9, 9), np.nan, np.float32))
    write_cutout(tmp_path / "g2.fits", 2)
    write_cutout(tmp_path / "g3.fits", 3)
    fits.PrimaryHDU(psf_image(0.5)).writeto(tmp_path / "p.fits")  # no scale: the model's
    table = Table(
        {
            "object_id": [1, 2, 3, 4],
            "file_name": [f"g{i}.fits" for i in range(4)],
            "psf_image": ["", "", "", "p.fits"],
            "flux": [1.0, 2.0, 3.0, 4.0],
        }
    )
    table.write(tmp_path / "cat.csv")
    loaded = load_catalog(tmp_path / "cat.csv", keep_columns="all")
    write_pack(loaded, tmp_path / "p.h5", input_size=SIZE, progress=False)
    shutil.copy(tmp_path / "p.h5", tmp_path / "old.h5")
    with h5py.File(tmp_path / "old.h5", "a") as h5:
        del h5["psf"]  # as a pack written before PSF images were read
    rows = load_catalog(tmp_path / "p.h5", images=False)
    packed = PackedDataset(tmp_path / "p.h5", rows, scalars=PSF_INPUTS)
    direct = CutoutDataset(loaded, input_size=SIZE, scalars=PSF_INPUTS)
    packed.psf_pixel_scale = direct.psf_pixel_scale = 0.2
    for i in range(4):
        a, b = direct[i], packed[i]
        np.testing.assert_array_equal(a["scalars"].numpy(), b["scalars"].numpy())
        assert a["flags"] == b["flags"]
    assert packed[1]["flags"] & Flag.BAD_CONDITION and not packed[2]["flags"]
    assert packed[0]["scalars"][0] == 1 and packed[2]["scalars"].abs().sum() == 0
    PackedDataset(tmp_path / "old.h5", rows)  # a model without them does not care
    with pytest.raises(CatalogError, match="this pack holds no PSF images"):
        PackedDataset(tmp_path / "old.h5", rows, scalars=PSF_INPUTS)
