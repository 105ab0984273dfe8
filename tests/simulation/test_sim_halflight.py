"""The truth ``r_e``: circular half-light radius of the sheared bulge + disk, vs GalSim."""

from __future__ import annotations

import dataclasses

import galsim
import numpy as np
import pytest
from scipy import special

from gampen.simulation.config import SimulationConfig
from gampen.simulation.halflight import SersicComponent, circular_half_light_radius, enclosed_flux
from gampen.simulation.priors import draw_galaxy
from gampen.simulation.render import central_profile
from gampen.simulation.truth import central_components


def _galsim_hlr(profile: galsim.GSObject, r_e: float) -> float:
    """GalSim's pixel-counting half-light radius, with pixels of r_e / 20 (~0.1 % bias)."""
    scale = r_e / 20
    return profile.calculateHLR(scale=scale, size=int(np.ceil(2.5 * r_e / scale)))


@pytest.mark.parametrize("object_id", [0, 1, 2, 3])
def test_r_e_matches_galsim_calculate_hlr(hsc: SimulationConfig, object_id: int) -> None:
    galaxy = draw_galaxy(hsc, 11, object_id)
    r_e = circular_half_light_radius(central_components(galaxy, hsc))
    assert r_e == pytest.approx(_galsim_hlr(central_profile(galaxy, hsc), r_e), rel=0.005)


def test_must_fail_ignoring_the_shear_is_caught(hsc: SimulationConfig) -> None:
    galaxy = dataclasses.replace(draw_galaxy(hsc, 11, 0), q_disk=0.3, q_bulge=0.7, bt=0.3)
    circular = [dataclasses.replace(c, q=1.0) for c in central_components(galaxy, hsc)]
    wrong = circular_half_light_radius(circular)
    reference = _galsim_hlr(central_profile(galaxy, hsc), wrong)
    assert abs(wrong / reference - 1) > 0.05


@pytest.mark.parametrize("n", [0.5, 1.0, 2.5, 4.0])
def test_single_round_component_gives_its_own_radius(n: float) -> None:
    radius = circular_half_light_radius([SersicComponent(3.0, n, 0.7, 1.0)])
    assert radius == pytest.approx(0.7, rel=1e-10)


def test_zero_flux_component_is_ignored() -> None:
    disk = SersicComponent(5.0, 1.0, 1.2, 0.4)
    assert circular_half_light_radius([SersicComponent(0.0, 4.0, 0.3, 0.8), disk]) == (
        circular_half_light_radius([disk])
    )
    with pytest.raises(ValueError, match="positive flux"):
        circular_half_light_radius([SersicComponent(0.0, 4.0, 0.3, 0.8)])


def test_enclosed_flux_is_half_at_r_e_and_all_far_out() -> None:
    parts = [SersicComponent(2.0, 4.0, 0.3, 0.7), SersicComponent(6.0, 1.0, 1.0, 0.2)]
    r_e = circular_half_light_radius(parts)
    assert enclosed_flux(parts, r_e) == pytest.approx(4.0, rel=1e-9)
    assert enclosed_flux(parts, 1e4) == pytest.approx(8.0, rel=1e-6)
    # a very flat disk needs many quadrature nodes: check against a dense brute-force sum
    flat = [SersicComponent(1.0, 1.0, 1.0, 0.05)]
    radius = circular_half_light_radius(flat)
    phi = (np.arange(200_000) + 0.5) * np.pi / 200_000
    g2 = 0.05 * np.cos(phi) ** 2 + np.sin(phi) ** 2 / 0.05
    b_1 = special.gammaincinv(2.0, 0.5)
    brute = np.mean(special.gammainc(2.0, b_1 * radius * np.sqrt(g2)) / g2)
    assert brute == pytest.approx(0.5, rel=1e-9)
