"""The nuisances of real data in the simulator, each against an independent oracle: GalSim's
own half-light radii and FWHMs, pixel sums, measured noise correlations, and the first
presets' galaxies unchanged."""

from __future__ import annotations

import dataclasses
import math

import galsim
import numpy as np
import pytest
from astropy.io import fits

from gampen.simulation.config import SimulationConfig
from gampen.simulation.halflight import circular_half_light_radius
from gampen.simulation.presets import load_config
from gampen.simulation.priors import Galaxy, draw_galaxy
from gampen.simulation.render import (
    central_profile,
    correlate,
    psf_profile,
    render_cutout,
    residual_sky,
)
from gampen.simulation.truth import (
    NUISANCE_COLUMNS,
    TRUTH_COLUMNS,
    central_components,
    clumps,
    truth_columns,
    truth_row,
)


@pytest.fixture(scope="module")
def real() -> SimulationConfig:
    return load_config("hsc-real")


def _with(config: SimulationConfig, **sections) -> SimulationConfig:
    return load_config("hsc", {name: dict(fields) for name, fields in sections.items()})


def test_the_first_presets_draw_the_same_galaxies_with_no_new_columns(
    hsc: SimulationConfig, real: SimulationConfig
) -> None:
    assert not hsc.has_nuisances and real.has_nuisances
    assert truth_columns(hsc) == TRUTH_COLUMNS
    assert truth_columns(real) == TRUTH_COLUMNS + NUISANCE_COLUMNS
    # hsc-real's pure disks and bulges change bt (test_sim_pure_shares.py): off here
    no_shares = {"pure_disk_fraction": 0.0, "pure_bulge_fraction": 0.0}
    without = load_config("hsc-real", {"central": no_shares})
    for i in range(20):
        clean, rich = draw_galaxy(hsc, 7, i), draw_galaxy(without, 7, i)
        assert clean == Galaxy(**{**dataclasses.asdict(clean), "neighbours": clean.neighbours})
        assert (clean.bulge_n, clean.disk_n, clean.clump_count, clean.noise_correlation) == (
            4.0,
            1.0,
            0,
            0.0,
        )
        # the nuisances are drawn last: every other parameter is the clean galaxy's
        for name in ("mag", "bt", "r_disk", "q_disk", "pa", "dx", "sky_sigma", "neighbours"):
            assert getattr(rich, name) == getattr(clean, name), name
        assert rich.psf_fwhm_true == clean.psf_fwhm and len(truth_row(clean, hsc)) == 14


@pytest.mark.parametrize("object_id", range(6))
def test_sersic_indices_keep_r_e_exact(object_id: int) -> None:
    config = _with(None, central={"bulge_n": [1.5, 6.0], "disk_n": [0.7, 1.5]})
    galaxy = draw_galaxy(config, 3, object_id)
    assert galaxy.bulge_n != 4.0 or galaxy.disk_n != 1.0
    row = dict(zip(truth_columns(config), truth_row(galaxy, config), strict=True))
    inside = _shot_enclosed(central_profile(galaxy, config), row["r_e"])
    assert inside == pytest.approx(0.5 * row["flux"], rel=0.01)


def _shot_enclosed(profile: galsim.GSObject, radius: float) -> float:
    """Flux of ``profile`` inside ``radius`` by GalSim's photon shooting (clumps included,
    no FFT): two million photons on pixels of radius / 100, so about 0.1 % noise."""
    scale = radius / 100
    size = 2 * math.ceil(1.2 * radius / scale) + 1
    image = profile.drawImage(
        nx=size, ny=size, scale=scale, method="phot", n_photons=2_000_000, rng=galsim.BaseDeviate(1)
    )
    y, x = (np.mgrid[:size, :size] - (size - 1) / 2) * scale
    return float(image.array[np.hypot(x, y) < radius].sum())


@pytest.mark.parametrize("object_id", range(8))
def test_clumps_are_counted_in_r_e(object_id: int) -> None:
    config = _with(None, central={"clump_probability": 1.0, "clump_fraction": [0.3, 0.6]})
    galaxy = dataclasses.replace(draw_galaxy(config, 5, object_id), bt=0.2)
    row = dict(zip(truth_columns(config), truth_row(galaxy, config), strict=True))
    knots = clumps(galaxy, config)
    assert knots is not None and len(knots.points) == galaxy.clump_count
    # oracle: GalSim shoots photons through the whole profile, clumps included
    inside = _shot_enclosed(central_profile(galaxy, config), row["r_e"])
    step = knots.flux / galaxy.clump_count  # the enclosed flux jumps by a clump at r_e
    assert abs(inside - 0.5 * row["flux"]) <= 0.01 * row["flux"] + step


