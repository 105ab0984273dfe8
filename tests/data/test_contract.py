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
    ZERO_POINT_TOLERANCE,
    Cards,
    HeaderFacts,
    InputContract,
    psf_pixel_scale,
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


def test_range_flags_follow_the_posterior_median():
    # CONTRACT's ranges: mag 17-23, r_e 0.1-4.0.  A 68 % interval reaching back inside
    # (row 2) no longer saves a galaxy whose median is past the edge; an interval
    # reaching past the edge (row 4) does not flag one whose median is inside.
    summaries = {
        "mag_median": np.array([22.2, 23.1, 16.5, 22.95, 20.0, 20.0]),
        "mag_ci68_lo": np.array([22.0, 22.8, 16.0, 22.5, 19.0, 19.0]),
        "mag_ci68_hi": np.array([22.5, 23.5, 16.9, 23.4, 21.0, 21.0]),
        "r_e_median": np.array([0.5, 0.5, 1.0, 0.5, 4.2, 0.05]),
    }
    flags = CONTRACT.range_flags(summaries)
    assert flags.tolist() == [0, Flag.PARAM_RANGE, Flag.PARAM_RANGE, 0] + [Flag.PARAM_RANGE] * 2


def test_range_flags_ask_for_the_interval_beyond_the_calibrated_range():
    # Trained on mag 16.5-23.75 and r_e 0.05-5, calibrated on mag 17-23 and r_e 0.1-4: a
    # galaxy is flagged when its median leaves the training range or its whole 68 %
    # interval leaves the calibrated one (an interval ending on the edge has not: rows 7, 10).
    wide = InputContract(
        0.168,
        27.0,
        96,
        ranges={"mag": (16.5, 23.75), "r_e": (0.05, 5.0)},
        calibrated_ranges={"mag": (17.0, 23.0), "r_e": (0.1, 4.0)},
    )
    summaries = {
        "mag_median": np.array([23.1, 23.3, 23.9, 20.0, 16.8, 20.0, 20.0, 23.0, 17.2, 23.8, 16.9]),
        "mag_ci68_lo": np.array(
            [22.98, 23.05, 23.7, 19.0, 16.6, 19.0, 19.0, 23.0, 16.9, 22.9, 16.8]
        ),
        "mag_ci68_hi": np.array(
            [23.2, 23.5, 24.1, 21.0, 16.95, 21.0, 21.0, 23.0, 17.4, 24.5, 17.0]
        ),
        "r_e_median": np.array([1.0, 1.0, 1.0, 4.3, 1.0, 4.3, 0.07, 1.0, 0.1, 1.0, 1.0]),
        "r_e_ci68_lo": np.array([0.9, 0.9, 0.9, 4.1, 0.9, 3.9, 0.06, 0.9, 0.08, 0.9, 0.9]),
        "r_e_ci68_hi": np.array([1.1, 1.1, 1.1, 4.5, 1.1, 4.6, 0.09, 1.1, 0.12, 1.1, 1.1]),
    }
    flagged = wide.range_flags(summaries) == Flag.PARAM_RANGE
    assert flagged.tolist() == [
        False,
        True,
        True,
        True,
        True,
        False,
        True,
        False,
        False,
        True,
        False,
    ]
    # Without a calibrated range only the training range's median counts.
    trained_only = InputContract(0.168, 27.0, 96, ranges=wide.ranges)
    flagged = trained_only.range_flags(summaries) == Flag.PARAM_RANGE
    assert flagged.tolist() == [False, False, True] + [False] * 6 + [True, False]


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
    claimed = InputContract(0.168, 27.0, 96, calibrated_ranges={"r_e": (0.1, 4.0)})
    assert claimed.to_dict()["calibrated_ranges"] == {"r_e": [0.1, 4.0]}
    metadata = {**metadata, "preprocessing": {}, "contract": claimed.to_dict()}
    assert InputContract.from_metadata(metadata) == claimed
    broken = {**metadata, "contract": {"calibrated_ranges": {"r_e": [4.0, math.inf]}}}
    with pytest.raises(BundleError, match=r"contract\.calibrated_ranges\.r_e"):
        InputContract.from_metadata(broken)
    with pytest.raises(BundleError, match="unknown unit"):
        InputContract.from_metadata(
            {**metadata, "contract": {"condition_units": {"psf_fwhm": "zz"}}}
        )


