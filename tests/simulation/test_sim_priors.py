"""The priors: a few thousand draws must follow the hsc preset within sampling error.

Each Kolmogorov-Smirnov test uses a fixed seed and the threshold p > 1e-3; the
``must fail`` cases show that the same tests reject a wrong distribution.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gampen.simulation.config import SimulationConfig
from gampen.simulation.priors import Galaxy, draw_galaxy, noise_seed

DRAWS = 3000
P_MIN = 1e-3


@pytest.fixture(scope="module")
def galaxies(hsc: SimulationConfig) -> list[Galaxy]:
    return [draw_galaxy(hsc, 2024, i) for i in range(DRAWS)]


def _column(galaxies: list[Galaxy], name: str) -> np.ndarray:
    return np.array([getattr(g, name) for g in galaxies])


def _uniform_p(values: np.ndarray, lo: float, hi: float) -> float:
    return float(stats.kstest(values, stats.uniform(lo, hi - lo).cdf).pvalue)


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [
        ("mag", 17.0, 23.0),
        ("bt", 0.0, 1.0),
        ("q_disk", 0.2, 1.0),
        ("q_bulge", 0.6, 1.0),
        ("pa", 0.0, 180.0),
        ("dx", -0.5, 0.5),
        ("dy", -0.5, 0.5),
        ("psf_fwhm", 0.5, 0.9),
        ("sky_sigma", 0.04, 0.10),
    ],
)
def test_uniform_parameters(galaxies: list[Galaxy], name: str, lo: float, hi: float) -> None:
    values = _column(galaxies, name)
    assert values.min() >= lo and values.max() < hi
    assert _uniform_p(values, lo, hi) > P_MIN


def test_disk_radius_is_log_uniform_and_bulge_a_uniform_fraction(galaxies: list[Galaxy]) -> None:
    r_disk, r_bulge = _column(galaxies, "r_disk"), _column(galaxies, "r_bulge")
    assert _uniform_p(np.log(r_disk), math.log(0.3), math.log(3.0)) > P_MIN
    assert _uniform_p(r_bulge / r_disk, 0.15, 0.6) > P_MIN


def test_must_fail_wrong_distributions_are_rejected(galaxies: list[Galaxy]) -> None:
    r_disk = _column(galaxies, "r_disk")
    assert _uniform_p(r_disk, 0.3, 3.0) < 1e-6  # log-uniform is not uniform
    assert _uniform_p(_column(galaxies, "mag"), 17.0, 24.0) < 1e-6  # wrong range
    assert _uniform_p(_column(galaxies, "q_disk"), 0.3, 1.0) < 1e-6


def test_neighbour_count(galaxies: list[Galaxy]) -> None:
    counts = np.bincount([len(g.neighbours) for g in galaxies], minlength=4)
    assert len(counts) == 4
    expected = DRAWS * np.array([0.5, 1 / 6, 1 / 6, 1 / 6])
    assert stats.chisquare(counts, expected).pvalue > P_MIN
    # must fail: "1-3 neighbours always" or "0-3 equally likely" are rejected
    assert stats.chisquare(counts, DRAWS * np.full(4, 0.25)).pvalue < 1e-6


def test_neighbour_parameters(galaxies: list[Galaxy], hsc: SimulationConfig) -> None:
    pairs = [(g, nb) for g in galaxies for nb in g.neighbours]
    assert len(pairs) > 0.9 * DRAWS  # 0.5 x mean(1, 2, 3) = 1 per galaxy on average
    n = np.array([nb.n for _, nb in pairs])
    hlr = np.array([nb.half_light_radius for _, nb in pairs])
    q = np.array([nb.q for _, nb in pairs])
    pa = np.array([nb.pa for _, nb in pairs])
    assert _uniform_p(n, 0.5, 4.0) > P_MIN
    assert _uniform_p(np.log(hlr), math.log(0.2), math.log(2.0)) > P_MIN
    assert _uniform_p(q, 0.3, 1.0) > P_MIN
    assert _uniform_p(pa, 0.0, 180.0) > P_MIN
    # magnitude: uniform in [max(17, m_central - 1), 24.5] given the central magnitude
    lower = np.array([max(17.0, g.mag - 1.0) for g, _ in pairs])
    mag = np.array([nb.mag for _, nb in pairs])
    assert np.all(mag >= lower) and np.all(mag < 24.5)
    assert _uniform_p((mag - lower) / (24.5 - lower), 0.0, 1.0) > P_MIN


def test_neighbour_positions(galaxies: list[Galaxy], hsc: SimulationConfig) -> None:
    scale, half = hsc.survey.pixel_scale, hsc.field_size / 2
    xs, ys = [], []
    for g in galaxies:
        for nb in g.neighbours:
            assert math.hypot(nb.x - g.dx * scale, nb.y - g.dy * scale) >= 2.5
            xs.append(nb.x)
            ys.append(nb.y)
    x, y = np.array(xs), np.array(ys)
    assert np.all(np.abs(x) <= half) and np.all(np.abs(y) <= half)
    # uniform over the cutout outside the 2.5" disc: the outer ring (|x| or |y| > half/2)
    # is never excluded, so it holds its area share of the accepted positions
    outer = (np.abs(x) > half / 2) | (np.abs(y) > half / 2)
    disc = math.pi * 2.5**2 / (2 * half) ** 2
    expected = 0.75 / (1.0 - disc)
    assert abs(outer.mean() - expected) < 4 * math.sqrt(expected * (1 - expected) / len(x))


def test_draws_are_reproducible_and_independent_per_object(hsc: SimulationConfig) -> None:
    assert draw_galaxy(hsc, 7, 11) == draw_galaxy(hsc, 7, 11)
    assert draw_galaxy(hsc, 7, 11) != draw_galaxy(hsc, 7, 12)
    assert draw_galaxy(hsc, 7, 11) != draw_galaxy(hsc, 8, 11)
    seeds = {noise_seed(7, i) for i in range(1000)}
    assert len(seeds) == 1000 and min(seeds) >= 1 and max(seeds) < 2**31
