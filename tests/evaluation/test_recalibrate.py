"""Spread recalibration: PIT, coverage and the fitted factors against independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gampen.errors import GampenValueError
from gampen.evaluation.recalibrate import (
    CROWDED,
    MIN_CLASS,
    coverage_from_pit,
    fit_by_brightness,
    fit_by_class,
    fit_spread,
    pit,
)
from gampen.infer.spread import BrightnessSplit, Recalibration, SpreadMap


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


def test_fit_recovers_a_width_power_and_calibrates_each_width_quarter():
    """Claimed widths that vary too little: true sd = w ** 1.5 for a claimed sd of w, so the
    map needs (w / w_ref) ** 0.5.  A single scale (power 0) is calibrated on average only."""
    rng = np.random.default_rng(11)
    n = 6000
    w = np.exp(rng.uniform(np.log(0.25), np.log(4.0), size=(n, 1)))
    mu = rng.normal(size=(n, 1))
    truth = mu + w**1.5 * rng.normal(size=(n, 1))
    samples = mu[:, None] + w[:, None] * rng.normal(size=(n, 400, 1))
    fit = fit_spread(samples[:3000], truth[:3000])
    assert abs(fit.spread.power[0] - 0.5) < 0.12
    w_ref = np.median(samples[:3000, :, 0].std(axis=1))
    assert fit.spread.width_ref[0] == pytest.approx(w_ref)
    # Width w maps to a sd of w ** 1.5: scale (w_ref) ** 0.5 at the reference width.
    assert fit.spread.scale[0] == pytest.approx(w_ref**0.5, rel=0.08)
    held, t_held, w_held = samples[3000:], truth[3000:, 0], w[3000:, 0]
    flat = SpreadMap(fit.spread.scale, fit.spread.tail, fit.spread.knee)  # power 0
    levels = np.array([0.6827, 0.9545])
    quarters = np.quantile(w_held, [0.25, 0.75])
    for sel in (w_held < quarters[0], w_held > quarters[1]):  # narrowest, widest quarter
        fitted = coverage_from_pit(pit(fit.spread.apply(held[sel])[:, :, 0], t_held[sel]), levels)
        single = coverage_from_pit(pit(flat.apply(held[sel])[:, :, 0], t_held[sel]), levels)
        np.testing.assert_allclose(fitted, levels, atol=0.055)  # 4 binomial sd at n=750
        assert np.abs(single - levels)[0] > 0.08  # one scale for all fails each extreme


def test_fit_refuses_bad_shapes_and_tiny_sets():
    with pytest.raises(GampenValueError, match="galaxies, samples, params"):
        fit_spread(np.zeros((30, 10)), np.zeros((30, 1)))
    with pytest.raises(GampenValueError, match="too few galaxies"):
        fit_spread(np.zeros((5, 10, 1)), np.zeros((5, 1)))


def test_crowded_galaxies_get_a_map_of_their_own():
    """Clean galaxies' widths are right; crowded ones' errors are 1.6x wider than claimed.
    One map for all cannot serve both groups; a map per group does."""
    rng = np.random.default_rng(15)
    n = 4000
    crowding = np.where(rng.random(n) < 0.4, rng.uniform(0.2, 2.0, n), rng.uniform(0, 0.08, n))
    crowded = crowding > CROWDED
    mu = rng.normal(size=(n, 1))
    truth = mu + np.where(crowded, 1.6, 1.0)[:, None] * rng.normal(size=(n, 1))
    samples = mu[:, None] + rng.normal(size=(n, 300, 1))
    clean_fit, crowded_fit = fit_by_class(samples[:2000], truth[:2000], crowding[:2000], None)
    assert clean_fit.faint is None and crowded_fit.faint is None  # no brightness parameter
    assert clean_fit.main.spread.scale[0] == pytest.approx(1.0, rel=0.08)
    assert crowded_fit.main.spread.scale[0] == pytest.approx(1.6, rel=0.1)
    maps = Recalibration(clean_fit.main.spread, crowded_fit.main.spread, CROWDED)
    single = fit_spread(samples[:2000], truth[:2000]).spread
    held, t_held, c_held = samples[2000:], truth[2000:, 0], crowding[2000:]
    levels = np.array([0.6827])
    for group in (c_held > CROWDED, c_held <= CROWDED):
        per_group = maps.apply(held[group], c_held[group])[:, :, 0]
        one = single.apply(held[group])[:, :, 0]
        got = coverage_from_pit(pit(per_group, t_held[group]), levels)
        np.testing.assert_allclose(got, levels, atol=0.045)  # 4 binomial sd at n=800
        assert abs(coverage_from_pit(pit(one, t_held[group]), levels)[0] - levels[0]) > 0.06
    few = fit_by_class(samples[:300], truth[:300], np.full(300, 1.0), None)
    assert few[1] is None  # no clean galaxies: one map for all


def test_faint_galaxies_get_a_map_of_their_own():
    """Parameter 1 is the brightness, uniform on (-2, 2): faint galaxies (below 0) have
    errors 1.5x wider than claimed in it, bright ones are right.  The split falls at the
    median, 0, each side gets its own factor, and held-out coverage is right on both
    sides, which one map for all cannot do."""
    rng = np.random.default_rng(16)
    n = 4000
    mu = np.stack([rng.normal(size=n), rng.uniform(-2, 2, size=n)], 1)
    faint = mu[:, 1] < 0
    widths = np.stack([np.ones(n), np.where(faint, 1.5, 1.0)], 1)
    truth = mu + 0.1 * widths * rng.normal(size=(n, 2))
    samples = mu[:, None] + 0.1 * rng.normal(size=(n, 300, 2))
    clean, crowded = fit_by_class(samples[:2000], truth[:2000], np.zeros(2000), 1)
    assert crowded is None and clean.faint is not None
    assert abs(clean.below) < 0.15  # the median brightness (its sd: ~0.045)
    assert clean.main.spread.scale[1] == pytest.approx(1.0, rel=0.08)
    assert clean.faint.spread.scale[1] == pytest.approx(1.5, rel=0.1)
    assert clean.faint.spread.scale[0] == pytest.approx(1.0, rel=0.08)
    maps = BrightnessSplit(clean.main.spread, clean.faint.spread, clean.below, 1)
    single = fit_spread(samples[:2000], truth[:2000]).spread
    held, t_held, f_held = samples[2000:], truth[2000:, 1], faint[2000:]
    levels = np.array([0.6827])
    for group in (f_held, ~f_held):
        got = coverage_from_pit(pit(maps.apply(held[group])[:, :, 1], t_held[group]), levels)
        np.testing.assert_allclose(got, levels, atol=0.045)  # 4 binomial sd at n=1000
        one = coverage_from_pit(pit(single.apply(held[group])[:, :, 1], t_held[group]), levels)
        assert abs(one[0] - levels[0]) > 0.06
    # Too few on one side, or no brightness parameter: one map for all.
    m = mu[:2000, 1]
    lopsided = np.concatenate([np.flatnonzero(m < -0.2)[: MIN_CLASS - 1], np.flatnonzero(m > 0.2)])
    assert fit_by_brightness(samples[lopsided], truth[lopsided], 1, clean.below).faint is None
    assert fit_by_brightness(samples[:2000], truth[:2000], None, None).faint is None


def _correlated_posteriors(n: int, claimed_rho: float, true_rho: float, seed: int):
    """Gaussian posteriors of two parameters with the right widths whose samples claim a
    correlation ``claimed_rho`` while the truths scatter with ``true_rho``."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, 2))
    width = rng.uniform(0.5, 2.0, size=(n, 1, 1))
    claimed = np.linalg.cholesky(np.array([[1.0, claimed_rho], [claimed_rho, 1.0]]))
    true = np.linalg.cholesky(np.array([[1.0, true_rho], [true_rho, 1.0]]))
    samples = mu[:, None] + width * (rng.normal(size=(n, 400, 2)) @ claimed.T)
    truth = mu + width[:, 0] * (rng.normal(size=(n, 2)) @ true.T)
    return samples, truth


