"""The input contract's numerics against independent oracles: astropy's WCS pixel scales,
AB magnitudes written out from 3631 Jy, hand-made unit conversions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_area

from gampen.data.contract import (
    InputContract,
    read_header_facts,
    training_ranges,
    wcs_pixel_scale,
)
from gampen.errors import BundleError, CatalogError
from gampen.flags import Flag

CONTRACT = InputContract(
    pixel_scale=0.168,
    zero_point=27.0,
    input_size=96,
    condition_units={"psf_fwhm": "arcsec"},
    ranges={"psf_fwhm": (0.5, 0.9), "mag": (17.0, 23.0), "r_e": (0.1, 4.0)},
)


def _ab_zero_point(jansky_per_unit: float) -> float:
    """The AB zero point of a pixel unit worth ``jansky_per_unit`` Jy (Oke & Gunn 1983:
    m_AB = -2.5 log10(f_nu / (erg s^-1 cm^-2 Hz^-1)) - 48.60; 1 Jy = 1e-23 cgs)."""
    return -2.5 * math.log10(jansky_per_unit * 1e-23) - 48.60


@pytest.mark.parametrize("seed", range(6))
def test_wcs_pixel_scale_equals_astropy_for_any_cd_matrix(seed):
    rng = np.random.default_rng(seed)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [rng.uniform(0, 360), rng.uniform(-60, 60)]
    w.wcs.crpix = [20.0, 20.0]
    w.wcs.cd = rng.normal(0, 1e-4, (2, 2))
    expected = math.sqrt(proj_plane_pixel_area(w)) * 3600
    assert wcs_pixel_scale(w.to_header()) == pytest.approx(expected, rel=1e-6)
    # CDELT with a PC rotation, and CUNIT in arcsec instead of degrees
    header = fits.Header(
        {
            "CTYPE1": "RA---TAN",
            "CTYPE2": "DEC--TAN",
            "CDELT1": -0.2,
            "CDELT2": 0.2,
            "CUNIT1": "arcsec",
            "CUNIT2": "arcsec",
            "PC1_1": 0.6,
            "PC1_2": -0.8,
            "PC2_1": 0.8,
            "PC2_2": 0.6,
        }
    )
    assert wcs_pixel_scale(header) == pytest.approx(0.2)
    assert wcs_pixel_scale(fits.Header({"CDELT1": 1.0, "CDELT2": 1.0})) is None  # no CTYPE


def test_pixel_scale_from_keywords_and_a_contradicting_wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cd = [[-0.262 / 3600, 0], [0, 0.262 / 3600]]
    header = w.to_header()
    facts = read_header_facts(header)
    assert facts.pixel_scale == pytest.approx(0.262) and facts.pixel_scale_source == "WCS"
    header["PIXSCALE"] = 0.168
    facts = read_header_facts(header)
    assert facts.pixel_scale == 0.168 and "contradicts the WCS" in facts.unit_problem


@pytest.mark.parametrize(
    ("cards", "expected", "source"),
    [
        ({"BUNIT": "nJy"}, _ab_zero_point(1e-9), "BUNIT nJy"),
        ({"BUNIT": "uJy"}, _ab_zero_point(1e-6), "BUNIT uJy"),
        ({"BUNIT": "Jy"}, _ab_zero_point(1.0), "BUNIT Jy"),
        ({"BUNIT": "nJy", "MAGZP": 31.4}, 31.4, "MAGZP"),
        ({"MAGZERO": 25.5, "BUNIT": "electron/s"}, 25.5, "MAGZERO"),
        ({"FLUXMAG0": 63095734448.0194}, 27.0, "FLUXMAG0"),
        ({"BUNIT": "ADU"}, None, ""),
        ({"BUNIT": "flux"}, None, ""),  # as gampen simulate writes
        ({}, None, ""),
    ],
)
def test_zero_points_from_keywords_and_units(cards, expected, source):
    facts = read_header_facts(fits.Header(cards))
    assert facts.unit_problem == ""
    assert facts.zero_point_source == source
    if expected is None:
        assert facts.zero_point is None
    else:
        assert facts.zero_point == pytest.approx(expected, abs=1e-9)


def test_surface_brightness_units_use_the_pixel_area():
    # 1 MJy/sr over a 0.168 arcsec pixel, written out: 1e6 Jy times its solid angle
    solid_angle = (0.168 / 206264.80624709636) ** 2
    facts = read_header_facts(fits.Header({"BUNIT": "MJy/sr"}), pixel_scale=0.168)
    assert facts.zero_point == pytest.approx(_ab_zero_point(1e6 * solid_angle), abs=1e-9)


@pytest.mark.parametrize(
    ("cards", "problem"),
    [
        ({"BUNIT": "mag"}, "not a flux density"),
        ({"BUNIT": "erg/(s cm2 Angstrom)"}, "not a flux density"),
        ({"BUNIT": "furlongs of joy"}, "not a unit gampen can read"),
        ({"BUNIT": "nJy", "MAGZP": 27.0}, "contradict|means"),
        ({"MAGZP": "unknown"}, "not a usable zero point"),
        ({"FLUXMAG0": -1.0}, "not a usable zero point"),
    ],
)
def test_units_that_cannot_be_put_on_a_zero_point(cards, problem):
    facts = read_header_facts(fits.Header(cards))
    assert facts.zero_point is None
    assert any(p in facts.unit_problem for p in problem.split("|")), facts.unit_problem


def test_check_image_converts_zero_points_and_flags_the_rest():
    check = CONTRACT.check_image(read_header_facts(fits.Header({"BUNIT": "nJy"})))
    assert check.flags == 0 and check.zero_point_source == "BUNIT nJy"
    assert check.factor == pytest.approx(10 ** (0.4 * (27.0 - _ab_zero_point(1e-9))))
    assert 1 / check.factor == pytest.approx(57.54, rel=1e-3)  # the x57.5
    wrong = CONTRACT.check_image(read_header_facts(fits.Header({"PIXSCALE": 0.17})))
    assert wrong.flags == Flag.WRONG_PIXEL_SCALE and "0.17 arcsec" in wrong.reason
    close = CONTRACT.check_image(read_header_facts(fits.Header({"PIXSCALE": 0.1685})))
    assert close.flags == 0 and close.pixel_scale_source == "PIXSCALE"  # within 1 %
    assumed = CONTRACT.check_image(read_header_facts(fits.Header()))
    assert (assumed.factor, assumed.pixel_scale_source, assumed.zero_point_source) == (
        1.0,
        "assumed",
        "assumed",
    )
    bad = CONTRACT.check_image(read_header_facts(fits.Header({"BUNIT": "mag"})))
    assert bad.flags == Flag.BAD_UNITS


@pytest.mark.parametrize(
    ("value", "flag"),
    [
        (0.7, 0),
        (0.5, 0),
        (0.9, 0),
        (0.95, Flag.CONDITION_RANGE),
        (0.3, Flag.CONDITION_RANGE),  # a sigma given for a FWHM: outside, but plausible
        (1.8, Flag.CONDITION_RANGE),
        (1.81, Flag.BAD_CONDITION),  # beyond twice the widest training seeing
        (0.24, Flag.BAD_CONDITION),
        (5.0, Flag.BAD_CONDITION),  # pixels
        (1e6, Flag.BAD_CONDITION),
        (0.0, Flag.BAD_CONDITION),
        (-0.7, Flag.BAD_CONDITION),
        (np.nan, Flag.BAD_CONDITION),
        (np.inf, Flag.BAD_CONDITION),
    ],
)
def test_condition_checks(value, flag):
    flags, reason = CONTRACT.check_conditions(["psf_fwhm"], np.array([value]))
    assert flags == flag and bool(reason) == bool(flag)


def test_conditions_without_a_unit_or_range_only_need_to_be_finite():
    plain = InputContract(0.2, 27.0, 32, condition_units={"z": ""})
    assert plain.check_conditions(["z"], np.array([0.0]))[0] == 0
    assert plain.check_conditions(["z"], np.array([np.nan]))[0] == Flag.BAD_CONDITION


@pytest.mark.parametrize(
    ("flux", "flagged"),
    [
        (75.0, False),
        (1e-3, False),
        (0.0, True),
        (-75.0, True),
        (75e30, True),
        (9.9e5, False),
        (1.01e6, True),
    ],
)
def test_aperture_flux_check(flux, flagged):
    # mag 12 is the limit: 5 brighter than the brightest training galaxy (17)
    assert bool(CONTRACT.check_flux(flux)[0]) == flagged
    if flux > 0:
        assert (27.0 - 2.5 * math.log10(flux) < 12.0) == flagged


def test_aperture_flux_check_without_ranges_uses_magnitude_5():
    plain = InputContract(0.2, 27.0, 32)
    limit_flux = 10 ** (0.4 * (27.0 - 5.0))
    assert plain.check_flux(limit_flux * 0.99)[0] == 0
    assert plain.check_flux(limit_flux * 1.01)[0] == Flag.BAD_FLUX


@pytest.mark.parametrize(
    ("values", "unit", "arcsec"),
    [
        (5.0, u.pix, 5.0 * 0.168),
        (840.0, u.mas, 0.84),
        (0.84 / 3600, u.deg, 0.84),
        (0.014, u.arcmin, 0.84),
        (0.84, u.arcsec, 0.84),
        (0.84, None, 0.84),
    ],
)
def test_condition_units_are_converted_to_arcsec(values, unit, arcsec):
    got = CONTRACT.condition_in_unit("psf_fwhm", np.array([values]), unit, "cat.fits")
    assert got[0] == pytest.approx(arcsec)


def test_a_condition_unit_that_is_no_angle_is_refused():
    with pytest.raises(CatalogError, match=r"cat.fits: unit 'm' cannot be converted"):
        CONTRACT.condition_in_unit("psf_fwhm", np.array([1.0]), u.m, "cat.fits")
    weird = u.Unit("furlongs", parse_strict="silent")
    with pytest.raises(CatalogError, match=r"cat.fits: unit 'furlongs' is not one gampen"):
        CONTRACT.condition_in_unit("psf_fwhm", np.array([1.0]), weird, "cat.fits")


@pytest.mark.parametrize(
    ("spelling", "arcsec"),
    [
        ("ARCSEC", 0.7),
        ("arcseconds", 0.7),
        ("asec", 0.7),
        ("pixels", 0.7 * 0.168),
        ("PIX", 0.7 * 0.168),
    ],
)
def test_catalog_unit_spellings_astropy_does_not_parse(tmp_path, spelling, arcsec):
    """A FITS catalog's TUNITn as other software writes it, read back by astropy."""
    from astropy.table import Table

    table = Table({"psf_fwhm": [0.7]})
    table.write(tmp_path / "c.fits")
    with fits.open(tmp_path / "c.fits", mode="update") as hdul:
        hdul[1].header["TUNIT1"] = spelling
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns of the units it does not know
        unit = Table.read(tmp_path / "c.fits")["psf_fwhm"].unit
    got = CONTRACT.condition_in_unit("psf_fwhm", np.array([0.7]), unit, "c.fits")
    assert got[0] == pytest.approx(arcsec)


