"""Rendering: the truth flux, mag and bt against pixels, the noise model, small FFTs."""

from __future__ import annotations

import dataclasses
import math

import galsim
import numpy as np
import pytest

from gampen.simulation.config import SimulationConfig
from gampen.simulation.halflight import enclosed_flux
from gampen.simulation.priors import Galaxy, Neighbour, draw_galaxy
from gampen.simulation.render import (
    add_noise,
    central_profile,
    draw_noiseless,
    psf_profile,
    render_cutout,
)
from gampen.simulation.truth import TRUTH_COLUMNS, central_components, truth_row

#: Flux the PSF may carry across a circle's edge, as a fraction of the total.
PSF_SPILL = 0.003


def _small_galaxies(hsc: SimulationConfig, count: int) -> list[Galaxy]:
    drawn = (draw_galaxy(hsc, 5, i) for i in range(10 * count))
    return [g for g in drawn if g.r_disk < 1.0][:count]


def test_flux_and_mag_match_the_pixel_sum(hsc: SimulationConfig) -> None:
    """Noiseless, PSF-convolved, neighbour-free draws of galaxies with r_disk < 1 arcsec.

    A galaxy "fits" when at least 99.5 % of its intrinsic flux lies inside the circle
    inscribed in the cutout; those must match ``flux`` within 1 %.  De Vaucouleurs wings
    are long: a few galaxies with r_disk < 1" (big, bulge-dominated) lose more than 1 %
    outside the 16" cutout; for every galaxy the pixel sum must lie between the analytic
    flux inside the inscribed and the circumscribed circles.
    """
    half, scale = hsc.field_size / 2, hsc.survey.pixel_scale
    fitting = 0
    for galaxy in _small_galaxies(hsc, 40):
        row = dict(zip(TRUTH_COLUMNS, truth_row(galaxy, hsc), strict=True))
        pixels = draw_noiseless(galaxy, hsc, neighbours=False).array.sum()
        parts = central_components(galaxy, hsc)
        offset = math.hypot(galaxy.dx, galaxy.dy) * scale
        inside = enclosed_flux(parts, half - offset) / row["flux"]
        outside = enclosed_flux(parts, half * math.sqrt(2) + offset) / row["flux"]
        assert inside - PSF_SPILL <= pixels / row["flux"] <= outside + PSF_SPILL
        if inside >= 0.995:
            fitting += 1
            assert pixels == pytest.approx(row["flux"], rel=0.01)
            assert hsc.survey.zero_point - 2.5 * math.log10(pixels) == pytest.approx(
                row["mag"], abs=0.011
            )
    assert fitting >= 30


def test_mag_is_defined_from_flux(hsc: SimulationConfig) -> None:
    for i in range(20):
        _, _, _, _, flux, mag, *_ = truth_row(draw_galaxy(hsc, 5, i), hsc)
        assert mag == pytest.approx(27.0 - 2.5 * math.log10(flux), abs=1e-12)


def test_bt_is_the_bulge_share_of_the_drawn_flux(hsc: SimulationConfig) -> None:
    galaxy = dataclasses.replace(_small_galaxies(hsc, 1)[0], bt=0.35, r_disk=0.5, r_bulge=0.1)
    profile = central_profile(galaxy, hsc)
    psf = psf_profile(galaxy, hsc)
    image = galsim.ImageD(192, 192, scale=hsc.survey.pixel_scale)
    sums = [
        galsim.Convolve(part, psf).drawImage(image=image).array.sum() for part in profile.obj_list
    ]
    bt = truth_row(galaxy, hsc)[2]
    assert sums[0] / sum(sums) == pytest.approx(bt, rel=0.005)
    assert bt == pytest.approx(0.35, rel=1e-12)
    assert profile.flux == pytest.approx(truth_row(galaxy, hsc)[4], rel=1e-12)


