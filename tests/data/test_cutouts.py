"""Cutout loading: HDU choice, cubes and per-band files, cropping and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from gampen.data.cutouts import center_crop, read_cutout
from gampen.errors import CutoutError
from gampen.flags import FATAL, Flag, describe, is_fatal, summarise

from .fixtures import galaxy, write_fits


def test_primary_hdu_2d(tmp_path):
    data = galaxy(32)
    cut = read_cutout(write_fits(tmp_path / "g.fits", data), 32)
    assert cut.image.shape == (1, 32, 32) and cut.image.dtype == np.float32
    np.testing.assert_array_equal(cut.image[0], data)
    assert cut.flags == 0 and cut.n_bad_pixels == 0


def test_big_endian_data_is_native(tmp_path):
    data = galaxy(32).astype(">f8")
    cut = read_cutout(write_fits(tmp_path / "g.fits", data), 32)
    assert cut.image.dtype == np.dtype("float32") and cut.image.dtype.isnative
    np.testing.assert_allclose(cut.image[0], data.astype(np.float32))


def test_first_image_extension_and_named_hdu(tmp_path):
    sci, var = galaxy(32, seed=1), galaxy(32, seed=2)
    hdul = fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(var, name="VAR")]
    )
    path = tmp_path / "mef.fits"
    hdul.writeto(path)
    np.testing.assert_array_equal(read_cutout(path, 32).image[0], sci)
    np.testing.assert_array_equal(read_cutout(path, 32, hdu="VAR").image[0], var)
    np.testing.assert_array_equal(read_cutout(path, 32, hdu="2").image[0], var)  # CLI index
    with pytest.raises(CutoutError, match=r"mef\.fits: has no HDU 'WHT'.*SCI"):
        read_cutout(path, 32, hdu="WHT")


def test_cube_and_per_band_files(tmp_path):
    cube = galaxy(32, bands=3)
    cut = read_cutout(write_fits(tmp_path / "cube.fits", cube), 32, n_bands=3)
    np.testing.assert_array_equal(cut.image, cube)
    files = [write_fits(tmp_path / f"b{i}.fits", cube[i]) for i in range(3)]
    np.testing.assert_array_equal(read_cutout(files, 32, n_bands=3).image, cube)
    with pytest.raises(CutoutError, match=r"has 3 band.*expects 1") as info:
        read_cutout(tmp_path / "cube.fits", 32, n_bands=1)
    assert info.value.flag == Flag.BAD_SHAPE


def test_per_band_files_must_match(tmp_path):
    a = write_fits(tmp_path / "g.fits", galaxy(32))
    b = write_fits(tmp_path / "r.fits", galaxy(40))
    with pytest.raises(CutoutError, match=r"r\.fits: has shape \(40, 40\)"):
        read_cutout([a, b], 32)


def test_larger_cutout_is_centre_cropped(tmp_path):
    data = np.arange(36 * 36, dtype=np.float32).reshape(36, 36)
    cut = read_cutout(write_fits(tmp_path / "big.fits", data), 32)
    np.testing.assert_array_equal(cut.image[0], data[2:34, 2:34])
    assert cut.flags == Flag.CROPPED
    odd = center_crop(np.zeros((5, 5)), 2)
    assert odd.shape == (2, 2)


def test_smaller_cutout_rejected_never_padded(tmp_path):
    path = write_fits(tmp_path / "small.fits", galaxy(24))
    with pytest.raises(CutoutError, match=r"small\.fits: is 24x24 pixels, smaller than .* 32x32"):
        read_cutout(path, 32)


def test_missing_file(tmp_path):
    with pytest.raises(CutoutError, match=r"nope\.fits: file not found") as info:
        read_cutout(tmp_path / "nope.fits", 32)
    assert info.value.flag == Flag.UNREADABLE


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_file(tmp_path, cut):
    path = write_fits(tmp_path / "g.fits", galaxy(64))
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(CutoutError, match=r"g\.fits: unreadable FITS file") as info:
        read_cutout(path, 32)
    assert info.value.flag == Flag.UNREADABLE


def test_not_fits_at_all(tmp_path):
    path = tmp_path / "g.fits"
    path.write_text("this is not a FITS file " * 200)
    with pytest.raises(CutoutError, match="unreadable FITS"):
        read_cutout(path, 32)


def test_header_only_file_has_no_image(tmp_path):
    path = tmp_path / "empty.fits"
    fits.PrimaryHDU().writeto(path)
    with pytest.raises(CutoutError, match="holds no floating-point image HDU"):
        read_cutout(path, 32)


@pytest.mark.parametrize("shape", [(32,), (2, 2, 32, 32)])
def test_wrong_dimensionality(tmp_path, shape):
    path = write_fits(tmp_path / "g.fits", np.ones(shape, np.float32))
    with pytest.raises(CutoutError, match=f"is {len(shape)}-D") as info:
        read_cutout(path, 32)
    assert info.value.flag == Flag.BAD_SHAPE


def test_nan_and_inf_replaced_and_counted(tmp_path):
    data = galaxy(32)
    data[0, :5] = np.nan
    data[1, 0] = np.inf
    data[2, 0] = -np.inf
    cut = read_cutout(write_fits(tmp_path / "g.fits", data), 32)
    assert cut.n_bad_pixels == 7
    assert cut.flags == Flag.NONFINITE
    assert np.all(np.isfinite(cut.image)) and np.all(cut.image[0, 0, :5] == 0)


@pytest.mark.parametrize("value", [0.0, 3.5, np.nan])
def test_empty_or_constant_flagged(tmp_path, value):
    cut = read_cutout(write_fits(tmp_path / "g.fits", np.full((32, 32), value, np.float32)), 32)
    assert cut.flags & Flag.EMPTY
    assert is_fatal(cut.flags)


def test_flag_helpers():
    values = np.array([0, Flag.NONFINITE | Flag.CROPPED, Flag.UNREADABLE, Flag.BAD_SHAPE])
    np.testing.assert_array_equal(is_fatal(values), [False, False, True, True])
    assert describe(6) == ["NONFINITE", "CROPPED"]
    assert summarise(values) == {"UNREADABLE": 1, "NONFINITE": 1, "CROPPED": 1, "BAD_SHAPE": 1}
    assert not FATAL & Flag.NONFINITE