def test_range_flags_need_the_whole_68_interval_outside():
    summaries = {
        "mag_ci68_lo": np.array([22.0, 23.1, 16.0, 22.9]),
        "mag_ci68_hi": np.array([22.5, 23.5, 16.9, 23.4]),
        "r_e_ci68_lo": np.array([0.5, 0.5, 4.1, 0.05]),
        "r_e_ci68_hi": np.array([0.6, 0.6, 5.0, 0.09]),
    }
    flags = CONTRACT.range_flags(summaries)
    assert flags.tolist() == [
        0,
        Flag.MAG_RANGE,
        Flag.MAG_RANGE | Flag.SIZE_RANGE,
        Flag.SIZE_RANGE,
    ]


def test_training_ranges_widen_outward_to_four_digits():
    labels = np.array([[0.0, 0.123456, 100.0], [1.0, 3.98765, 1.0e5]])
    ranges = training_ranges(
        ["bt", "r_e", "flux"], labels, 27.0, {"psf_fwhm": np.array([0.5, 0.9, np.nan])}
    )
    assert ranges["bt"] == (0.0, 1.0)
    assert ranges["r_e"] == (0.1234, 3.988)
    assert ranges["mag"] == (14.5, 22.0)  # 27 - 2.5 log10(1e5), 27 - 2.5 log10(100)
    assert ranges["psf_fwhm"] == (0.5, 0.9)


def test_contract_round_trips_and_refuses_bad_fields():
    metadata = {
        "pixel_scale": 0.168,
        "zero_point": 27.0,
        "input_size": 96,
        "preprocessing": {"scalars": {"photometry": True, "conditions": ["psf_fwhm"]}},
        "contract": CONTRACT.to_dict(),
    }
    assert InputContract.from_metadata(metadata) == CONTRACT
    old = {k: v for k, v in metadata.items() if k != "contract"}  # a format-1 bundle
    assert InputContract.from_metadata(old).condition_units == {"psf_fwhm": "arcsec"}
    assert InputContract.from_metadata(old).ranges == {}
    broken = {**metadata, "contract": {"ranges": {"mag": [23.0, 17.0]}}}
    with pytest.raises(BundleError, match=r"contract\.ranges\.mag"):
        InputContract.from_metadata(broken)
    with pytest.raises(BundleError, match="unknown unit"):
        InputContract.from_metadata(
            {**metadata, "contract": {"condition_units": {"psf_fwhm": "zz"}}}
        )