def test_pure_disk_and_pure_bulge_render(hsc: SimulationConfig) -> None:
    galaxy = _small_galaxies(hsc, 1)[0]
    for bt in (0.0, 1.0):
        edge = dataclasses.replace(galaxy, bt=bt, neighbours=())
        assert central_profile(edge, hsc).flux == pytest.approx(truth_row(edge, hsc)[4])
        assert truth_row(edge, hsc)[2] == bt


def _bright_isolated(hsc: SimulationConfig) -> Galaxy:
    base = draw_galaxy(hsc, 5, 0)
    return dataclasses.replace(
        base, mag=17.5, bt=0.5, r_disk=0.6, r_bulge=0.2, sky_sigma=0.05, neighbours=()
    )


def test_noise_is_sky_limited_poisson_with_the_drawn_sky_sigma(hsc: SimulationConfig) -> None:
    galaxy = _bright_isolated(hsc)
    clean = draw_noiseless(galaxy, hsc).array
    noisy = draw_noiseless(galaxy, hsc)
    add_noise(noisy, galaxy, hsc, seed=99)
    residual = noisy.array - clean
    sky = hsc.noise.sky_level
    blank = clean < 1e-3 * galaxy.sky_sigma
    assert blank.sum() > 3000  # tolerances below are ~4 standard errors
    assert residual[blank].std() == pytest.approx(galaxy.sky_sigma, rel=0.05)
    assert abs(residual[blank].mean()) < 4 * galaxy.sky_sigma / math.sqrt(blank.sum())
    # where the galaxy outshines the sky, its own shot noise must be there too:
    # variance = sky_sigma^2 (1 + I / sky_level), i.e. gain = sky_level / sky_sigma^2
    core = clean > 3 * sky
    assert core.sum() > 10
    model = galaxy.sky_sigma * np.sqrt(1.0 + np.clip(clean, 0, None) / sky)
    assert (residual / model).std() == pytest.approx(1.0, abs=0.03)
    assert (residual[core] / model[core]).std() == pytest.approx(1.0, abs=0.25)
    # must fail: sky-only noise badly underestimates the scatter in the core
    assert (residual[core] / galaxy.sky_sigma).std() > 1.8


def test_render_is_deterministic_and_float32(hsc: SimulationConfig) -> None:
    galaxy = draw_galaxy(hsc, 5, 3)
    first = render_cutout(galaxy, hsc, 1234)
    assert first.dtype == np.float32 and first.shape == (96, 96)
    np.testing.assert_array_equal(first, render_cutout(galaxy, hsc, 1234))
    assert not np.array_equal(first, render_cutout(galaxy, hsc, 1235))


def test_far_neighbours_keep_every_fft_small(
    hsc: SimulationConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moving big neighbours to the far corners changes no FFT size: each object is drawn
    on its own stamp.  (Drawing the summed scene would size one FFT for the whole scene.)
    Warnings are errors in this suite, so a GalSim FFT-size warning would fail too.
    """
    sizes: list[int] = []
    original = galsim.GSObject.drawFFT_makeKImage

    def spy(self: galsim.GSObject, image: galsim.Image):
        kimage, wrap = original(self, image)
        sizes.append(wrap)
        return kimage, wrap

    monkeypatch.setattr(galsim.GSObject, "drawFFT_makeKImage", spy)

    def fft_sizes(distance: float) -> list[int]:
        neighbours = tuple(
            Neighbour(
                x=sx * distance,
                y=sy * distance,
                mag=18.0,
                n=n,
                half_light_radius=hlr,
                q=0.3,
                pa=30.0,
            )
            for sx, sy, n, hlr in ((-1, -1, 4.0, 2.0), (1, -1, 1.0, 1.0), (1, 1, 0.5, 0.3))
        )
        galaxy = dataclasses.replace(draw_galaxy(hsc, 5, 0), r_disk=1.0, neighbours=neighbours)
        sizes.clear()
        draw_noiseless(galaxy, hsc)
        return list(sizes)

    near, far = fft_sizes(3.0), fft_sizes(0.98 * hsc.field_size / 2)
    assert len(far) == 4
    assert far == near
    assert max(far) < galsim.GSParams().maximum_fft_size / 4