def test_a_hand_written_cd_matrix_and_incomplete_wcs_headers():
    d = 0.262 / 3600
    cd = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": -d * 0.6, "CD1_2": d * 0.8}
    cd |= {"CD2_1": d * 0.8, "CD2_2": d * 0.6}
    assert wcs_pixel_scale(fits.Header(cd)) == pytest.approx(0.262)
    # a missing CDi_j is 0, as the FITS standard says: here a diagonal CD of other sides
    diagonal = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": -2 * d, "CD2_2": 0.5 * d}
    assert wcs_pixel_scale(fits.Header(diagonal)) == pytest.approx(0.262)
    arcsec = {**diagonal, "CUNIT1": "arcsec", "CUNIT2": "arcsec", "CD1_1": -0.4, "CD2_2": 0.1}
    assert wcs_pixel_scale(fits.Header(arcsec)) == pytest.approx(0.2)
    for dropped in ("CTYPE1", "CTYPE2"):
        assert wcs_pixel_scale(fits.Header({k: v for k, v in cd.items() if k != dropped})) is None
    assert wcs_pixel_scale(fits.Header({**cd, "CTYPE2": "  "})) is None
    singular = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": d, "CD2_1": d}
    assert wcs_pixel_scale(fits.Header(singular)) is None  # a degenerate matrix has no side
    half = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": -d}
    assert wcs_pixel_scale(fits.Header(half)) is None
    odd = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": -2 * d, "CDELT2": 0.5 * d}
    assert wcs_pixel_scale(fits.Header(odd)) == pytest.approx(0.262)
    assert wcs_pixel_scale(fits.Header({**odd, "CUNIT1": "furlong"})) is None


def test_pixel_scale_keywords_that_say_nothing_are_ignored():
    assert read_header_facts(fits.Header({"PIXSCALE": 0.0})).pixel_scale is None
    assert read_header_facts(fits.Header({"PIXSCALE": "n/a"})).pixel_scale is None
    facts = read_header_facts(fits.Header({"SECPIX": 0.2}))
    assert (facts.pixel_scale, facts.pixel_scale_source, facts.unit_problem) == (0.2, "SECPIX", "")
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cd = [[-0.2 / 3600, 0], [0, 0.2 / 3600]]
    assert read_header_facts(w.to_header()).unit_problem == ""  # a WCS alone is no problem