def test_must_fail_r_e_without_the_clumps_is_another_radius() -> None:
    config = _with(None, central={"clump_probability": 1.0, "clump_fraction": [0.3, 0.6]})
    moved = 0
    for i in range(10):
        galaxy = dataclasses.replace(draw_galaxy(config, 5, i), bt=0.2)
        without = circular_half_light_radius(central_components(galaxy, config))
        moved += abs(without / truth_row(galaxy, config)[3] - 1) > 0.01
    assert moved >= 6  # unless exactly half the clumps lie inside, they move r_e


def test_bt_and_flux_count_the_clumps_as_disk_light() -> None:
    config = _with(None, central={"clump_probability": 1.0, "bulge_n": [2.0, 5.0]})
    for i in range(5):
        galaxy = draw_galaxy(config, 9, i)
        row = dict(zip(truth_columns(config), truth_row(galaxy, config), strict=True))
        profile = central_profile(galaxy, config)
        assert profile.flux == pytest.approx(row["flux"], rel=1e-12)
        bulge = central_components(galaxy, config)[0].flux
        assert row["bt"] == pytest.approx(bulge / profile.flux, rel=1e-12)
        assert row["bt"] == pytest.approx(galaxy.bt, rel=1e-12)
        assert row["mag"] == pytest.approx(27.0 - 2.5 * math.log10(profile.flux), abs=1e-12)


@pytest.mark.parametrize("rho", [0.1, 0.3, 0.45])
def test_correlated_noise_has_the_asked_correlation_and_the_same_sigma(rho: float) -> None:
    white = np.random.default_rng(1).normal(0.0, 0.07, (400, 400))
    noise = correlate(white, rho)
    assert noise.std() == pytest.approx(0.07, rel=0.01)
    for axis in (0, 1):
        measured = np.corrcoef(noise.ravel(), np.roll(noise, 1, axis=axis).ravel())[0, 1]
        assert measured == pytest.approx(rho, abs=0.01)
    untouched = np.corrcoef(white.ravel(), np.roll(white, 1, axis=0).ravel())[0, 1]
    assert abs(untouched) < 0.01  # the case that must fail: white noise is uncorrelated


def test_rendered_noise_is_correlated_only_when_asked(hsc: SimulationConfig) -> None:
    config = _with(None, noise={"correlation": [0.3, 0.3]})
    galaxy = dataclasses.replace(draw_galaxy(config, 2, 0), mag=30.0, neighbours=())
    pixels = render_cutout(galaxy, config, 11).astype(np.float64)
    measured = np.corrcoef(pixels[:, :-1].ravel(), pixels[:, 1:].ravel())[0, 1]
    assert measured == pytest.approx(0.3, abs=0.04)
    assert pixels.std() == pytest.approx(galaxy.sky_sigma, rel=0.05)
    clean = dataclasses.replace(draw_galaxy(hsc, 2, 0), mag=30.0, neighbours=())
    white = render_cutout(clean, hsc, 11).astype(np.float64)
    assert abs(np.corrcoef(white[:, :-1].ravel(), white[:, 1:].ravel())[0, 1]) < 0.04


def test_residual_sky_is_the_drawn_pedestal_and_gradient() -> None:
    config = _with(None, noise={"pedestal": 0.5, "gradient": 0.4})
    for i in range(5):
        galaxy = draw_galaxy(config, 4, i)
        sky = residual_sky(galaxy, 96, 0.168)
        sigma = galaxy.sky_sigma
        assert sky.mean() == pytest.approx(galaxy.sky_pedestal * sigma, abs=1e-12)
        assert abs(galaxy.sky_pedestal) <= 0.5 and 0 <= galaxy.sky_gradient <= 0.4
        angle = math.radians(galaxy.gradient_angle)
        # the plane rises by sky_gradient x sigma from the centre to the edge along its angle
        edge = (47.5 + 48 * math.sin(angle), 47.5 + 48 * math.cos(angle))
        y, x = np.mgrid[:96, :96]
        nearest = np.argmin(np.hypot(y - edge[0], x - edge[1]))
        rise = (sky.ravel()[nearest] - sky.mean()) / sigma
        assert rise == pytest.approx(galaxy.sky_gradient, abs=0.03 * max(galaxy.sky_gradient, 0.1))


