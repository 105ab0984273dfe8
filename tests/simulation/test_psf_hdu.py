"""The cutout's ``PSF`` HDU (the PSF as a PSF model reports it) and ``scripts/add_psf_hdus.py``,
against oracles of the test's own: FWHMs measured on the HDU with numpy and compared with
GalSim profiles made here, second moments for the shear, byte identity for the backfill."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import galsim
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage, optimize

from gampen.errors import ConfigError
from gampen.simulation.config import SimulationConfig
from gampen.simulation.presets import load_config
from gampen.simulation.psf_images import psf_library
from gampen.simulation.runner import simulate

from ..scripts import load_script
from .conftest import REFERENCE_N, REFERENCE_SEED, folder_bytes

SIDE = 41
#: A nuisance set whose reported FWHMs are far from the rendered ones (sd 0.3 in ln), with
#: Moffat and Kolmogorov PSFs and no shear (the FWHM is then one number).
ERRORS = {"psf": {"fwhm_error": 0.3, "kolmogorov_fraction": 0.5, "ellipticity": 0.0}}
#: A nuisance set of strongly sheared Moffat PSFs with light wings (beta 4.5: the 41-pixel
#: stamp holds all of the second moments).
SHEARED = {"psf": {"ellipticity": 0.3, "beta": 4.5, "kolmogorov_fraction": 0.0, "fwhm_error": 0.0}}
N_SMALL = 6
SEED = 5


def half_max_fwhm(image: np.ndarray, scale: float, oversample: int = 16) -> float:
    """FWHM (arcsec) of a centred PSF image: the diameter of the circle with the area of
    the region above half the peak, the image interpolated by cubic splines onto a grid
    ``oversample`` times finer."""
    n = image.shape[0]
    fine = (np.arange(n * oversample) + 0.5) / oversample - 0.5
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    values = ndimage.map_coordinates(image.astype(np.float64), [yy, xx], order=3)
    area = np.count_nonzero(values >= image.max() / 2.0) / oversample**2
    return 2.0 * scale * math.sqrt(area / math.pi)


def implied_fwhm(measured: float, family, scale: float) -> float:
    """The FWHM f of ``family(f)`` whose image (convolved with the pixel, as the cutout's
    are) has the FWHM ``measured``: the profile FWHM the HDU stands for."""

    def excess(fwhm: float) -> float:
        pixelised = galsim.Convolve(family(fwhm), galsim.Pixel(scale))
        return pixelised.calculateFWHM() - measured

    return optimize.brentq(excess, 0.3 * measured, 1.2 * measured, xtol=1e-5)


def family_of(row, config: SimulationConfig):
    """The profile family of a truth row's PSF, built here with GalSim."""
    if "psf_model" in row.colnames and row["psf_model"] == "kolmogorov":
        return lambda fwhm: galsim.Kolmogorov(fwhm=fwhm)
    beta = float(row["psf_beta"]) if "psf_beta" in row.colnames else float(config.psf.beta)
    return lambda fwhm: galsim.Moffat(beta=beta, fwhm=fwhm)


def psf_of(folder: Path, row) -> tuple[fits.Header, np.ndarray]:
    """The header and pixels of a cutout's ``PSF`` HDU, its second and last."""
    with fits.open(folder / row["file_name"], memmap=False) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "PSF"]
        assert isinstance(hdul[1], fits.ImageHDU)
        return hdul[1].header.copy(), hdul[1].data.copy()


