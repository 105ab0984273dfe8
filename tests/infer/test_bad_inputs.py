"""The bad-input matrix: every way a user can hand ``gampen predict`` the wrong physics,
each with its expected outcome: converted (the same posterior as the right input),
flagged (which bit, NaN estimates when fatal) or refused (which message).

The model is a tiny untrained network whose contract says: 0.2 arcsec pixels, AB zero
point 27, a PSF FWHM condition in arcsec trained on [0.5, 0.9], magnitudes 17-23.  Its
posteriors are meaningless, but any input the contract converts must give exactly the
posterior of the input that needed no conversion: that is the oracle.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from gampen.cli import main
from gampen.errors import CatalogError, ConfigError
from gampen.flags import Flag
from gampen.infer.predict import PredictOptions, predict

from ..synthetic import tiny_bundle

SIZE = 32
FAST = dict(n_passes=2, n_samples=50, batch_size=8, chunk_size=64, num_workers=0, progress=False)
#: The posterior-range bits an untrained network may set at random; the matrix checks
#: the input bits, and ``range_flags`` is tested on its own.
POSTERIOR_BITS = int(Flag.PARAM_RANGE | Flag.OUT_OF_DISTRIBUTION)
ESTIMATES = ("bt_median", "r_e_median", "flux_median", "r_e_ci68_lo", "flux_ci95_hi")


def _bundle(folder):
    contract = {
        "magnitudes": "AB",
        "condition_units": {"psf_fwhm": "arcsec"},
        "ranges": {"psf_fwhm": [0.5, 0.9], "mag": [17.0, 23.0], "r_e": [0.1, 4.0]},
    }
    return tiny_bundle(folder, conditions=("psf_fwhm",), contract=contract, name="model")


def _galaxy(seed: int) -> np.ndarray:
    """A round exponential galaxy of about 200 ADU (mag 21.2) with sky noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    profile = np.exp(-1.678 * np.hypot(x, y) / 3.0)
    return (200 * profile / profile.sum() + rng.normal(0, 0.05, (SIZE, SIZE))).astype(np.float32)


def _write(path, image, **cards):
    """A cutout in the primary HDU with the given header cards."""
    fits.PrimaryHDU(image, header=fits.Header(cards)).writeto(path)


def _wcs_cards(arcsec: float) -> dict:
    """A TAN WCS of square ``arcsec`` pixels, rotated by 30 degrees."""
    d, c, s = arcsec / 3600, np.cos(np.radians(30)), np.sin(np.radians(30))
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRVAL1": 150.0,
        "CRVAL2": 2.0,
        "CRPIX1": 16.5,
        "CRPIX2": 16.5,
        "CD1_1": -d * c,
        "CD1_2": d * s,
        "CD2_1": d * s,
        "CD2_2": d * c,
    }


#: The AB zero point of a pixel in nJy: -2.5 log10(1e-9 Jy x 1e-23 cgs/Jy) - 48.60.
NJY_AB = -2.5 * np.log10(1e-32) - 48.60