def test_psf_family_fwhm_and_reported_error(real: SimulationConfig) -> None:
    galaxies = [draw_galaxy(real, 8, i) for i in range(400)]
    kinds = [g.psf_model for g in galaxies]
    assert 0.12 < kinds.count("kolmogorov") / len(kinds) < 0.28
    betas = [g.psf_beta for g in galaxies if g.psf_model == "moffat"]
    assert min(betas) >= 2.5 and max(betas) <= 4.5
    for galaxy in galaxies[:6]:
        psf = psf_profile(galaxy, real)
        measured = psf.calculateFWHM(scale=0.01, size=400)
        g = math.hypot(galaxy.psf_g1, galaxy.psf_g2)
        assert g <= 0.03
        # a shear stretches one axis by 1/sqrt(1 - g^2) around (1 + g): FWHM within that
        assert measured == pytest.approx(galaxy.psf_fwhm_true, rel=0.02 + g)
    errors = np.log([g.psf_fwhm / g.psf_fwhm_true for g in galaxies])
    inexact = errors[errors != 0.0]  # a share of the PSF models is exact (see below)
    assert inexact.std() == pytest.approx(real.psf.fwhm_error, rel=0.15)
    assert abs(inexact.mean()) < 0.01


def test_sersic_indices_and_clumps_follow_their_priors(real: SimulationConfig) -> None:
    galaxies = [draw_galaxy(real, 6, i) for i in range(600)]
    bulge = np.array([g.bulge_n for g in galaxies])
    assert bulge.min() >= 1.5 and bulge.max() <= 6.0
    assert np.allclose(bulge / 0.05, np.round(bulge / 0.05))  # on the 0.05 grid
    disk = np.array([g.disk_n for g in galaxies])
    assert real.central.disk_n == (0.6, 1.6)
    assert disk.min() >= 0.6 and disk.max() <= 1.6 and disk.std() > 0.15
    clumpy = [g for g in galaxies if g.clump_count]
    assert 0.27 < len(clumpy) / len(galaxies) < 0.39
    assert all(0.05 <= g.clump_fraction <= 0.3 and 10 <= g.clump_count <= 40 for g in clumpy)
    assert all(g.clump_fraction == 0.0 for g in galaxies if not g.clump_count)


#: Draws behind the share tests: a binomial share's sd is at most 0.5 / sqrt(4000) = 0.008.
N_SHARES = 4000


def _within(count: int, n: int, p: float) -> bool:
    """``count`` of ``n`` is within 4 binomial sigma of the share ``p``."""
    return abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def _spiked(**central) -> SimulationConfig:
    return _with(None, central={"canonical_n_fraction": 0.5, **central})


def test_canonical_n_spikes_half_the_bulges_and_half_the_disks_independently() -> None:
    # ranges that hold neither 4 nor 1: every 4.0 and 1.0 is the spike, p = 0.5 exactly
    config = _spiked(bulge_n=[1.5, 3.0], disk_n=[0.6, 0.9])
    galaxies = [draw_galaxy(config, 21, i) for i in range(N_SHARES)]
    bulge = np.array([g.bulge_n for g in galaxies])
    disk = np.array([g.disk_n for g in galaxies])
    classical, exponential = bulge == 4.0, disk == 1.0
    assert _within(classical.sum(), N_SHARES, 0.5) and _within(exponential.sum(), N_SHARES, 0.5)
    # independent spikes: both in a quarter, and a bulge's spike says nothing of its disk's
    assert _within((classical & exponential).sum(), N_SHARES, 0.25)
    assert _within((exponential & ~classical).sum(), N_SHARES, 0.25)
    # the others stay uniform over their range on the 0.05 grid
    for values, spike, (lo, hi) in (
        (bulge, classical, (1.5, 3.0)),
        (disk, exponential, (0.6, 0.9)),
    ):
        rest = values[~spike]
        assert rest.min() >= lo and rest.max() <= hi
        assert np.allclose(rest / 0.05, np.round(rest / 0.05))
        sd = (hi - lo) / math.sqrt(12)  # a uniform's; the grid keeps the mean at the midpoint
        assert abs(rest.mean() - (lo + hi) / 2) < 4 * sd / math.sqrt(len(rest))
        assert rest.std() == pytest.approx(sd, rel=0.1)


