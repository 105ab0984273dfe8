"""Spread recalibration: PIT, coverage and the fitted factors against independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gampen.errors import GampenValueError
from gampen.evaluate.recalibrate import coverage_from_pit, fit_spread, inverse_stretch, pit
from gampen.infer.spread import SpreadMap


def test_pit_is_scipys_mean_percentile_rank():
    rng = np.random.default_rng(3)
    samples = rng.integers(0, 6, size=(40, 25)).astype(float)  # many ties
    truth = rng.integers(0, 6, size=40).astype(float)
    expected = [
        stats.percentileofscore(s, t, kind="mean") / 100
        for s, t in zip(samples, truth, strict=True)
    ]
    np.testing.assert_allclose(pit(samples, truth), expected)


def test_coverage_from_pit_matches_equal_tailed_intervals():
    rng = np.random.default_rng(4)
    samples = rng.normal(size=(500, 400))
    truth = rng.normal(size=500) * 1.3
    levels = np.array([0.2, 0.6827, 0.9545])
    lo = np.quantile(samples, (1 - levels) / 2, axis=1)
    hi = np.quantile(samples, (1 + levels) / 2, axis=1)
    direct = ((truth >= lo) & (truth <= hi)).mean(axis=1)
    # Quantile interpolation moves a boundary by less than one sample: ~1/S of the PIT.
    np.testing.assert_allclose(coverage_from_pit(pit(samples, truth), levels), direct, atol=0.01)


def test_plain_spread_scales_the_covariance_exactly():
    rng = np.random.default_rng(5)
    base = rng.multivariate_normal([1, -2, 0.5], [[1, 0.6, 0], [0.6, 2, -0.3], [0, -0.3, 0.5]], 800)
    a = np.array([0.5, 2.0, 1.3])
    out = SpreadMap(a).apply(base[None])[0]
    np.testing.assert_allclose(np.cov(out.T), np.outer(a, a) * np.cov(base.T), rtol=1e-10)
    # The median, the catalog's point estimate, does not move.
    np.testing.assert_allclose(np.median(out, 0), np.median(base, 0), atol=1e-12)


def test_tail_factor_moves_only_samples_beyond_the_knee():
    rng = np.random.default_rng(8)
    base = rng.normal(size=(1, 4001, 1))
    median = np.median(base)
    t = (base - median) / base.std()
    out = SpreadMap(np.array([1.0]), np.array([3.0]), knee=1.0).apply(base)
    t_out = (out - median) / base.std()
    inside = np.abs(t) <= 1
    np.testing.assert_allclose(t_out[inside], t[inside], atol=1e-12)
    # Beyond the knee: 1 + 3 (|t| - 1), sign kept (worked by hand).
    np.testing.assert_allclose(np.abs(t_out[~inside]), 1 + 3 * (np.abs(t[~inside]) - 1))
    assert np.all(np.sign(t_out) == np.sign(t))
    # Ranks (and so the copula with other parameters) are unchanged.
    assert np.array_equal(np.argsort(out[0, :, 0]), np.argsort(base[0, :, 0]))


def test_inverse_stretch_undoes_the_map():
    t = np.linspace(-6, 6, 241)[:, None]
    core, tail, knee = np.array([0.7, 1.8]), np.array([2.5, 0.4]), np.array([0.5, 2.0])
    forward = SpreadMap(core, tail, knee).stretch(t)
    back = inverse_stretch(forward, core, tail, knee)
    np.testing.assert_allclose(back, np.repeat(t, 2, 1), atol=1e-12)


def test_map_from_a_bundle_calibration():
    names = ["bt", "flux"]
    identity = {"scale": {"bt": 1.0, "flux": 1.0}}
    assert SpreadMap.from_calibration(identity, names) is None
    cal = {
        "scale": {"bt": 0.5, "flux": 2.0},
        "tail": {"bt": 1.5, "flux": 1.0},
        "knee": {"bt": 0.5, "flux": 2.0},
    }
    spread = SpreadMap.from_calibration(cal, names)
    # Worked by hand at t = 1 and t = 3: bt 0.5 (0.5 + 1.5 (t - 0.5)); flux 2 t (inside).
    np.testing.assert_allclose(spread.stretch(np.array([1.0, 1.0])), [0.625, 2.0])
    np.testing.assert_allclose(spread.stretch(np.array([3.0, 3.0])), [2.125, 2.0 * 2 + 2 * 1])


def _gaussian_posteriors(n: int, true_sigma: np.ndarray, claimed_sigma: np.ndarray, seed: int):
    """Truths drawn from N(mu, true_sigma); samples claim N(mu, claimed_sigma) per galaxy."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, len(true_sigma)))
    per_galaxy = rng.uniform(0.5, 2.0, size=(n, 1))  # heteroscedastic: widths vary
    truth = mu + per_galaxy * true_sigma * rng.normal(size=mu.shape)
    samples = mu[:, None] + (per_galaxy * claimed_sigma)[:, None] * rng.normal(
        size=(n, 500, len(true_sigma))
    )
    return samples, truth