def _joint_coverage(samples: np.ndarray, truth: np.ndarray, level: float) -> float:
    """Share of truths inside the Gaussian ``level`` region of each galaxy's sample mean and
    covariance (numpy's covariance, scipy's chi-square): an oracle apart from the fit's."""
    inside = []
    for s, t in zip(samples, truth, strict=True):
        d = t - s.mean(axis=0)
        inside.append(d @ np.linalg.solve(np.cov(s, rowvar=False), d) <= stats.chi2.ppf(level, 2))
    return float(np.mean(inside))


def test_fit_shrinks_over_confident_correlations_to_the_truths():
    samples, truth = _correlated_posteriors(3000, claimed_rho=0.95, true_rho=0.8, seed=21)
    fit = fit_spread(samples[:1500], truth[:1500])
    # (1 - shrink) 0.95 = 0.8 gives 0.158; the grid steps by 27 %.
    assert 0.12 <= fit.spread.shrink <= 0.21
    held, t_held = samples[1500:], truth[1500:]
    for level in (0.6827, 0.9545):
        after = _joint_coverage(fit.spread.apply(held), t_held, level)
        before = _joint_coverage(held, t_held, level)
        assert abs(after - level) < 0.035  # 3 binomial sd at n=1500
        assert level - before > 0.1  # the thin regions under-cover: this must fail


def test_fit_leaves_right_correlations_and_single_parameters_alone():
    samples, truth = _correlated_posteriors(1500, claimed_rho=0.9, true_rho=0.9, seed=22)
    assert fit_spread(samples, truth).spread.shrink <= 0.01
    assert fit_spread(samples[:, :, :1], truth[:, :1]).spread.shrink == 0.0
