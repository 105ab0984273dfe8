"""gampen crop: resampled pixels and a WCS under which every pixel keeps its sky position."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from gampen.cli import main
from gampen.infer.crop import crop_pixels, crop_wcs

SIZE = 40


def _wcs(crpix=(20.5, 20.5), side=5e-5) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = list(crpix)
    w.wcs.cd = np.array([[-side, 1e-6], [2e-6, side]])
    return w


@pytest.mark.parametrize(
    "theta",
    [
        np.array([[0.8, 0.0, 0.0], [0.0, 0.8, 0.0]]),  # GaMPEN's zoom
        np.array([[0.7, -0.2, 0.1], [0.15, 0.9, -0.05]]),  # rotation, shear and shift
    ],
)
def test_every_crop_pixel_keeps_the_sky_position_of_the_input_point_it_samples(theta):
    """Oracle: ramps.  Bilinear interpolation of a linear function is exact, so a crop of
    the images x and y tells where each output pixel sampled the input."""
    y, x = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    ramps = np.stack([x + 1.0, y + 1.0])  # FITS (1-based) pixel coordinates
    sampled = crop_pixels(ramps, theta) / abs(np.linalg.det(theta[:, :2]))
    wcs_in = _wcs()
    wcs_out = crop_wcs(wcs_in, theta, SIZE)
    inner = (slice(8, SIZE - 8), slice(8, SIZE - 8))  # away from the zero-filled edges
    out_y, out_x = np.mgrid[:SIZE, :SIZE]
    got = wcs_out.pixel_to_world(out_x[inner], out_y[inner])
    want = wcs_in.pixel_to_world(sampled[0][inner] - 1, sampled[1][inner] - 1)
    assert np.max(got.separation(want).arcsec) < 1e-4  # float32 pixels: ~1e-5 pixel
    # Must fail: the input WCS itself puts the crop's pixels elsewhere.
    wrong = wcs_in.pixel_to_world(out_x[inner], out_y[inner])
    assert np.max(wrong.separation(want).arcsec) > 0.1


def test_zoom_keeps_the_centre_and_scales_the_corners():
    s = 0.75
    theta = np.array([[s, 0.0, 0.0], [0.0, s, 0.0]])
    wcs_in = _wcs(crpix=(12.0, 31.0))  # reference pixel off centre
    wcs_out = crop_wcs(wcs_in, theta, SIZE)
    centre = (SIZE - 1) / 2  # 0-based pixel coordinates of the image centre
    assert (
        wcs_out.pixel_to_world(centre, centre)
        .separation(wcs_in.pixel_to_world(centre, centre))
        .arcsec
        < 1e-6
    )
    corner = centre + s * (0 - centre)  # the output corner pixel samples this input point
    assert (
        wcs_out.pixel_to_world(0, 0).separation(wcs_in.pixel_to_world(corner, corner)).arcsec < 1e-6
    )
    scales = [proj_plane_pixel_scales(w) for w in (wcs_out, wcs_in)]  # deg / pixel
    np.testing.assert_allclose(scales[0], s * scales[1], rtol=1e-9)


#: Degrees per pixel of the shipped model's 0.168 arcsec pixels.
HSC_SIDE = 0.168 / 3600


def _cutouts(folder, *, with_wcs: bool) -> str:
    """Three 100x100 cutouts (the model reads the central 96x96) and their catalog."""
    rng = np.random.default_rng(3)
    (folder / "cutouts").mkdir(parents=True)
    y, x = np.mgrid[:100, :100] - 49.5
    rows = []
    for i in range(3):
        image = 400 * np.exp(-np.hypot(x, y) / (2 + i)) + rng.normal(0, 0.05, (100, 100))
        wcs = _wcs(crpix=(40.0 + i, 55.0), side=HSC_SIDE)
        header = wcs.to_header() if with_wcs else fits.Header()
        header["PSF_FWHM"] = 0.7
        fits.PrimaryHDU(image.astype(np.float32), header=header).writeto(
            folder / "cutouts" / f"g{i}.fits"
        )
        rows.append((i, f"cutouts/g{i}.fits"))
    catalog = folder / "cat.csv"
    Table(rows=rows, names=["object_id", "file_name"]).write(catalog)
    return str(catalog)


def test_gampen_crop_writes_fits_with_a_moved_wcs_and_a_catalog(tmp_path):
    catalog = _cutouts(tmp_path, with_wcs=True)
    out = tmp_path / "crops"
    assert main(["crop", catalog, "--out", str(out), "--no-progress"]) == 0
    listed = Table.read(out / "crops.ecsv")
    assert list(listed["file_name"]) == ["0.fits", "1.fits", "2.fits"]
    for i, row in enumerate(listed):
        with fits.open(out / row["file_name"]) as hdul:
            header, data = hdul[0].header, hdul[0].data
        s = header["GAMZOOM"]
        assert s == pytest.approx(row["stn_zoom"]) and 0.2 < s < 1.5 and data.shape == (96, 96)
        wcs_in = _wcs(
            crpix=(40.0 + i, 55.0), side=HSC_SIDE
        )  # of the 100x100 file; the model reads 2:98
        wcs_out = WCS(header)
        centre_in, centre_out = 49.5, 47.5  # the same point, 0-based in each image
        assert (
            wcs_out.pixel_to_world(centre_out, centre_out)
            .separation(wcs_in.pixel_to_world(centre_in, centre_in))
            .arcsec
            < 1e-6
        )
        corner_in = centre_in + s * (0 - centre_out)
        assert (
            wcs_out.pixel_to_world(0, 0)
            .separation(wcs_in.pixel_to_world(corner_in, corner_in))
            .arcsec
            < 1e-5
        )
    assert main(["crop", catalog, "--out", str(out)]) == 2  # refuses to overwrite


def test_cutouts_without_wcs_give_crops_without_one_and_a_warning(tmp_path, caplog):
    catalog = _cutouts(tmp_path, with_wcs=False)
    caplog.set_level(logging.WARNING, logger="gampen")
    assert main(["crop", catalog, "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    assert "3 cutout(s) have no celestial WCS" in caplog.text
    header = fits.getheader(tmp_path / "c" / "0.fits")
    assert "CTYPE1" not in header and "GAMZOOM" in header