def test_the_spike_adds_to_the_grid_draws_that_land_on_the_canonical_n(
    real: SimulationConfig,
) -> None:
    # hsc-real: bulge_n [1.5, 6] and disk_n [0.6, 1.6] hold 4 and 1, each a 0.05-wide bin
    assert real.central.canonical_n_fraction == 0.5
    galaxies = [draw_galaxy(real, 22, i) for i in range(N_SHARES)]
    classical = sum(g.bulge_n == 4.0 for g in galaxies)
    exponential = sum(g.disk_n == 1.0 for g in galaxies)
    assert _within(classical, N_SHARES, 0.5 + 0.5 * 0.05 / (6.0 - 1.5))
    assert _within(exponential, N_SHARES, 0.5 + 0.5 * 0.05 / (1.6 - 0.6))


def test_must_fail_no_spike_without_a_canonical_fraction() -> None:
    config = _with(None, central={"bulge_n": [1.5, 3.0], "disk_n": [0.6, 0.9]})
    galaxies = [draw_galaxy(config, 21, i) for i in range(N_SHARES)]
    assert not any(g.bulge_n == 4.0 or g.disk_n == 1.0 for g in galaxies)


#: A nuisance config with every range the spikes touch (fwhm_error, bulge_n, disk_n).
_NUISANCES = {
    "psf": {"fwhm_error": 0.05, "kolmogorov_fraction": 0.2, "beta": [2.5, 4.5]},
    "central": {"bulge_n": [1.5, 6.0], "disk_n": [0.6, 1.6], "clump_probability": 0.33},
    "noise": {"correlation": [0.0, 0.3], "pedestal": 0.3, "gradient": 0.2},
}


def _nuisances(psf=None, central=None) -> SimulationConfig:
    return _with(
        None,
        psf=_NUISANCES["psf"] | (psf or {}),
        central=_NUISANCES["central"] | (central or {}),
        noise=_NUISANCES["noise"],
    )


def test_zero_spike_fractions_keep_the_random_streams() -> None:
    without = _nuisances()
    zero = _nuisances({"fwhm_exact_fraction": 0.0}, {"canonical_n_fraction": 0.0})
    assert zero.to_dict() == without.to_dict()  # an off field is left out: same hash
    for i in range(200):
        assert draw_galaxy(zero, 5, i) == draw_galaxy(without, 5, i)
    # oracle: the draws of the code before the spikes (commit 577446a, run by hand); the
    # gradient angle is the last draw, so every draw before it took the same numbers
    expected = [
        (0.8141252522162404, 0.8307385085077084, "moffat", 4.4, 0.95, 39, 298.1286025266819),
        (0.7349250446773471, 0.7177446432259211, "moffat", 2.75, 0.8, 0, 307.2881151527632),
        (0.7301831883812698, 0.7434034899745235, "moffat", 1.55, 0.6, 0, 269.35177165088527),
    ]
    for i, values in enumerate(expected):
        g = draw_galaxy(zero, 5, i)
        drawn = (g.psf_fwhm, g.psf_fwhm_true, g.psf_model, g.bulge_n, g.disk_n)
        assert (*drawn, g.clump_count, g.gradient_angle) == values
    # the case that must fail: a fraction that is on takes numbers from the stream
    for fields in (
        {"psf": {"fwhm_exact_fraction": 0.5}},
        {"central": {"canonical_n_fraction": 0.5}},
    ):
        on = _nuisances(fields.get("psf"), fields.get("central"))
        moved = sum(draw_galaxy(on, 5, i) != draw_galaxy(without, 5, i) for i in range(20))
        assert moved == 20