def check_contract(hdu: tuple[fits.Header, np.ndarray], row, scale: float) -> np.ndarray:
    """The HDU's shape, type, keywords and normalisation; its pixels as float64."""
    header, data = hdu
    assert header["EXTNAME"] == "PSF"
    assert data.dtype == np.dtype(">f4") and data.shape == (SIDE, SIDE)
    assert header["PIXSCALE"] == scale
    assert header["PSF_FWHM"] == row["psf_fwhm"]  # the reported FWHM, exactly
    assert "as a PSF model reports it" in str(header["COMMENT"])
    pixels = data.astype(np.float64)
    assert abs(pixels.sum() - 1.0) < 1e-5
    assert np.all(np.isfinite(pixels))
    # centred on the central pixel: the peak there, the centroid within a hundredth
    assert np.unravel_index(np.argmax(pixels), pixels.shape) == (SIDE // 2, SIDE // 2)
    y, x = np.mgrid[:SIDE, :SIDE]
    centroid = (pixels * x).sum() / pixels.sum(), (pixels * y).sum() / pixels.sum()
    assert centroid == pytest.approx((SIDE // 2, SIDE // 2), abs=0.01)
    return pixels


@pytest.fixture(scope="module")
def errors_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("errors") / "set"
    simulate(load_config("hsc-real", ERRORS), out, n=N_SMALL, seed=SEED, progress=False)
    return out


def test_every_cutout_has_the_moffat_of_the_preset_at_its_fwhm(
    reference_run: Path, hsc: SimulationConfig
) -> None:
    scale = hsc.survey.pixel_scale
    for row in Table.read(reference_run / "info.csv", format="ascii.csv"):
        pixels = check_contract(psf_of(reference_run, row), row, scale)
        fwhm = float(row["psf_fwhm"])
        measured = half_max_fwhm(pixels, scale)
        moffat = lambda f: galsim.Moffat(beta=3.0, fwhm=f)  # noqa: E731  (the preset's PSF)
        assert implied_fwhm(measured, moffat, scale) == pytest.approx(fwhm, rel=0.03)
        # the whole image: the preset's Moffat convolved with the pixel, drawn here
        expected = galsim.Convolve(moffat(fwhm), galsim.Pixel(scale))
        reference = expected.drawImage(nx=SIDE, ny=SIDE, scale=scale, method="no_pixel").array
        np.testing.assert_allclose(pixels, reference / reference.sum(), rtol=0, atol=1e-6)


def test_the_psf_has_the_reported_fwhm_not_the_rendered_one(errors_run: Path) -> None:
    config = load_config("hsc-real", ERRORS)
    scale = config.survey.pixel_scale
    table = Table.read(errors_run / "info.csv", format="ascii.csv")
    tested = set()
    for row in table:
        reported, rendered = float(row["psf_fwhm"]), float(row["psf_fwhm_true"])
        if abs(math.log(reported / rendered)) < 0.1:
            continue  # too close to tell whether the HDU follows one or the other
        pixels = check_contract(psf_of(errors_run, row), row, scale)
        implied = implied_fwhm(half_max_fwhm(pixels, scale), family_of(row, config), scale)
        assert implied == pytest.approx(reported, rel=0.03)
        assert abs(implied / rendered - 1.0) > 0.06  # so not the rendered FWHM
        tested.add(str(row["psf_model"]))
    assert tested == {"moffat", "kolmogorov"}  # the test's galaxies hold both families


def test_a_sheared_psf_has_the_drawn_ellipticity(tmp_path: Path) -> None:
    config = load_config("hsc-real", SHEARED)
    out = tmp_path / "sheared"
    simulate(config, out, n=3, seed=SEED, progress=False)
    table = Table.read(out / "info.csv", format="ascii.csv")
    assert max(math.hypot(r["psf_g1"], r["psf_g2"]) for r in table) > 0.1
    y, x = np.mgrid[:SIDE, :SIDE] - SIDE // 2
    for row in table:
        pixels = check_contract(psf_of(out, row), row, config.survey.pixel_scale)
        w = pixels / pixels.sum()
        # unweighted second moments (pixels^2), less the pixel response's 1/12 on each axis
        ixx, iyy = (w * x**2).sum() - 1 / 12, (w * y**2).sum() - 1 / 12
        ixy = (w * x * y).sum()
        e1, e2 = (ixx - iyy) / (ixx + iyy), 2 * ixy / (ixx + iyy)
        # distortion e to reduced shear g: |g| = |e| / (1 + sqrt(1 - |e|^2))
        factor = 1.0 / (1.0 + math.sqrt(1.0 - e1**2 - e2**2))
        assert e1 * factor == pytest.approx(row["psf_g1"], abs=0.003)
        assert e2 * factor == pytest.approx(row["psf_g2"], abs=0.003)


def _psf_images(folder: Path) -> Path:
    """Two survey PSF images: a Gaussian of FWHM 0.7 arcsec at the survey's 0.168 arcsec,
    and a Moffat of FWHM 0.9 arcsec sampled twice as finely (its header says so)."""
    folder.mkdir()
    gaussian = galsim.Gaussian(fwhm=0.7).drawImage(nx=41, ny=41, scale=0.168)
    fits.PrimaryHDU(gaussian.array * 7.0).writeto(folder / "a.fits")
    moffat = galsim.Moffat(beta=3.0, fwhm=0.9).drawImage(nx=81, ny=81, scale=0.084)
    fits.PrimaryHDU(moffat.array, header=fits.Header({"PIXSCALE": 0.084})).writeto(
        folder / "b.fits"
    )
    return folder


def test_a_survey_psf_image_is_dilated_to_the_reported_fwhm(tmp_path: Path) -> None:
    images = _psf_images(tmp_path / "psfs")
    config = load_config("hsc", {"psf": {"images": str(images), "fwhm_error": 0.3}})
    out = tmp_path / "set"
    simulate(config, out, n=N_SMALL, seed=SEED, progress=False)
    families = {  # what each image was made from
        "a.fits": lambda fwhm: galsim.Gaussian(fwhm=fwhm),
        "b.fits": lambda fwhm: galsim.Moffat(beta=3.0, fwhm=fwhm),
    }
    tested = set()
    for row in Table.read(out / "info.csv", format="ascii.csv"):
        reported, rendered = float(row["psf_fwhm"]), float(row["psf_fwhm_true"])
        pixels = check_contract(psf_of(out, row), row, config.survey.pixel_scale)
        family = families[str(row["psf_file"])]
        implied = implied_fwhm(half_max_fwhm(pixels, 0.168), family, 0.168)
        assert implied == pytest.approx(reported, rel=0.03)
        if abs(math.log(reported / rendered)) > 0.1:
            assert abs(implied / rendered - 1.0) > 0.06
            tested.add(str(row["psf_file"]))
    assert tested  # at least one galaxy tells reported and rendered FWHMs apart


# --- scripts/add_psf_hdus.py ------------------------------------------------------------


def _script():
    return load_script("add_psf_hdus")


def strip_psf_hdus(folder: Path) -> None:
    """Make ``folder``'s cutouts as ``gampen simulate`` wrote them before the PSF HDU: the
    primary HDU alone, without the EXTEND card that announces extensions."""
    for path in sorted((folder / "cutouts").glob("*.fits")):
        with fits.open(path) as hdul:
            header, data = hdul[0].header.copy(), hdul[0].data.copy()
        del header["EXTEND"]
        path.unlink()
        fits.PrimaryHDU(data, header=header).writeto(path)
        with fits.open(path) as hdul:
            assert len(hdul) == 1


def test_backfill_gives_the_files_a_fresh_run_writes(
    reference_run: Path, errors_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script()
    for fresh in (reference_run, errors_run):  # plain hsc (psf_fwhm only) and nuisances
        old = tmp_path / fresh.parent.name
        shutil.copytree(fresh, old)
        strip_psf_hdus(old)
        assert folder_bytes(old) != folder_bytes(fresh)
        script.main([str(old / "info.csv"), "--no-progress"])
        assert folder_bytes(old) == folder_bytes(fresh)  # PSF HDUs byte for byte, and all
        n = len(Table.read(old / "info.csv", format="ascii.csv"))
        assert f"{n} cutouts given a PSF HDU, 0 already had one" in capsys.readouterr().out
        # idempotent: a second pass rewrites nothing
        stamps = {p: p.stat().st_mtime_ns for p in (old / "cutouts").iterdir()}
        script.main([str(old / "info.csv"), "--no-progress"])
        assert f"0 cutouts given a PSF HDU, {n} already had one" in capsys.readouterr().out
        assert {p: p.stat().st_mtime_ns for p in (old / "cutouts").iterdir()} == stamps


def test_backfill_through_a_shared_folder_with_moved_psf_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = _psf_images(tmp_path / "psfs")
    config = load_config("hsc", {"psf": {"images": str(images), "fwhm_error": 0.3}})
    fresh = tmp_path / "fresh"
    simulate(config, fresh, n=3, seed=SEED, progress=False)
    # an old set whose cutouts folder lives elsewhere (shared by several sets)
    old, shared = tmp_path / "old", tmp_path / "shared"
    shutil.copytree(fresh, old)
    strip_psf_hdus(old)
    shutil.move(old / "cutouts", shared)
    os.symlink(shared, old / "cutouts")
    moved = tmp_path / "elsewhere"
    shutil.move(images, moved)  # the configuration's psf.images is gone
    psf_library.cache_clear()  # as in the script's own process
    script = _script()
    with pytest.raises(ConfigError, match=r"psf\.images: not a folder"):
        script.main([str(old / "info.csv"), "--no-progress"])
    script.main([str(old / "info.csv"), "--image-dir", str(moved), "--no-progress"])
    assert "3 cutouts given a PSF HDU" in capsys.readouterr().out
    assert (old / "cutouts").is_symlink()
    assert folder_bytes(shared) == folder_bytes(fresh / "cutouts")
    # --preset-from a simulate.json elsewhere gives the same (nothing left to add)
    settings = tmp_path / "simulate.json"
    shutil.copy(old / "simulate.json", settings)
    script.main([str(old / "info.csv"), "--preset-from", str(settings), "--image-dir", str(moved)])
    assert "0 cutouts given a PSF HDU, 3 already had one" in capsys.readouterr().out


def test_resuming_an_old_set_adds_its_psf_hdus(
    reference_run: Path, hsc: SimulationConfig, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(reference_run, old)
    strip_psf_hdus(old)
    (old / "info.csv").unlink()  # an interrupted run
    summary = simulate(hsc, old, n=REFERENCE_N, seed=REFERENCE_SEED, progress=False)
    assert summary.drawn == 0
    assert folder_bytes(old) == folder_bytes(reference_run)