#: name -> (how the cutout is written from the reference image, catalog psf_fwhm, outcome).
#: The outcome is "same" (converted: the reference's posterior) or the flag bits expected.
CASES = {
    "reference": (lambda p, im: _write(p, im, PIXSCALE=0.2, MAGZP=27.0), 0.7, "same"),
    "no keywords: the model's assumed": (lambda p, im: _write(p, im), 0.7, "same"),
    "WCS at the model's scale": (lambda p, im: _write(p, im, **_wcs_cards(0.2)), 0.7, "same"),
    "nJy with MAGZP and BUNIT": (
        lambda p, im: _write(p, im * 10 ** (0.4 * 4.4), MAGZP=31.4, BUNIT="nJy"),
        0.7,
        "same",
    ),
    "nJy from BUNIT alone": (
        lambda p, im: _write(p, im * 10 ** (0.4 * (NJY_AB - 27.0)), BUNIT="nJy"),
        0.7,
        "same",
    ),
    "zero point 28": (lambda p, im: _write(p, im * 10**0.4, MAGZP=28.0), 0.7, "same"),
    "HSC FLUXMAG0": (lambda p, im: _write(p, im * 10**0.4, FLUXMAG0=10 ** (28 / 2.5)), 0.7, "same"),
    "MJy/sr surface brightness": (
        # 1 ADU at AB 27 is 10^(-0.4 (27 + 48.6)) erg/s/cm2/Hz = 10^(23 - 0.4 x 75.6) Jy;
        # per steradian of a 0.2 arcsec pixel, in MJy/sr
        lambda p, im: _write(
            p,
            im * 10 ** (17 - 0.4 * 75.6) / ((0.2 * u.arcsec) ** 2).to_value(u.sr),
            BUNIT="MJy/sr",
            PIXSCALE=0.2,
        ),
        0.7,
        "same",
    ),
    "MEF: PRIMARY, MASK (int32), IMAGE, VARIANCE": (
        lambda p, im: fits.HDUList(
            [
                fits.PrimaryHDU(),
                fits.ImageHDU(np.zeros((SIZE, SIZE), np.int32), name="MASK"),
                fits.ImageHDU(im, name="IMAGE"),
                fits.ImageHDU(np.full((SIZE, SIZE), 0.0025, np.float32), name="VARIANCE"),
            ]
        ).writeto(p),
        0.7,
        "same",
    ),
    "pixel scale 0.262 (PIXSCALE)": (
        lambda p, im: _write(p, im, PIXSCALE=0.262),
        0.7,
        Flag.WRONG_PIXEL_SCALE,
    ),
    "pixel scale 0.262 (WCS only)": (
        lambda p, im: _write(p, im, **_wcs_cards(0.262)),
        0.7,
        Flag.WRONG_PIXEL_SCALE,
    ),
    "BUNIT mag": (lambda p, im: _write(p, im, BUNIT="mag"), 0.7, Flag.BAD_UNITS),
    "BUNIT nJy but MAGZP 27": (
        lambda p, im: _write(p, im, BUNIT="nJy", MAGZP=27.0),
        0.7,
        Flag.BAD_UNITS,
    ),
    "only an integer image": (
        lambda p, im: _write(p, (im * 100).astype(np.int32)),
        0.7,
        Flag.UNREADABLE,
    ),
    "16x16 NaN patch on the galaxy": (
        lambda p, im: _write(p, _patched(im, slice(8, 24))),
        0.7,
        Flag.NONFINITE | Flag.MASKED_CORE,
    ),
    "NaN strip at the edge": (
        lambda p, im: _write(p, _patched(im, slice(0, 2), whole_rows=True)),
        0.7,
        Flag.NONFINITE,
    ),
    "negated image": (lambda p, im: _write(p, -im), 0.7, Flag.BAD_FLUX),
    "pixels x 1e30": (lambda p, im: _write(p, im * 1e30), 0.7, Flag.BAD_FLUX),
    "PSF in pixels (5)": (lambda p, im: _write(p, im), 5.0, Flag.BAD_CONDITION),
    "PSF 1e6": (lambda p, im: _write(p, im), 1e6, Flag.BAD_CONDITION),
    "PSF zero": (lambda p, im: _write(p, im), 0.0, Flag.BAD_CONDITION),
    "PSF negative": (lambda p, im: _write(p, im), -0.7, Flag.BAD_CONDITION),
    "PSF missing": (lambda p, im: _write(p, im), np.nan, Flag.BAD_CONDITION),
    "PSF as sigma (0.3)": (lambda p, im: _write(p, im), 0.7 / 2.3548, Flag.CONDITION_RANGE),
    "seeing 1.2 arcsec": (lambda p, im: _write(p, im), 1.2, Flag.CONDITION_RANGE),
}


def _patched(image: np.ndarray, where: slice, *, whole_rows: bool = False) -> np.ndarray:
    out = image.copy()
    if whole_rows:
        out[where, :] = np.nan
    else:
        out[where, where] = np.nan
    return out


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """One catalog of every case, and the same rows all written as the reference."""
    folder = tmp_path_factory.mktemp("matrix")
    bundle = _bundle(folder)
    (folder / "cut").mkdir()
    (folder / "ref").mkdir()
    names, psf = [], []
    for i, (write, fwhm, _) in enumerate(CASES.values()):
        image = _galaxy(i)
        write(folder / "cut" / f"{i}.fits", image)
        CASES["reference"][0](folder / "ref" / f"{i}.fits", image)
        names.append(f"{i}.fits")
        psf.append(fwhm)
    reference = Table({"object_id": np.arange(len(names)), "file_name": names})
    reference["psf_fwhm"] = 0.7
    reference.write(folder / "ref" / "cat.ecsv")
    table = Table({"object_id": np.arange(len(names)), "file_name": names, "psf_fwhm": psf})
    table.write(folder / "cut" / "cat.ecsv")
    options = PredictOptions(**FAST)
    got = predict(
        folder / "cut" / "cat.ecsv", out=folder / "cut.ecsv", model=bundle, options=options
    )
    want = predict(
        folder / "ref" / "cat.ecsv", out=folder / "ref.ecsv", model=bundle, options=options
    )
    return folder, bundle, got, want


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_input_is_converted_or_flagged(matrix, case):
    _, _, got, want = matrix
    row = list(CASES).index(case)
    outcome = CASES[case][2]
    flags = int(got["flags"][row]) & ~POSTERIOR_BITS
    if outcome == "same":
        assert flags == 0, Flag(flags)
        for column in ESTIMATES:
            np.testing.assert_allclose(
                got[column][row], want[column][row], rtol=2e-4, err_msg=column
            )
        return
    assert flags == int(outcome), f"{Flag(flags)!r} != {Flag(outcome)!r}"
    fatal = int(outcome) & int(
        Flag.UNREADABLE
        | Flag.BAD_CONDITION
        | Flag.WRONG_PIXEL_SCALE
        | Flag.BAD_UNITS
        | Flag.MASKED_CORE
        | Flag.BAD_FLUX
    )
    assert np.isnan(got["r_e_median"][row]) == bool(fatal)