def test_an_exact_fwhm_fraction_reports_half_the_psfs_exactly() -> None:
    config = _nuisances({"fwhm_exact_fraction": 0.5})
    galaxies = [draw_galaxy(config, 23, i) for i in range(N_SHARES)]
    ratios = np.array([g.psf_fwhm / g.psf_fwhm_true for g in galaxies])
    exact = np.array([g.psf_fwhm == g.psf_fwhm_true for g in galaxies])
    assert _within(exact.sum(), N_SHARES, 0.5)
    first = galaxies[int(np.argmax(exact))]
    row = dict(zip(truth_columns(config), truth_row(first, config), strict=True))
    assert row["psf_fwhm"] == row["psf_fwhm_true"]  # in the truth catalog as well
    # the others: ln(reported / rendered) ~ N(0, 0.05), so sum(x^2) / 0.05^2 ~ chi2(k)
    errors = np.log(ratios[~exact])
    k = len(errors)
    assert abs((errors**2).sum() / 0.05**2 - k) < 4 * math.sqrt(2 * k)
    assert abs(errors.mean()) < 4 * 0.05 / math.sqrt(k)


def test_must_fail_no_exact_fwhm_without_the_fraction() -> None:
    config = _nuisances()
    galaxies = [draw_galaxy(config, 23, i) for i in range(N_SHARES)]
    assert not any(g.psf_fwhm == g.psf_fwhm_true for g in galaxies)


@pytest.mark.parametrize("value", [-0.1, 1.5, "half"])
@pytest.mark.parametrize(
    "section, field", [("psf", "fwhm_exact_fraction"), ("central", "canonical_n_fraction")]
)
def test_spike_fractions_are_validated(section: str, field: str, value) -> None:
    from gampen.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"{section}\.{field}"):
        load_config("hsc", {section: {field: value}})
    for allowed in (0, 1):  # the ends are allowed
        config = load_config("hsc", {section: {field: allowed}})
        assert getattr(getattr(config, section), field) == allowed


def test_nuisance_fields_are_validated() -> None:
    from gampen.errors import ConfigError

    for overrides, field in [
        ({"psf": {"kolmogorov_fraction": 1.5}}, "psf.kolmogorov_fraction"),
        ({"psf": {"beta": [5.0, 2.0]}}, "psf.beta"),
        ({"noise": {"correlation": [0.0, 0.6]}}, "noise.correlation"),
        ({"central": {"disk_n": [0.1, 1.0]}}, "central.disk_n"),
        ({"psf": {"fwhm_err": 0.1}}, "psf.fwhm_err"),
    ]:
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            load_config("hsc", overrides)


def _psf_folder(folder):
    """Two survey PSF images: a Gaussian of FWHM 0.7 arcsec at the survey's 0.168 arcsec,
    and a Moffat of FWHM 0.9 arcsec sampled twice as finely (its header says so)."""
    folder.mkdir()
    gaussian = galsim.Gaussian(fwhm=0.7).drawImage(nx=41, ny=41, scale=0.168)
    fits.PrimaryHDU(gaussian.array * 7.0).writeto(folder / "a.fits")  # any normalisation
    moffat = galsim.Moffat(beta=3.0, fwhm=0.9).drawImage(nx=81, ny=81, scale=0.084)
    fits.PrimaryHDU(moffat.array, header=fits.Header({"PIXSCALE": 0.084})).writeto(
        folder / "b.fits"
    )
    return folder


def test_survey_psf_images_replace_the_profile(tmp_path):
    folder = _psf_folder(tmp_path / "psfs")
    config = load_config("hsc", {"psf": {"images": str(folder), "fwhm_error": 0.05}})
    galaxies = [draw_galaxy(config, 12, i) for i in range(40)]
    files = {g.psf_file for g in galaxies}
    assert files == {"a.fits", "b.fits"}
    for g in galaxies[:6]:
        # the FWHM measured on each image is the drawn one: 0.7 and 0.9 arcsec
        expected = 0.7 if g.psf_file == "a.fits" else 0.9
        assert g.psf_fwhm_true == pytest.approx(expected, rel=0.03) and g.psf_model == "image"
        profile = psf_profile(g, config)
        assert profile.flux == pytest.approx(1.0, rel=1e-6)
        measured = profile.drawImage(nx=81, ny=81, scale=0.02, method="no_pixel").calculateFWHM()
        assert measured == pytest.approx(expected, rel=0.05)
    errors = np.log([g.psf_fwhm / g.psf_fwhm_true for g in galaxies])
    assert 0.02 < errors.std() < 0.09
    row = dict(zip(truth_columns(config), truth_row(galaxies[0], config), strict=True))
    assert row["psf_file"] == galaxies[0].psf_file and row["psf_model"] == "image"
    assert render_cutout(galaxies[0], config, 3).shape == (96, 96)