def test_fit_recovers_known_miscalibration():
    true_sigma = np.ones(3)
    claimed = np.array([0.5, 1.0, 2.0])  # over-confident, right, under-confident
    samples, truth = _gaussian_posteriors(3000, true_sigma, claimed, seed=6)
    fit = fit_spread(samples, truth)
    # 3000 galaxies pin a width to ~2 %; the fine grid step is 0.5 %.  Gaussian posteriors
    # need no tail correction: out to 2.5 sd (beyond, few truths constrain it) the map is
    # the plain rescaling t -> (true / claimed) t.
    np.testing.assert_allclose(fit.spread.scale, true_sigma / claimed, rtol=0.06)
    for t in (0.5, 1.0, 2.0, 2.5):
        ratio = fit.spread.stretch(np.full(3, t)) / t
        np.testing.assert_allclose(ratio, true_sigma / claimed, rtol=0.1)
    assert fit.loss_after[0] < 0.1 * fit.loss_before[0]
    assert fit.loss_after[2] < 0.1 * fit.loss_before[2]
    assert fit.loss_after[1] <= fit.loss_before[1]


def test_fitted_factors_make_held_out_coverage_nominal():
    claimed = np.array([0.6, 1.6])
    samples, truth = _gaussian_posteriors(4000, np.ones(2), claimed, seed=7)
    fit = fit_spread(samples[:2000], truth[:2000])
    held_out = fit.spread.apply(samples[2000:])
    levels = np.array([0.6827, 0.9545])
    for j in range(2):
        before = coverage_from_pit(pit(samples[2000:, :, j], truth[2000:, j]), levels)
        after = coverage_from_pit(pit(held_out[:, :, j], truth[2000:, j]), levels)
        # Binomial sd at n=2000 is <= 1.1 points; allow 4 sd.
        np.testing.assert_allclose(after, levels, atol=0.045)
        assert np.max(np.abs(before - levels)) > 0.08  # the uncalibrated ones must fail


def test_fit_recovers_heavy_tails():
    """Truths from a Student-t (3 dof) judged by Gaussian samples: core and tails differ."""
    rng = np.random.default_rng(9)
    n = 3000
    truth = stats.t.rvs(3, size=(n, 1), random_state=rng) * np.sqrt(1 / 3)  # unit variance
    samples = rng.normal(size=(n, 500, 1))
    fit = fit_spread(samples, truth)
    assert fit.spread.tail[0] > 1.2 and fit.spread.scale[0] < 0.9  # narrower core, wider tails
    levels = np.array([0.6827, 0.9545, 0.9973])
    fresh = stats.t.rvs(3, size=(n, 1), random_state=rng) * np.sqrt(1 / 3)
    new = rng.normal(size=(n, 500, 1))
    after = coverage_from_pit(pit(fit.spread.apply(new)[:, :, 0], fresh[:, 0]), levels)
    plain = coverage_from_pit(pit(new[:, :, 0], fresh[:, 0]), levels)
    np.testing.assert_allclose(after, levels, atol=0.035)  # 4 binomial sd at n=3000
    assert np.abs(plain - levels)[0] > 0.04  # the unmapped Gaussian over-covers the core


def test_fit_refuses_bad_shapes_and_tiny_sets():
    with pytest.raises(GampenValueError, match="galaxies, samples, params"):
        fit_spread(np.zeros((30, 10)), np.zeros((30, 1)))
    with pytest.raises(GampenValueError, match="too few galaxies"):
        fit_spread(np.zeros((5, 10, 1)), np.zeros((5, 1)))