def test_the_run_records_where_scale_zero_point_and_psf_came_from(matrix):
    folder = matrix[0]
    meta = Table.read(folder / "cut.ecsv").meta
    assert meta["PIXSCALE"] == 0.2 and meta["ZEROPT"] == 27.0
    assert "PIXSCALE: " in meta["PIXSRC"] and "WCS: " in meta["PIXSRC"]
    assert "assumed: " in meta["PIXSRC"] and "unread: 1;" in meta["PIXSRC"] + ";"
    assert "BUNIT nJy: 1" in meta["ZPSRC"] and "FLUXMAG0: 1" in meta["ZPSRC"]
    assert meta["PSFSRC"] == "catalog column psf_fwhm, no unit: arcsec assumed"
    assert meta["CALIBRAT"] is False


def test_flux_is_described_on_the_model_zero_point(matrix):
    """Whatever the cutouts' unit, the flux column is on the model's zero point."""
    _, _, got, _ = matrix
    assert got["flux_median"].description.startswith("total flux (zero point ZEROPT)")


def _psf_catalog(folder, name, fwhm_column, file_name):
    """The reference galaxies' catalog with the PSF FWHM as column ``name``."""
    table = Table.read(folder / "ref" / "cat.ecsv")
    table.meta.clear()
    del table["psf_fwhm"]
    table[name] = fwhm_column
    table.write(folder / "ref" / file_name, overwrite=True)
    return folder / "ref" / file_name


@pytest.mark.parametrize(
    ("values", "unit"),
    [(0.7 / 0.2, u.pix), (700.0, u.mas), (0.7 / 3600, u.deg), (0.7, u.arcsec)],
)
def test_psf_columns_with_units_are_converted_exactly(matrix, values, unit):
    folder, bundle, _, want = matrix
    n = len(want)
    catalog = _psf_catalog(folder, "psf_fwhm", np.full(n, values) * unit, f"{unit}.ecsv")
    out = predict(catalog, model=bundle, options=PredictOptions(**FAST))
    np.testing.assert_allclose(out["r_e_median"], want["r_e_median"], rtol=2e-4)
    assert (np.asarray(out["flags"]) & ~POSTERIOR_BITS == 0).all()


def test_a_psf_column_in_a_unit_that_is_no_angle_is_refused(matrix):
    folder, bundle, want, _ = matrix
    catalog = _psf_catalog(folder, "psf_fwhm", np.full(len(want), 0.7) * u.m, "m.ecsv")
    with pytest.raises(CatalogError, match=r"column 'psf_fwhm'.*unit 'm' cannot be converted"):
        predict(catalog, model=bundle, options=PredictOptions(**FAST))


def test_conditions_map_a_column_of_another_name(matrix):
    folder, bundle, _, want = matrix
    catalog = _psf_catalog(folder, "SEEING", np.full(len(want), 0.7), "seeing.ecsv")
    with pytest.raises(CatalogError, match="psf_fwhm"):  # not where the model looks
        predict(catalog, model=bundle, options=PredictOptions(**FAST))
    mapped = PredictOptions(**FAST, conditions={"psf_fwhm": "SEEING"})
    out = predict(catalog, model=bundle, options=mapped)
    np.testing.assert_allclose(out["r_e_median"], want["r_e_median"], rtol=2e-4)
    wrong = PredictOptions(**FAST, conditions={"seeing": "SEEING"})
    with pytest.raises(CatalogError, match="does not take"):
        predict(catalog, model=bundle, options=wrong)


def test_cli_conditions_and_a_header_keyword_of_another_name(matrix, tmp_path):
    bundle = matrix[1]
    (tmp_path / "c").mkdir()
    for i in range(3):
        _write(tmp_path / "c" / f"{i}.fits", _galaxy(i), SEEING=0.7)
    out = tmp_path / "p.ecsv"
    args = ["predict", str(tmp_path / "c"), "--out", str(out), "--model", str(bundle)]
    fast = ["--n-passes", "2", "--n-samples", "50", "--num-workers", "0", "--no-progress"]
    assert main([*args, *fast, "--conditions", "psf_fwhm=SEEING"]) == 0
    table = Table.read(out)
    assert table.meta["PSFSRC"] == "header keyword SEEING, arcsec assumed"
    assert np.isfinite(table["r_e_median"]).all()


