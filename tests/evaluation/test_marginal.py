"""Marginal coverage: known answers from exact Gaussian posteriors (scipy), point masses, bands."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from scipy import stats

from gampen.calibration.ranks import randomised_pit
from gampen.errors import CatalogError
from gampen.evaluation.marginal import (
    LEVEL_GRID,
    binomial_band,
    coverage_from_pit,
    curve_from_hits,
    curve_from_pit,
    format_coverage,
    interval_coverage,
    interval_hits,
    pit_histogram,
)

from .posteriors import TABLE_LEVELS, expected_marginal, gaussian_population

N = 3000
CHECKED = np.array([0.1, 0.3, 0.5, 0.6827, 0.9, 0.9545])


def _tolerance(level: np.ndarray, n: int) -> np.ndarray:
    """Four binomial standard deviations, plus 0.5 point for the finite sample count."""
    return 4 * np.sqrt(level * (1 - level) / n) + 0.005


@pytest.fixture(scope="module", params=[1.0, 0.5, 2.0], ids=["calibrated", "narrow", "wide"])
def population(request):
    return request.param, gaussian_population(N, scale=request.param, seed=1)


def test_pit_coverage_equals_the_analytic_gaussian_answer(population):
    scale, pop = population
    truth = np.stack([np.asarray(pop.truth[p]) for p in pop.params], 1)
    pit = randomised_pit(pop.samples.astype(float), truth, rng=np.random.default_rng(0))
    for j in range(3):
        got = coverage_from_pit(pit[:, j], CHECKED)
        expected = expected_marginal(CHECKED, scale)
        assert np.all(np.abs(got - expected) < _tolerance(expected, N)), (j, got, expected)


def test_calibrated_passes_and_scaled_fail_in_the_right_direction(population):
    scale, pop = population
    truth = np.stack([np.asarray(pop.truth[p]) for p in pop.params], 1)
    pit = randomised_pit(pop.samples.astype(float), truth, rng=np.random.default_rng(0))
    for j, p in enumerate(pop.params):
        curve = curve_from_pit(pit[:, j])
        table = curve_from_hits(interval_hits(pop.predictions, truth[:, j], p))
        for c in (curve, table):
            deviation = c.empirical - c.levels
            inner = (c.levels > 0.2) & (c.levels < 0.96)
            if scale == 1.0:
                assert np.all(np.abs(deviation) < _tolerance(c.levels, N)), p
            elif scale < 1:  # too narrow: under-covers
                assert np.all(deviation[inner] < -_tolerance(c.levels[inner], N)), p
            else:  # too wide: over-covers
                assert np.all(deviation[inner] > _tolerance(c.levels[inner], N)), p


def test_table_interval_coverage_matches_the_analytic_answer(population):
    scale, pop = population
    for p in pop.params:
        hits = interval_hits(pop.predictions, np.asarray(pop.truth[p]), p)
        for name, level in TABLE_LEVELS.items():
            expected = expected_marginal(level, scale)
            assert abs(hits[name].mean() - expected) < _tolerance(expected, N), (p, name)


@pytest.mark.parametrize("edge", [0.0, 1.0])
def test_randomised_pit_stays_uniform_with_a_point_mass_at_a_bound(edge):
    # Each posterior: mass w at the bound, the rest uniform on [0, 1]; truth drawn alike.
    rng = np.random.default_rng(3)
    n, s = 4000, 300
    w = rng.uniform(0.1, 0.6, n)
    samples = np.where(rng.random((n, s)) < w[:, None], edge, rng.random((n, s)))
    truth = np.where(rng.random(n) < w, edge, rng.random(n))
    pit = randomised_pit(samples[:, :, None], truth[:, None], rng=rng)[:, 0]
    assert stats.kstest(pit, "uniform").pvalue > 1e-3
    naive = np.mean(samples < truth[:, None], axis=1)  # what a plain PIT would give
    assert stats.kstest(naive, "uniform").pvalue < 1e-10


def test_pit_handles_nan_and_exact_small_example():
    pit = np.array([0.5, 0.1, 0.98, np.nan])
    # |PIT - 1/2| = 0, 0.4, 0.48: inside the 50 % interval only the first; 90 %: two; 99 %: all.
    got = coverage_from_pit(pit, np.array([0.5, 0.9, 0.99]))
    np.testing.assert_allclose(got, [1 / 3, 2 / 3, 1])
    samples = np.array([[[1.0], [2.0], [np.nan]], [[1.0], [2.0], [3.0]]])
    out = randomised_pit(samples, np.array([[1.5], [np.nan]]), rng=np.random.default_rng(0))
    assert np.isnan(out).all()
    assert np.isnan(coverage_from_pit(np.array([np.nan]), np.array([0.5]))).all()


def test_pit_of_a_truth_above_every_sample_is_in_the_last_cell():
    samples = np.arange(9.0)[None, :, None]
    pit = randomised_pit(samples, np.array([[100.0]]), rng=np.random.default_rng(0))
    assert 0.9 <= pit[0, 0] <= 1.0  # rank 9 of 10 cells


def test_binomial_band_holds_95_percent_of_calibrated_draws():
    rng = np.random.default_rng(5)
    n, levels = 500, np.array([0.1, 0.6827, 0.99])
    lo, hi = binomial_band(levels, n)
    draws = rng.binomial(n, levels, size=(20000, 3)) / n
    inside = np.mean((draws >= lo) & (draws <= hi), axis=0)
    assert np.all(inside >= 0.95) and np.all(inside < 0.985)
    assert np.isnan(binomial_band(levels, 0)[0]).all()


def test_grid_spans_one_to_99_9_percent_and_holds_the_table_levels():
    assert LEVEL_GRID[0] == 0.01 and LEVEL_GRID[-1] == 0.999
    for level in (*TABLE_LEVELS.values(), 0.5):
        assert np.isclose(LEVEL_GRID, level).any()
    assert np.all(np.diff(LEVEL_GRID) > 0)


def test_interval_hits_count_truth_on_a_bound_as_inside():
    table = Table({"x_ci68_lo": [0.0, 0.0], "x_ci68_hi": [1.0, 1.0]})
    for name in ("ci95", "ci99"):
        table[f"x_{name}_lo"], table[f"x_{name}_hi"] = [0.0, 0.0], [1.0, 1.0]
    hits = interval_hits(table, np.array([0.0, 1.0000001]), "x")
    assert hits["ci68"].tolist() == [True, False]
    with pytest.raises(CatalogError, match="lacks column 'y_ci68_lo'"):
        interval_hits(table, np.zeros(2), "y")


def test_curve_summary_and_lookup():
    curve = curve_from_pit(np.full(10, 0.5))  # every truth at the centre: covered at any level
    assert curve.max_abs_deviation == pytest.approx(0.99)
    assert curve.at(0.6827) == 1.0
    assert set(curve.to_dict()) == {
        "n",
        "max_abs_deviation",
        "levels",
        "empirical",
        "band_lo",
        "band_hi",
    }
    with pytest.raises(CatalogError, match="level not on the coverage curve"):
        curve.at(0.123456)


def test_pit_histogram_counts_and_ks():
    h = pit_histogram(np.linspace(0.0, 1.0, 2000, endpoint=False) + 0.00025)
    assert h["n"] == 2000 and sum(h["counts"]) == 2000 and h["expected"] == 100
    assert set(h["counts"]) == {100} and h["ks_pvalue"] > 0.99
    assert h["band"][0] < 100 < h["band"][1]


def test_interval_coverage_quick_look_and_text_table():
    pop = gaussian_population(1000, scale=1.0, seed=2, n_samples=10)
    pop.predictions["flags"][:10] = 1  # fatal: left out
    coverage = interval_coverage(pop.predictions, pop.truth)
    assert coverage["bt"]["n"] == 990
    assert abs(coverage["r_e"]["ci68"] - 0.6827) < _tolerance(0.6827, 990)
    assert "ci68 (68.27%)" in format_coverage(coverage)
    with pytest.raises(CatalogError, match="lacks parameter"):
        interval_coverage(pop.predictions, pop.truth, params=["sersic_n"])