def test_header_numbers_and_both_problems_at_once():
    cards = {"PSF_FWHM": 0.7, "SEEING": "bad", "PIXSCALE": 0.3, "BUNIT": "mag"}
    cards |= {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": -0.2 / 3600}
    header = fits.Header({**cards, "CDELT2": 0.2 / 3600})
    facts = read_header_facts(header, ("PSF_FWHM", "SEEING", "ABSENT"))
    assert facts.numbers["PSF_FWHM"] == 0.7
    assert np.isnan(facts.numbers["SEEING"]) and np.isnan(facts.numbers["ABSENT"])
    assert facts.unit_problem.count("; ") == 1
    assert "contradicts the WCS" in facts.unit_problem and "BUNIT 'mag'" in facts.unit_problem
    check = CONTRACT.check_image(facts)
    assert check.flags == Flag.WRONG_PIXEL_SCALE | Flag.BAD_UNITS and check.reason.count("; ") == 2


@pytest.mark.parametrize("bunit", ["ADU/s", "counts/s", "e-/s", "electron/s", "DN", "ct", "adu"])
def test_count_units_leave_the_zero_point_to_keywords(bunit):
    facts = read_header_facts(fits.Header({"BUNIT": bunit, "MAGZP": 25.0}))
    assert (facts.zero_point, facts.zero_point_source, facts.unit_problem) == (25.0, "MAGZP", "")
    alone = read_header_facts(fits.Header({"BUNIT": bunit}))
    assert (alone.zero_point, alone.zero_point_source, alone.unit_problem) == (None, "", "")


def test_zero_point_keywords_edge_cases():
    facts = read_header_facts(fits.Header({"FLUXMAG0": 0.5}))
    assert facts.zero_point == pytest.approx(2.5 * math.log10(0.5))  # valid, if odd
    for value in (0.0, -3.0):
        bad = read_header_facts(fits.Header({"FLUXMAG0": value}))
        assert bad.zero_point is None and bad.zero_point_source == ""
        assert "FLUXMAG0" in bad.unit_problem
    close = read_header_facts(fits.Header({"BUNIT": "nJy", "MAGZP": _ab_zero_point(1e-9) + 0.009}))
    assert close.unit_problem == "" and close.zero_point_source == "MAGZP"
    far = read_header_facts(fits.Header({"BUNIT": "nJy", "MAGZP": _ab_zero_point(1e-9) + 0.02}))
    assert "means 31.400 (AB)" in far.unit_problem and far.zero_point_source == ""


def test_an_implausible_zero_point_is_flagged_not_converted():
    check = CONTRACT.check_image(read_header_facts(fits.Header({"MAGZP": 1e10})))
    assert check.flags == Flag.BAD_UNITS and check.factor == 1.0 and "implausible" in check.reason
    fine = CONTRACT.check_image(read_header_facts(fits.Header({"MAGZP": 46.9})))
    assert fine.flags == 0 and fine.factor == pytest.approx(10 ** (0.4 * (27.0 - 46.9)))


def test_condition_messages_and_several_conditions_at_once():
    contract = InputContract(
        0.2,
        27.0,
        32,
        condition_units={"psf_fwhm": "arcsec", "seeing_r": "arcsec", "depth": ""},
        ranges={"psf_fwhm": (0.5, 0.9), "depth": (24.0, 27.0)},
    )
    names = ["psf_fwhm", "seeing_r", "depth"]
    flags, reason = contract.check_conditions(names, np.array([1.0, 0.7, 26.0]))
    assert flags == Flag.CONDITION_RANGE and reason == (
        "psf_fwhm = 1 arcsec is outside the training range [0.5, 0.9]"
    )
    flags, reason = contract.check_conditions(names, np.array([5.0, 0.0, 30.0]))
    assert flags == Flag.BAD_CONDITION | Flag.CONDITION_RANGE
    assert reason.split("; ") == [
        "psf_fwhm = 5 arcsec is far outside the training range [0.5, 0.9] (pixels, sigma or "
        "another unit given for a FWHM in arcsec?)",
        "seeing_r = 0 arcsec is missing or not positive",  # a unit, no range: must be > 0
        "depth = 30 is outside the training range [24, 27]",  # no unit: never 'far outside'
    ]
    flags, reason = contract.check_conditions(names, np.array([np.nan, 0.7, 25.0]))
    assert (
        flags == Flag.BAD_CONDITION and reason == "psf_fwhm = nan arcsec is missing or not positive"
    )
    edge = contract.check_conditions(["psf_fwhm"], np.array([0.25]))
    assert edge[0] == Flag.CONDITION_RANGE  # exactly half the lowest training value
    assert contract.check_conditions(["depth"], np.array([-1.0]))[0] == Flag.CONDITION_RANGE


def test_flux_reasons():
    assert CONTRACT.check_flux(75.0) == (0, "")
    assert "holds positive flux" in CONTRACT.check_flux(-1.0)[1]
    assert "brighter than 12" in CONTRACT.check_flux(1e9)[1]


def test_range_flags_with_partial_ranges_and_medians_on_the_edge():
    only_size = InputContract(0.2, 27.0, 32, ranges={"r_e": (0.1, 4.0)})
    summaries = {"r_e_median": np.array([0.1, 4.0, 4.01, 0.099]), "mag_median": np.zeros(4)}
    assert only_size.range_flags(summaries).tolist() == [0, 0] + [Flag.PARAM_RANGE] * 2
    no_mag_columns = {"r_e_median": np.array([5.0])}
    assert CONTRACT.range_flags(no_mag_columns).tolist() == [Flag.PARAM_RANGE]
    nan = {"r_e_median": np.array([np.nan])}
    assert CONTRACT.range_flags(nan).tolist() == [0]  # a fatal row: nothing to add


def test_condition_units_only_for_conditions_that_have_one():
    plain = InputContract(0.2, 27.0, 32, condition_units={"z": ""})
    assert plain.condition_in_unit("z", np.array([0.5]), u.arcsec, "c")[0] == 0.5
    assert CONTRACT.condition_in_unit("other", np.array([0.5]), u.mas, "c")[0] == 0.5


def test_contract_dict_and_metadata_defaults():
    assert CONTRACT.to_dict() == {
        "magnitudes": "AB",
        "condition_units": {"psf_fwhm": "arcsec"},
        "ranges": {"psf_fwhm": [0.5, 0.9], "mag": [17.0, 23.0], "r_e": [0.1, 4.0]},
    }
    bare = InputContract.from_metadata({"pixel_scale": 0.2, "zero_point": 30.0, "input_size": 64})
    assert bare == InputContract(0.2, 30.0, 64)
    other = InputContract.from_metadata(
        {
            "pixel_scale": 0.2,
            "zero_point": 30.0,
            "input_size": 64,
            "preprocessing": {"scalars": {"photometry": False, "conditions": ["depth"]}},
            "contract": {"ranges": {"depth": [25.0, 25.0]}},
        }
    )
    assert other.condition_units == {"depth": ""} and other.ranges == {"depth": (25.0, 25.0)}
    for pair in ("ab", [1.0], [1.0, 2.0, 3.0], [1.0, float("nan")]):
        broken = {**_metadata(), "contract": {"ranges": {"mag": pair}}}
        with pytest.raises(BundleError, match=r"contract\.ranges\.mag' is invalid; got"):
            InputContract.from_metadata(broken)
    with pytest.raises(BundleError, match=r"condition_units\.psf_fwhm'.*got 'zz'"):
        InputContract.from_metadata(
            {**_metadata(), "contract": {"condition_units": {"psf_fwhm": "zz"}}}
        )


def _metadata() -> dict:
    return {"pixel_scale": 0.168, "zero_point": 27.0, "input_size": 96}


def test_unknown_catalog_units_name_the_unit_and_what_is_expected():
    weird = u.Unit("furlongs", parse_strict="silent")
    with pytest.raises(CatalogError, match=r"got 'furlongs'; expected an astropy unit of angle"):
        CONTRACT.condition_in_unit("psf_fwhm", np.array([1.0]), weird, "cat.fits")
    with pytest.raises(CatalogError, match=r"got 'm'; expected a unit of angle \(the model takes"):
        CONTRACT.condition_in_unit("psf_fwhm", np.array([1.0]), u.m, "cat.fits")


def test_training_ranges_without_a_usable_flux_have_no_magnitude():
    labels = np.array([[0.1, 1.0, 0.0], [0.2, 2.0, 50.0]])
    assert "mag" not in training_ranges(["bt", "r_e", "flux"], labels, 27.0, {})
    assert "mag" not in training_ranges(["bt", "r_e"], labels[:, :2], 27.0, {})
    ints = training_ranges(["n"], np.array([[1], [3]], dtype=np.int64), 27.0, {})
    assert ints == {"n": (1.0, 3.0)}


def test_every_condition_is_checked_whatever_comes_before_it():
    contract = InputContract(
        0.2, 27.0, 32, condition_units={"a": "arcsec", "b": "arcsec"}, ranges={"a": (0.5, 0.9)}
    )
    assert contract.check_conditions(["a", "b"], np.array([1.0, -1.0]))[0] == (
        Flag.CONDITION_RANGE | Flag.BAD_CONDITION
    )
    assert contract.check_conditions(["a", "b"], np.array([1.2, 5.0]))[0] == Flag.CONDITION_RANGE
    assert contract.check_conditions(["b", "a"], np.array([np.nan, 1.0]))[0] == (
        Flag.BAD_CONDITION | Flag.CONDITION_RANGE
    )
    assert contract.check_conditions(["a", "b"], np.array([2.0, np.nan]))[0] == Flag.BAD_CONDITION


def test_wcs_axes_in_different_units():
    header = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": -0.2 / 3600, "CDELT2": 0.8}
    header |= {"CUNIT1": "deg", "CUNIT2": "arcsec"}  # a 0.2 x 0.8 arcsec pixel: side 0.4
    assert wcs_pixel_scale(fits.Header(header)) == pytest.approx(0.4)


def test_messages_say_what_to_do():
    wrong = CONTRACT.check_image(read_header_facts(fits.Header({"PIXSCALE": 0.262})))
    assert wrong.reason == (
        "pixel scale 0.262 arcsec (PIXSCALE), the model expects 0.168 (resample the cutouts, "
        "or use a model trained at that scale)"
    )
    assert CONTRACT.check_flux(-2.0)[1] == (
        "no aperture about the centre holds positive flux (at most -2): a negated image, or "
        "the sky over-subtracted?"
    )
    flam = read_header_facts(fits.Header({"BUNIT": "erg/(s cm2 Angstrom)"}))
    assert flam.unit_problem.endswith(
        "is not a flux density gampen can put on an AB zero point (give a MAGZP keyword)"
    )
    assert read_header_facts(fits.Header({"BUNIT": "K"})).zero_point_source == ""
    for dimensionless in ("", "1", "dex(1)"):
        facts = read_header_facts(fits.Header({"BUNIT": dimensionless}))
        assert (facts.zero_point, facts.unit_problem) == (None, "")
    count_rate = read_header_facts(fits.Header({"BUNIT": "ct / s"}))
    assert (count_rate.zero_point, count_rate.unit_problem) == (None, "")


def test_psf_pixel_scale_keywords_then_the_cd_or_cdelt_of_the_second_axis():
    d = 0.2 / 3600  # a 0.2 arcsec pixel in degrees
    assert psf_pixel_scale(fits.Header({"PIXSCALE": 0.262, "CD2_2": d})) == 0.262
    assert psf_pixel_scale(fits.Header({"SECPIX": 0.262, "CDELT2": d})) == 0.262
    # keywords that say nothing (0, negative, text) fall through to the WCS terms
    for nothing in (0.0, -0.262, "n/a"):
        header = fits.Header({"PIXSCALE": nothing, "SECPIX": nothing, "CD2_2": -d})
        assert psf_pixel_scale(header) == pytest.approx(0.2, rel=1e-12)
    assert psf_pixel_scale(fits.Header({"CDELT2": -d})) == pytest.approx(0.2, rel=1e-12)
    assert psf_pixel_scale(fits.Header({"CD2_2": 0.0, "CDELT2": d})) == pytest.approx(0.2)
    assert psf_pixel_scale(fits.Header({"CD2_2": 0.0, "CDELT2": 0.0})) is None
    assert psf_pixel_scale(fits.Header({"CDELT2": "n/a"})) is None
    assert psf_pixel_scale(fits.Header({"PIXSCALE": 0.0})) is None
    assert psf_pixel_scale(fits.Header()) is None
    # a 2 arcsec pixel (above 1, below 3600 / 3601 of a degree) and a 0.9 arcsec one
    assert psf_pixel_scale(fits.Header({"CD2_2": 2.0 / 3600})) == pytest.approx(2.0, rel=1e-12)
    assert psf_pixel_scale(fits.Header({"SECPIX": 0.9})) == 0.9


def test_cards_read_the_first_header_holding_a_keyword():
    image = fits.Header({"PIXSCALE": 0.2})
    primary = fits.Header({"PIXSCALE": 0.5, "MAGZP": 27.0})
    cards = Cards(image, primary)
    assert cards["PIXSCALE"] == 0.2 and cards["MAGZP"] == 27.0
    assert "MAGZP" in cards and "BUNIT" not in cards
    with pytest.raises(KeyError) as info:
        cards["BUNIT"]
    assert info.value.args == ("BUNIT",)


def test_psf_image_is_read_from_the_scalar_inputs():
    scalars = {"photometry": False, "conditions": [], "psf_image": True}
    metadata = {**_metadata(), "preprocessing": {"scalars": scalars}}
    assert InputContract.from_metadata(metadata).psf_image is True
    without = {**_metadata(), "preprocessing": {"scalars": {**scalars, "psf_image": False}}}
    assert InputContract.from_metadata(without).psf_image is False


def test_cd_keywords_of_either_row_or_column_take_precedence_over_cdelt():
    d = 0.2 / 3600
    base = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": -d, "CDELT2": d}
    assert wcs_pixel_scale(fits.Header(base)) == pytest.approx(0.2)
    for key in ("CD1_1", "CD1_2", "CD2_1", "CD2_2"):
        # one CD keyword: the others are 0 (FITS standard), a matrix of no area
        assert wcs_pixel_scale(fits.Header({**base, key: d})) is None, key
    # a blank CUNIT means degrees
    blank = fits.Header({**base, "CUNIT1": "", "CUNIT2": " "})
    assert wcs_pixel_scale(blank) == pytest.approx(0.2)


def test_boundaries_of_the_tolerances_are_inside():
    model = InputContract(pixel_scale=100.0, zero_point=30.0, input_size=32)
    for scale in (99.0, 101.0):  # off by exactly 1 % of 100
        assert model.check_image(HeaderFacts(pixel_scale=scale)).flags == 0
    assert model.check_image(HeaderFacts(pixel_scale=101.5)).flags == Flag.WRONG_PIXEL_SCALE
    shifted = model.check_image(HeaderFacts(zero_point=10.0, zero_point_source="MAGZP"))
    assert shifted.flags == 0 and shifted.factor == pytest.approx(1e8)  # exactly 20 mag
    flux = InputContract(0.2, 25.0, 32, ranges={"mag": (20.0, 24.0)})
    assert flux.check_flux(1e4) == (0, "")  # magnitude 15, exactly the limit
    assert flux.check_flux(1.0001e4)[0] == Flag.BAD_FLUX
    # a MAGZP exactly ZERO_POINT_TOLERANCE from what BUNIT means (astropy's AB scale)
    unit_zp = (1.0 * u.Unit("3631 Jy")).to_value(u.ABmag)
    keyword = unit_zp + ZERO_POINT_TOLERANCE
    while abs(unit_zp - keyword) > ZERO_POINT_TOLERANCE:
        keyword = np.nextafter(keyword, -np.inf)
    while abs(unit_zp - keyword) < ZERO_POINT_TOLERANCE:
        keyword = np.nextafter(keyword, np.inf)
    assert abs(unit_zp - keyword) == ZERO_POINT_TOLERANCE
    facts = read_header_facts(fits.Header({"BUNIT": "3631 Jy", "MAGZP": float(keyword)}))
    assert (facts.zero_point, facts.unit_problem) == (float(keyword), "")


def test_reasons_are_joined_with_a_semicolon():
    cards = {"PIXSCALE": 0.3, "BUNIT": "K", "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"}
    header = fits.Header({**cards, "CDELT1": -0.2 / 3600, "CDELT2": 0.2 / 3600})
    facts = read_header_facts(header)
    first, second = facts.unit_problem.split("; ")
    assert first == "PIXSCALE = 0.3 arcsec contradicts the WCS (0.2 arcsec)"
    assert second.startswith("BUNIT 'K' is not a flux density")
    reason = CONTRACT.check_image(facts).reason
    assert reason.split("; ") == [
        "pixel scale 0.3 arcsec (PIXSCALE), the model expects 0.168 (resample the cutouts, "
        "or use a model trained at that scale)",
        first,
        second,
    ]


def test_condition_checks_need_one_value_per_name_and_read_none_as_missing():
    with pytest.raises(ValueError):
        CONTRACT.check_conditions(["psf_fwhm", "depth"], np.array([0.7]))
    with pytest.raises(ValueError):
        CONTRACT.check_conditions(["psf_fwhm"], np.array([0.7, 0.8]))
    flags, reason = CONTRACT.check_conditions(["psf_fwhm"], [None])
    assert flags == Flag.BAD_CONDITION and reason == (
        "psf_fwhm = nan arcsec is missing or not positive"
    )
    # a condition with no unit may be negative (a colour, a log); one not in any range
    # does not stop the check of those after it
    contract = InputContract(
        0.2,
        27.0,
        32,
        condition_units={"psf_fwhm": "arcsec"},
        ranges={"psf_fwhm": (0.5, 0.9), "depth": (24.0, 27.0)},
    )
    assert contract.check_conditions(["colour"], np.array([-0.5])) == (0, "")
    flags, reason = contract.check_conditions(["colour", "depth"], np.array([-0.5, 28.0]))
    assert flags == Flag.CONDITION_RANGE and reason.startswith("depth = 28")
    flags, _ = contract.check_conditions(["depth", "psf_fwhm"], np.array([28.0, 5.0]))
    assert flags == Flag.CONDITION_RANGE | Flag.BAD_CONDITION


def test_condition_units_other_than_arcsec_and_a_broken_contract_unit():
    mas = InputContract(0.2, 27.0, 32, condition_units={"psf_fwhm": "mas"})
    assert mas.condition_in_unit("psf_fwhm", np.array([3.0]), u.pix, "c")[0] == pytest.approx(600)
    mega = mas.condition_in_unit("psf_fwhm", np.array([3e-6]), u.Unit("Mpix"), "c")
    assert mega[0] == pytest.approx(600)  # 3 pixels
    broken = InputContract(0.2, 27.0, 32, condition_units={"psf_fwhm": "zz"})
    with pytest.raises(CatalogError, match=r"^contract unit of psf_fwhm: unknown unit; got 'zz'"):
        broken.condition_in_unit("psf_fwhm", np.array([1.0]), u.arcsec, "c")
    with pytest.raises(CatalogError) as info:
        broken.condition_in_unit("psf_fwhm", np.array([1.0]), u.arcsec, "c")
    assert info.value.allowed == "an astropy unit" and str(info.value).endswith(
        "expected an astropy unit"
    )


def test_training_ranges_hold_float32_values_and_fluxes_below_one():
    conditions = {"psf_fwhm": np.array([0.7, 1.2], dtype=np.float32)}
    ranges = training_ranges(["flux"], np.array([[0.5], [2.0]]), 27.0, conditions)
    lo, hi = ranges["psf_fwhm"]
    assert lo <= float(np.float32(0.7)) and hi >= float(np.float32(1.2))
    assert (lo, hi) == (0.6999, 1.201)  # float32 0.7 is 0.69999998..., 1.2 is 1.20000005...
    mag_lo, mag_hi = 27.0 - 2.5 * math.log10(2.0), 27.0 - 2.5 * math.log10(0.5)
    assert ranges["mag"] == (math.floor(mag_lo * 100) / 100, math.ceil(mag_hi * 100) / 100)


def test_sky_noise_outside_the_training_range_is_a_condition_range_flag():
    """Within [0.04 / 1.2, 0.10 x 1.2] nothing; beyond either end CONDITION_RANGE with
    the value and the range named; a contract without a noise range checks nothing."""
    noisy = InputContract(0.168, 27.0, 96, ranges={"sky_sigma": (0.04, 0.10)})
    for sigma in (0.04 / 1.2, 0.04 / 1.2 * 1.001, 0.04, 0.07, 0.10, 0.12 * 0.999, 0.10 * 1.2):
        assert noisy.check_noise(sigma) == (0, "")  # the widened ends themselves are inside
    for sigma in (0.04 / 1.2 * 0.999, 0.02, 0.12 * 1.001, 0.16):
        flags, reason = noisy.check_noise(sigma)
        assert flags == Flag.CONDITION_RANGE
        assert reason == (
            f"sky noise {sigma:.3g} per pixel (measured on the border) is outside the training "
            "range [0.04, 0.1] (a deeper or shallower image than the model knows)"
        )
    assert CONTRACT.check_noise(0.5) == (0, "")  # no sky_sigma range: not checked