def test_hdu_naming_an_integer_mask_is_refused_and_an_all_fatal_run_exits_1(
    matrix, tmp_path, capsys
):
    folder, bundle, _, _ = matrix
    case = list(CASES).index("MEF: PRIMARY, MASK (int32), IMAGE, VARIANCE")
    table = Table({"object_id": [0, 1], "file_name": [f"{case}.fits"] * 2, "psf_fwhm": [0.7] * 2})
    table.write(folder / "cut" / "mef.ecsv", overwrite=True)
    out = tmp_path / "p.ecsv"
    args = ["predict", str(folder / "cut" / "mef.ecsv"), "--out", str(out), "--model", str(bundle)]
    fast = ["--n-passes", "2", "--n-samples", "50", "--num-workers", "0", "--no-progress"]
    assert main([*args, *fast, "--hdu", "MASK"]) == 1
    err = capsys.readouterr().err
    assert "every one of the 2 galaxies was flagged fatal (UNREADABLE 2)" in err
    assert (Table.read(out)["flags"] == Flag.UNREADABLE).all()  # the flags are still written
    assert main([*args, *fast, "--hdu", "IMAGE", "--overwrite"]) == 0


def test_an_input_is_never_overwritten(matrix):
    folder, bundle, _, _ = matrix
    catalog = folder / "ref" / "cat.ecsv"
    before = catalog.read_bytes()
    options = PredictOptions(**FAST, overwrite=True)
    with pytest.raises(ConfigError, match="is an input of this run"):
        predict(catalog, out=catalog, model=bundle, options=options)
    with pytest.raises(ConfigError, match="is an input of this run"):
        predict(catalog, out=bundle / "p.ecsv", model=bundle, options=options)
    assert catalog.read_bytes() == before


def test_too_few_samples_give_no_interval_and_a_warning(matrix, caplog):
    folder, bundle, _, _ = matrix
    options = PredictOptions(**{**FAST, "n_samples": 2})
    with caplog.at_level(logging.WARNING, logger="gampen"):
        out = predict(folder / "ref" / "cat.ecsv", model=bundle, options=options)
    assert "cannot resolve the 68.27 % (needs 6)" in caplog.text
    assert np.isnan(out["r_e_ci68_lo"]).all() and np.isfinite(out["r_e_median"]).all()
    with pytest.raises(ConfigError, match="n_samples"):
        PredictOptions(n_samples=1)


def test_model_sha_hashes_the_whole_bundle_and_calibration_is_recorded(matrix, tmp_path, caplog):
    import shutil

    folder, bundle, _, _ = matrix
    edited = tmp_path / "edited"
    shutil.copytree(bundle, edited)
    document = json.loads((edited / "gampen.json").read_text())
    document["preprocessing"]["labels"]["mean"][1] += 0.46  # r_e x 1.59: same weights
    (edited / "gampen.json").write_text(json.dumps(document))
    catalog = folder / "ref" / "cat.ecsv"
    with caplog.at_level(logging.WARNING, logger="gampen"):
        predict(catalog, out=tmp_path / "a.ecsv", model=bundle, options=PredictOptions(**FAST))
    assert "is not calibrated" in caplog.text
    predict(catalog, out=tmp_path / "b.ecsv", model=edited, options=PredictOptions(**FAST))
    shas = [Table.read(tmp_path / f"{n}.ecsv").meta["MODELSHA"] for n in ("a", "b")]
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert shas[1] == hashlib.sha256(canonical.encode()).hexdigest() and shas[0] != shas[1]


def test_sampling_otherwise_than_the_calibration_warns(matrix, tmp_path, caplog):
    import shutil

    folder, bundle, _, _ = matrix
    calibrated = tmp_path / "cal"
    shutil.copytree(bundle, calibrated)
    document = json.loads((calibrated / "gampen.json").read_text())
    document["calibration"]["fit"] = {"n_passes": 100, "n_samples": 1000}
    (calibrated / "gampen.json").write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING, logger="gampen"):
        out = predict(
            folder / "ref" / "cat.ecsv",
            out=tmp_path / "p.ecsv",
            model=calibrated,
            options=PredictOptions(**FAST),
        )
    assert "n_passes 2 (calibrated at 100), n_samples 50 (calibrated at 1000)" in caplog.text
    assert "not calibrated" not in caplog.text
    assert Table.read(tmp_path / "p.ecsv").meta["CALIBRAT"] is True and len(out)