def test_a_missing_psf_folder_is_named():
    from gampen.errors import ConfigError

    config = load_config("hsc", {"psf": {"images": "no/such/psfs"}})
    with pytest.raises(ConfigError, match=r"psf\.images: not a folder; got 'no/such/psfs'"):
        draw_galaxy(config, 1, 0)


def test_a_sky_bump_is_the_drawn_gaussian_in_the_rendered_cutout() -> None:
    from astropy.modeling.models import Gaussian2D

    config = _with(None, noise={"bump": 0.8, "bump_width": [4.0, 9.0]})
    scale, side = config.survey.pixel_scale, config.survey.stamp_size
    for i in range(4):
        galaxy = draw_galaxy(config, 6, i)
        assert abs(galaxy.sky_bump) <= 0.8 and 4.0 <= galaxy.bump_sigma <= 9.0
        assert max(abs(galaxy.bump_dx), abs(galaxy.bump_dy)) <= side * scale
        flat = dataclasses.replace(galaxy, sky_bump=0.0)
        cutout = render_cutout(galaxy, config, 3).astype(np.float64)
        bump = cutout - render_cutout(flat, config, 3)  # the same galaxy and noise without it
        # oracle: astropy's Gaussian, in pixels, centred at the cutout's centre + offset
        centre = (side - 1) / 2.0
        model = Gaussian2D(
            amplitude=galaxy.sky_bump * galaxy.sky_sigma,
            x_mean=centre + galaxy.bump_dx / scale,
            y_mean=centre + galaxy.bump_dy / scale,
            x_stddev=galaxy.bump_sigma / scale,
            y_stddev=galaxy.bump_sigma / scale,
        )
        y, x = np.mgrid[:side, :side]
        expected = model(x, y)
        rounding = 2 * np.finfo(np.float32).eps * (np.abs(cutout) + galaxy.sky_sigma)
        assert np.all(np.abs(bump - expected) <= rounding)  # the cutouts are float32
        # the case that must fail: the offset read as pixels instead of arcsec
        wrong = Gaussian2D(
            galaxy.sky_bump * galaxy.sky_sigma,
            centre + galaxy.bump_dx,
            centre + galaxy.bump_dy,
            galaxy.bump_sigma / scale,
            galaxy.bump_sigma / scale,
        )(x, y)
        assert np.abs(bump - wrong).max() > 1e-3 * abs(galaxy.sky_bump) * galaxy.sky_sigma


def test_a_sky_bump_is_recorded_and_off_by_default(real: SimulationConfig) -> None:
    from gampen.simulation.truth import BUMP_COLUMNS

    assert real.noise.bump == 0.0 and not set(BUMP_COLUMNS) & set(truth_columns(real))
    bumpy = load_config("hsc-real", {"noise": {"bump": 0.5}})
    assert truth_columns(bumpy) == TRUTH_COLUMNS + NUISANCE_COLUMNS + BUMP_COLUMNS
    galaxy = draw_galaxy(bumpy, 9, 3)
    row = dict(zip(truth_columns(bumpy), truth_row(galaxy, bumpy), strict=True))
    assert [row[name] for name in BUMP_COLUMNS] == [
        galaxy.sky_bump,
        galaxy.bump_sigma,
        galaxy.bump_dx,
        galaxy.bump_dy,
    ]
    assert galaxy.sky_bump != 0.0
    # drawn last: every other parameter of the galaxy is the one drawn without the bump
    plain = draw_galaxy(real, 9, 3)
    assert dataclasses.replace(galaxy, **{f: getattr(plain, f) for f in _BUMP_FIELDS}) == plain
    for bad in ({"bump": -0.1}, {"bump_width": [0.0, 3.0]}, {"bump_width": [5.0, 2.0]}):
        with pytest.raises(ValueError, match="bump"):
            load_config("hsc", {"noise": bad})


_BUMP_FIELDS = ("sky_bump", "bump_sigma", "bump_dx", "bump_dy")
