"""Recalibration fit: PIT, coverage, class splits and the fitted numbers against oracles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from gampen.calibration.fit import (
    CORES,
    CROWDED,
    FIT_LEVELS,
    FIT_WEIGHTS,
    JUDGE_RESAMPLES,
    MIN_CLASS,
    ONE,
    CalibrationFit,
    Galaxies,
    JointFrame,
    Split,
    _challenge,
    _judged_loss,
    _resample_weights,
    candidate_splits,
    choose_split,
    coverage_below,
    coverage_from_pit,
    coverage_over_cores,
    end_positions,
    fit_calibration,
    fit_marginals,
    fit_shrink,
    inside,
    is_below,
    joint_coverage,
    pit,
    refit,
)
from gampen.calibration.maps import BrightnessSplit, Recalibration, SpreadMap, shrink_correlations
from gampen.errors import GampenValueError

LEVELS = np.concatenate([FIT_LEVELS, [0.001, 0.5, 0.9999]])


def _weibull_inside(samples: np.ndarray, truth: np.ndarray, level: float) -> np.ndarray:
    """Whether numpy's ``weibull`` equal-tailed interval of each row holds its truth: the
    catalog's intervals, computed independently of the code under test."""
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=1, method="weibull")
    return (lo <= truth) & (truth <= hi)


@pytest.mark.parametrize("n_samples", [1, 3, 7, 60, 1000])
def test_pit_decides_inside_exactly_as_the_catalogs_intervals(n_samples):
    rng = np.random.default_rng(n_samples)
    smooth = rng.normal(size=(2000, n_samples)), 1.5 * rng.normal(size=2000)  # outside too
    ties = rng.integers(0, 5, (600, n_samples)).astype(float), rng.integers(-1, 6, 600) * 1.0
    for samples, truth in (smooth, ties):
        got = np.abs(pit(samples, truth) - 0.5)
        for level in LEVELS:
            np.testing.assert_array_equal(got <= level / 2, _weibull_inside(samples, truth, level))


def test_pit_works_in_double_precision():
    rng = np.random.default_rng(4)
    samples, truth = rng.normal(size=(300, 50)).astype(np.float32), rng.normal(size=300)
    single = pit(samples, truth.astype(np.float32))
    np.testing.assert_array_equal(
        single, pit(samples.astype(np.float64), truth.astype(np.float32).astype(np.float64))
    )
    assert single.dtype == np.float64


def test_the_old_mid_rank_pit_disagrees_with_the_catalog():
    """The check above has teeth: the PIT the fit used before, (below + tied / 2) / S,
    decides differently from the catalog's intervals for some truths."""
    rng = np.random.default_rng(5)
    samples, truth = rng.normal(size=(4000, 60)), rng.normal(size=4000)
    mid_rank = ((samples < truth[:, None]).sum(1) + 0.5) / 60
    assert any(
        not np.array_equal(np.abs(mid_rank - 0.5) <= c / 2, _weibull_inside(samples, truth, c))
        for c in FIT_LEVELS
    )


def test_pit_by_hand():
    samples = np.array([[0.0, 1.0, 2.0, 3.0]] * 5)
    truth = np.array([1.5, -1.0, 5.0, 1.0, 0.25])
    # 1.5: half way from x_(2) = 1 to x_(3): (2 + 0.5) / 5.  Below all: 0; above all: 1.
    # Equal to x_(2) alone: 2 / 5.  0.25: a quarter of the way from x_(1): 1.25 / 5.
    np.testing.assert_allclose(pit(samples, truth), [0.5, 0.0, 1.0, 0.4, 0.25])
    # Equal to x_(2..4): the point of [2/6, 4/6] nearest 1/2; to x_(1..2): 2/6.
    tied = np.array([[0.0, 1.0, 1.0, 1.0, 3.0], [1.0, 1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(pit(tied, np.array([1.0, 1.0])), [0.5, 2 / 6])


def test_end_positions_interpolate_as_numpys_weibull_quantiles():
    rng = np.random.default_rng(2)
    for n in (2, 5, 999):
        ordered = np.sort(rng.normal(size=n))
        low, high, f = end_positions(n, FIT_LEVELS)
        ends = (1 - f) * ordered[low] + f * ordered[high]
        p = np.concatenate([(1 - FIT_LEVELS) / 2, (1 + FIT_LEVELS) / 2])
        np.testing.assert_allclose(ends, np.quantile(ordered, p, method="weibull"), atol=1e-12)


def test_coverage_from_pit_counts_by_hand():
    values = np.array([0.5, 0.1, 0.9, 0.7, 0.3])  # |PIT - 1/2|: 0, .4, .4, .2, .2
    np.testing.assert_allclose(
        coverage_from_pit(values, np.array([0.0, 0.4, 0.5, 0.8])), [0.2, 0.6, 0.6, 1.0]
    )


def _fit(split: Split, core, tail, power, width_ref, knee) -> CalibrationFit:
    """A calibration with these numbers, as the fit would return it."""
    k = len(tail)
    return CalibrationFit(
        split,
        np.array(core, dtype=float),
        np.array(tail, dtype=float),
        np.array(power, dtype=float),
        np.array(width_ref, dtype=float),
        (k - 1, 0.0),  # a split by a parameter: by the last, at 0
        np.zeros(k),
        np.zeros(k),
        np.array(knee, dtype=float),
    )


def test_inside_is_the_weibull_interval_of_the_mapped_samples():
    """The fit's interval ends, per class, against the maps applied by
    :mod:`gampen.calibration.maps` and numpy's quantiles of the result."""
    rng = np.random.default_rng(1)
    n = 400
    samples = rng.standard_t(4, size=(n, 301, 2)) * rng.uniform(0.5, 2, size=(n, 1, 2))
    truth = 1.5 * rng.normal(size=(n, 2))
    crowding = rng.uniform(0, 0.2, n)
    flux = np.median(samples[:, :, 1], axis=1)
    galaxies = Galaxies.from_samples(samples, truth, crowding > CROWDED, {"flux": flux < 0.0})
    core = [[0.8, 1.3], [1.2, 0.7], [0.6, 1.9], [1.0, 1.1]]
    fit = _fit(Split(True, "flux"), core, [2.0, 0.5], [0.3, -0.2], [1.0, 1.2], [1.0, 0.7])
    covered = inside(fit, galaxies)
    mapped = fit.maps().apply(samples, crowding)
    for j in range(2):
        for i, level in enumerate(FIT_LEVELS):
            expected = _weibull_inside(mapped[:, :, j], truth[:, j], level)
            np.testing.assert_array_equal(covered[:, j, i], expected)


def test_inside_counts_a_truth_on_an_interval_end_as_inside():
    """Integer samples and truths under the identity map: truths sit exactly on interval
    ends, which the catalog's closed intervals hold."""
    rng = np.random.default_rng(6)
    # Neighbouring distinct samples differ by 1, so an end is an integer only where it is
    # an order statistic itself: then it is exact, whatever the arithmetic.
    samples = rng.integers(-1, 2, size=(500, 30, 1)).astype(float)
    truth = rng.integers(-2, 3, size=(500, 1)).astype(float)
    galaxies = Galaxies.from_samples(samples, truth, np.zeros(500))
    covered = inside(_fit(Split(), [[1.0]], [1.0], [0.0], [1.0], [1.0]), galaxies)
    on_an_end = 0
    for i, level in enumerate(FIT_LEVELS):
        expected = _weibull_inside(samples[:, :, 0], truth[:, 0], level)
        np.testing.assert_array_equal(covered[:, 0, i], expected)
        ends = np.quantile(
            samples[:, :, 0], [(1 - level) / 2, (1 + level) / 2], axis=1, method="weibull"
        )
        on_an_end += np.sum((ends == truth[:, 0]).any(axis=0))
    assert on_an_end > 100  # the case this test is about does happen


def test_coverage_over_cores_on_every_side_of_zero():
    """Interval ends of any sign (a few samples bent far can put one on the wrong side of
    the median) or 0, truths of any sign or 0: against ``a low <= v <= a high``."""
    rng = np.random.default_rng(7)
    n, half = 400, len(FIT_LEVELS)
    low = rng.choice([-2.0, -0.5, 0.0, 0.5], size=(n, half)) * rng.uniform(0.5, 1.5, (n, half))
    high = low + rng.choice([0.0, 0.7, 2.5], size=(n, half))
    v = rng.choice([-1.0, 0.0, 0.3, 1.2], size=n)
    cells = rng.integers(0, 2, n)
    got = coverage_over_cores(np.concatenate([low, high], axis=1), v, cells)
    a = CORES[:, None, None]
    held = (a * low <= v[:, None]) & (v[:, None] <= a * high)  # (cores, n, L)
    for cell in range(2):
        np.testing.assert_allclose(got[cell], held[:, cells == cell].mean(axis=1).T)


@pytest.mark.parametrize("integer", [False, True])
def test_coverage_over_cores_is_the_coverage_of_each_core(integer):
    """Every core factor at once, against ``a * low <= v <= a * high`` galaxy by galaxy;
    integer samples tie at the median, so some ends are 0 or on one side of it."""
    rng = np.random.default_rng(3)
    n, s = 300, 9 if integer else 200
    samples = rng.normal(size=(n, s, 1))
    truth = rng.normal(size=(n, 1))
    if integer:  # ties at the median, truths on it
        samples, truth = np.round(samples), np.round(truth)
    galaxies = Galaxies.from_samples(samples, truth, np.zeros(n))
    quantiles, excess = galaxies.bend(0, 1.0)
    ends = quantiles + 0.7 * excess  # tail factor 1.7
    v = galaxies.t[:, 0] / galaxies.sd[:, 0] ** 0.2
    cells = rng.integers(0, 3, n)
    got = coverage_over_cores(ends, v, cells)
    half = len(FIT_LEVELS)
    assert got.shape == (3, half, len(CORES))
    for index in (0, 150, ONE, 500, len(CORES) - 1):
        a = CORES[index]
        held = (a * ends[:, :half] <= v[:, None]) & (v[:, None] <= a * ends[:, half:])
        for cell in range(3):
            np.testing.assert_allclose(got[cell, :, index], held[cells == cell].mean(axis=0))


def _gaussian_posteriors(
    n: int, true_sigma: np.ndarray, claimed_sigma: np.ndarray, seed: int, n_samples: int = 500
):
    """Truths drawn from N(mu, true_sigma); samples claim N(mu, claimed_sigma) per galaxy."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, len(true_sigma)))
    per_galaxy = rng.uniform(0.5, 2.0, size=(n, 1))  # heteroscedastic: widths vary
    truth = mu + per_galaxy * true_sigma * rng.normal(size=mu.shape)
    samples = mu[:, None] + (per_galaxy * claimed_sigma)[:, None] * rng.normal(
        size=(n, n_samples, len(true_sigma))
    )
    return samples, truth


def _coverage(samples: np.ndarray, truth: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Coverage of numpy's weibull intervals (independent of the fit's machinery)."""
    return np.array([_weibull_inside(samples, truth, c).mean() for c in levels])


def test_fit_recovers_known_miscalibration():
    true_sigma = np.ones(3)
    claimed = np.array([0.5, 1.0, 2.0])  # over-confident, right, under-confident
    samples, truth = _gaussian_posteriors(2000, true_sigma, claimed, seed=6, n_samples=200)
    fit, evidence = fit_calibration(samples, truth, np.zeros(2000), {}, seed=0)
    assert evidence == {"chosen": "none", "steps": []}  # one class: nothing to split
    # 2000 galaxies pin a width to ~1.6 %.  Gaussian posteriors need no tail correction: out
    # to 2.5 sd (beyond, few truths constrain it) the map is the plain rescaling.
    np.testing.assert_allclose(fit.core[0], true_sigma / claimed, rtol=0.06)
    for t in (0.5, 1.0, 2.0, 2.5):
        ratio = fit.spread(0).stretch(np.full(3, t)) / t
        np.testing.assert_allclose(ratio, true_sigma / claimed, rtol=0.1)
    assert fit.loss_after[0] < 0.1 * fit.loss_before[0]
    assert fit.loss_after[2] < 0.1 * fit.loss_before[2]
    assert fit.loss_after[1] <= fit.loss_before[1]
    assert fit.n_fitted == 10 and np.all(fit.knee == 1.0)


def test_fitted_factors_make_held_out_coverage_nominal():
    claimed = np.array([0.6, 1.6])
    samples, truth = _gaussian_posteriors(4000, np.ones(2), claimed, seed=7)
    fit, _ = fit_calibration(samples[:2000], truth[:2000], np.zeros(2000), {}, seed=0)
    held_out = fit.maps().apply(samples[2000:])
    levels = np.array([0.6827, 0.9545])
    for j in range(2):
        before = _coverage(samples[2000:, :, j], truth[2000:, j], levels)
        after = _coverage(held_out[:, :, j], truth[2000:, j], levels)
        # Binomial sd at n=2000 is <= 1.1 points; allow 4 sd.
        np.testing.assert_allclose(after, levels, atol=0.045)
        assert np.max(np.abs(before - levels)) > 0.08  # the uncalibrated ones must fail


def test_fit_recovers_heavy_tails():
    """Truths from a Student-t (3 dof) judged by Gaussian samples: core and tails differ."""
    rng = np.random.default_rng(9)
    n = 3000
    truth = stats.t.rvs(3, size=(n, 1), random_state=rng) * np.sqrt(1 / 3)  # unit variance
    samples = rng.normal(size=(n, 500, 1))
    fit, _ = fit_calibration(samples, truth, np.zeros(n), {}, seed=0)
    assert fit.tail[0] > 1.2 and fit.core[0, 0] < 0.9  # narrower core, wider tails
    assert fit.n_fitted == 3 and fit.shrink == 0.0  # one parameter: nothing to correlate
    levels = np.array([0.6827, 0.9545, 0.9973])
    fresh = stats.t.rvs(3, size=n, random_state=rng) * np.sqrt(1 / 3)
    new = rng.normal(size=(n, 500, 1))
    after = _coverage(fit.spread(0).apply(new)[:, :, 0], fresh, levels)
    plain = _coverage(new[:, :, 0], fresh, levels)
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
    fit, _ = fit_calibration(samples[:3000], truth[:3000], np.zeros(3000), {}, seed=0)
    assert abs(fit.power[0] - 0.5) < 0.12
    w_ref = np.median(samples[:3000, :, 0].std(axis=1))
    assert fit.width_ref[0] == pytest.approx(w_ref)
    # Width w maps to a sd of w ** 1.5: scale (w_ref) ** 0.5 at the reference width.
    assert fit.core[0, 0] == pytest.approx(w_ref**0.5, rel=0.08)
    held, t_held, w_held = samples[3000:], truth[3000:, 0], w[3000:, 0]
    flat = SpreadMap(fit.core[0], fit.tail, fit.knee)  # power 0
    levels = np.array([0.6827, 0.9545])
    quarters = np.quantile(w_held, [0.25, 0.75])
    for sel in (w_held < quarters[0], w_held > quarters[1]):  # narrowest, widest quarter
        fitted = _coverage(fit.spread(0).apply(held[sel])[:, :, 0], t_held[sel], levels)
        single = _coverage(flat.apply(held[sel])[:, :, 0], t_held[sel], levels)
        np.testing.assert_allclose(fitted, levels, atol=0.055)  # 4 binomial sd at n=750
        assert np.abs(single - levels)[0] > 0.08  # one scale for all fails each extreme


def test_a_refit_on_the_same_galaxies_gives_the_same_numbers_and_keeps_the_frame():
    """What the bootstrap relies on: refitting on the fitting galaxies reproduces the fit,
    and refitting on others keeps its classes, brightness limit and reference widths."""
    samples, truth, crowding = _crowded_set(1200, 1.6, seed=18)
    rng = np.random.default_rng(19)  # a second parameter, the brightness: faint ones wider
    light = rng.uniform(-2, 2, size=1200)
    wider = np.where(light < 0, 1.6, 1.0)
    samples = np.concatenate(
        [samples, light[:, None, None] + rng.normal(size=(1200, 300, 1))], axis=2
    )
    truth = np.concatenate([truth, (light + wider * rng.normal(size=1200))[:, None]], axis=1)
    fit, _ = fit_calibration(samples, truth, crowding, {"flux": 1}, seed=0)
    assert fit.split == Split(True, "flux") and fit.limit is not None
    faint = np.median(samples[:, :, 1], axis=1) < fit.limit[1]
    galaxies = Galaxies.from_samples(samples, truth, crowding > CROWDED, {"flux": faint})
    same = refit(fit, galaxies, samples, truth, crowding)
    for key in ("core", "tail", "power", "width_ref", "knee"):
        np.testing.assert_array_equal(getattr(same, key), getattr(fit, key))
    assert same.shrink == fit.shrink and same.split == fit.split
    rows = np.random.default_rng(2).integers(0, 1200, 1200)
    other = refit(fit, galaxies.take(rows), samples[rows], truth[rows], crowding[rows])
    assert other.split == fit.split and other.limit == fit.limit
    np.testing.assert_array_equal(other.width_ref, fit.width_ref)
    assert not np.array_equal(other.core, fit.core)  # new galaxies, new numbers
    np.testing.assert_allclose(other.core, fit.core, rtol=0.15)


def test_joint_coverage_counts_truths_inside_the_mahalanobis_regions():
    """Against the mid-rank oracle: the two differ only for a galaxy whose rank cell
    straddles a level, about one in S per level."""
    samples, truth = _correlated_posteriors(400, claimed_rho=0.9, true_rho=0.5, seed=23)
    levels = np.array([0.2, 0.5, 0.6827, 0.9545])
    expected = [np.mean(_mahalanobis_rank(samples, truth) < c) for c in levels]
    got = joint_coverage(samples, truth, levels)
    np.testing.assert_allclose(got, expected, atol=3 / 400)
    np.testing.assert_array_equal(joint_coverage(samples, truth, levels), got)  # ties: fixed


def test_fit_refuses_bad_shapes_and_tiny_sets():
    with pytest.raises(GampenValueError) as error:
        fit_calibration(np.zeros((30, 10)), np.zeros((30, 1)), np.zeros(30), {}, seed=0)
    assert str(error.value) == (
        "samples must be (galaxies, samples, params) and truth (galaxies, params); "
        "got ((30, 10), (30, 1))"
    )
    with pytest.raises(GampenValueError) as error:
        fit_calibration(np.zeros((19, 30, 1)), np.zeros((19, 1)), np.zeros(19), {}, seed=0)
    assert str(error.value) == "too few galaxies to fit a calibration; got 19; expected >= 20"
    rng = np.random.default_rng(0)  # 20 galaxies are enough
    samples, truth = rng.normal(size=(20, 30, 1)), rng.normal(size=(20, 1))
    fit, _ = fit_calibration(samples, truth, np.zeros(20), {}, seed=0)
    assert fit.limit is None and fit.split == Split()  # no parameter to split by: no limit


def test_single_precision_samples_are_fitted_in_double_precision():
    """calibrate hands over the network's float32 samples: the fit, brightness limit
    included, is that of the same values in float64."""
    samples, truth = _gaussian_posteriors(300, np.ones(2), np.array([0.7, 1.3]), seed=5)
    single = samples.astype(np.float32)
    fit, _ = fit_calibration(single, truth, np.zeros(300), {"p": 1}, seed=0)
    same, _ = fit_calibration(single.astype(np.float64), truth, np.zeros(300), {"p": 1}, seed=0)
    assert fit.limit == same.limit
    np.testing.assert_array_equal(fit.core, same.core)
    assert fit.shrink == same.shrink


def _crowded_set(n: int, crowded_sigma: float, seed: int):
    """One parameter; 40 % of galaxies crowded, whose errors are ``crowded_sigma`` times
    wider than claimed (clean ones are right)."""
    rng = np.random.default_rng(seed)
    # Clean galaxies sit exactly on the threshold, which is still clean ("above" is crowded).
    crowding = np.where(rng.random(n) < 0.4, rng.uniform(0.2, 2.0, n), CROWDED)
    mu = rng.normal(size=(n, 1))
    wider = np.where(crowding > CROWDED, crowded_sigma, 1.0)[:, None]
    truth = mu + wider * rng.normal(size=(n, 1))
    return mu[:, None] + rng.normal(size=(n, 300, 1)), truth, crowding


def test_crowded_galaxies_get_a_core_of_their_own_when_held_out_halves_show_it_helps():
    samples, truth, crowding = _crowded_set(4000, 1.6, seed=15)
    fit, evidence = fit_calibration(samples[:2000], truth[:2000], crowding[:2000], {}, seed=0)
    assert fit.split == Split(crowding=True) and evidence["chosen"] == "crowding"
    step = evidence["steps"][0]
    assert step["kept"] and step["gain"] < -step["spread"] < 0
    assert fit.core[0, 0] == pytest.approx(1.0, rel=0.08)  # clean
    assert fit.core[1, 0] == pytest.approx(1.6, rel=0.1)  # crowded
    assert fit.n_fitted == 4  # two cores, one tail, one power
    maps = fit.maps()
    assert isinstance(maps, Recalibration) and maps.above == CROWDED
    held, t_held, c_held = samples[2000:], truth[2000:, 0], crowding[2000:]
    for group in (c_held > CROWDED, c_held <= CROWDED):
        got = _coverage(maps.apply(held[group], c_held[group])[:, :, 0], t_held[group], [0.6827])
        np.testing.assert_allclose(got, [0.6827], atol=0.045)  # 4 binomial sd at n=800


def test_the_held_out_halves_follow_the_seed():
    samples, truth, crowding = _crowded_set(900, 1.3, seed=25)
    first = fit_calibration(samples, truth, crowding, {}, seed=3)[1]
    assert fit_calibration(samples, truth, crowding, {}, seed=3)[1] == first
    assert fit_calibration(samples, truth, crowding, {}, seed=4)[1] != first


def test_is_below_is_strictly_below_the_limit_as_the_maps_pick():
    samples = np.zeros((5, 3, 2))
    samples[:, :, 1] = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])[:, None]  # medians
    np.testing.assert_array_equal(is_below(samples, (1, 0.0)), [True, True, False, False, False])
    split = BrightnessSplit(SpreadMap(np.ones(2)), SpreadMap(np.full(2, 2.0)), 0.0, 1)
    picked = [split.pick(None, galaxy) is split.faint for galaxy in samples]
    np.testing.assert_array_equal(is_below(samples, (1, 0.0)), picked)
    np.testing.assert_array_equal(is_below(samples, (0, 0.0)), [False] * 5)  # param 0 is 0
    np.testing.assert_array_equal(is_below(samples, None), [False] * 5)


def test_a_class_split_that_does_not_help_is_not_kept():
    samples, truth, crowding = _crowded_set(2000, 1.0, seed=16)
    fit, evidence = fit_calibration(samples, truth, crowding, {}, seed=0)
    assert fit.split == Split() and fit.core.shape == (1, 1)
    assert [s["kept"] for s in evidence["steps"]] == [False]
    few = fit_calibration(samples[:300], truth[:300], np.full(300, 1.0), {}, seed=0)
    assert few[1]["steps"] == []  # no clean galaxies: no split tried


@pytest.mark.parametrize("j", [0, 1])
def test_galaxies_below_the_median_of_the_parameter_that_matters_get_a_core_of_their_own(j):
    """Both parameters are uniform on (-2, 2); galaxies whose parameter ``j`` is below 0
    (faint in the flux, or small in r_e) have errors 1.5x wider than claimed in parameter
    1, the others are right.  The split by ``j`` is chosen, not by the other parameter;
    its limit falls at the median, 0, and each side gets its own core factor."""
    rng = np.random.default_rng(16)
    n = 1200
    mu = rng.uniform(-2, 2, size=(n, 2))
    widths = np.stack([np.ones(n), np.where(mu[:, j] < 0, 1.5, 1.0)], 1)
    truth = mu + 0.1 * widths * rng.normal(size=(n, 2))
    samples = mu[:, None] + 0.1 * rng.normal(size=(n, 150, 2))
    names = ["r_e", "flux"]
    fit, evidence = fit_calibration(samples, truth, np.zeros(n), {"r_e": 0, "flux": 1}, seed=0)
    assert fit.split == Split(by=names[j])  # the other parameter tells nothing
    assert set(evidence["held_out_loss"]) == {"none", "r_e", "flux"}
    below = np.median(np.median(samples[:, :, j], axis=1))  # of the medians
    assert fit.limit == (j, below) and abs(below) < 0.25  # near the true median, 0
    np.testing.assert_allclose(fit.core[:, 1], [1.0, 1.5], rtol=0.1)  # higher, lower
    np.testing.assert_allclose(fit.core[:, 0], [1.0, 1.0], rtol=0.08)
    maps = fit.maps()
    assert isinstance(maps, BrightnessSplit) and maps.param == j and maps.below == below
    with pytest.raises(GampenValueError, match=rf"^a split by {names[j]} needs its limit$"):
        replace(fit, limit=None).maps()


def test_choose_split_tries_only_classes_with_enough_galaxies():
    rng = np.random.default_rng(4)
    n = 2 * MIN_CLASS + 50
    samples, truth = rng.normal(size=(n, 50, 1)), rng.normal(size=(n, 1))
    crowded = np.arange(n) < MIN_CLASS - 1  # one short
    galaxies = Galaxies.from_samples(samples, truth, crowded, {"flux": np.arange(n) % 2 == 0})
    split, evidence = choose_split(galaxies, np.ones(1), seed=0)
    assert split == Split()  # noise only: nothing to gain
    assert [s["to"] for s in evidence["steps"]] == ["flux"]
    assert set(evidence["held_out_loss"]) == {"none", "flux"}
    # The held-out loss of one map: fitted on each half, judged on the other, summed.
    halves = np.array_split(np.random.default_rng(0).permutation(n), 2)
    cells = np.arange(n) % 2  # the cells of the finest split tried: by flux
    total = 0.0
    for fitted, judged in (halves, halves[::-1]):
        fit = fit_marginals(galaxies.take(fitted), Split(), np.ones(1), None)
        total += _judged_loss(
            inside(fit, galaxies.take(judged)), cells[judged], np.ones((1, len(judged)))
        )[0]
    assert evidence["held_out_loss"]["none"] == round(total, 6)
    crowded[MIN_CLASS - 1] = True  # exactly enough
    galaxies = Galaxies.from_samples(samples, truth, crowded, {"flux": np.arange(n) % 2 == 0})
    assert "crowding" in choose_split(galaxies, np.ones(1), seed=0)[1]["held_out_loss"]


def test_every_candidate_is_judged_by_the_mean_loss_over_each_parameters_cells():
    """With two parameters that may split, one map's held-out loss is the mean of its
    losses in the cells of each parameter's halves (fitted on each half, judged on the
    other, summed over the halves)."""
    rng = np.random.default_rng(7)
    n = 2 * MIN_CLASS + 60
    samples, truth = rng.normal(size=(n, 50, 1)), rng.normal(size=(n, 1))
    lower = {"r_e": np.arange(n) % 2 == 0, "flux": np.arange(n) % 4 < 2}
    galaxies = Galaxies.from_samples(samples, truth, np.zeros(n, bool), lower)
    evidence = choose_split(galaxies, np.ones(1), seed=0)[1]
    assert set(evidence["held_out_loss"]) == {"none", "r_e", "flux"}
    halves = np.array_split(np.random.default_rng(0).permutation(n), 2)
    total = 0.0
    for fitted, judged in (halves, halves[::-1]):
        covered = inside(
            fit_marginals(galaxies.take(fitted), Split(), np.ones(1), None),
            galaxies.take(judged),
        )
        one = np.ones((1, len(judged)))
        total += np.mean([_judged_loss(covered, m[judged], one)[0] for m in lower.values()])
    assert evidence["held_out_loss"]["none"] == round(total, 6)


def test_split_classes_and_names():
    crowded = np.array([False, False, True, True])
    lower = np.array([False, True, False, True])
    both = Split(True, "r_e")
    np.testing.assert_array_equal(both.classes(crowded, lower), [0, 1, 2, 3])
    np.testing.assert_array_equal(Split(True).classes(crowded, None), [0, 0, 1, 1])
    np.testing.assert_array_equal(Split(False, "r_e").classes(crowded, lower), [0, 1, 0, 1])
    np.testing.assert_array_equal(Split().classes(crowded, None), [0, 0, 0, 0])
    assert both.class_names == [
        "clean higher r_e",
        "clean lower r_e",
        "crowded higher r_e",
        "crowded lower r_e",
    ]
    assert Split().class_names == ["all"]
    splits = (Split(), Split(True), Split(False, "r_e"), both)
    assert [s.name for s in splits] == ["none", "crowding", "r_e", "crowding x r_e"]
    assert [s.n_classes for s in splits] == [1, 2, 2, 4]
    assert candidate_splits(["bt", "r_e"]) == [
        Split(),
        Split(True),
        Split(False, "bt"),
        Split(False, "r_e"),
        Split(True, "bt"),
        Split(True, "r_e"),
    ]


def test_maps_of_a_crowding_and_parameter_split_route_each_galaxy():
    fit = _fit(Split(True, "p"), [[1.0], [2.0], [3.0], [4.0]], [1.0], [0.0], [1.0], [1.0])
    maps = replace(fit, limit=(0, 0.5)).maps()
    rng = np.random.default_rng(8)
    base = rng.normal(size=(4, 101, 1))
    base -= np.median(base, axis=1, keepdims=True)
    base += np.array([1.0, -1.0, 1.0, -1.0])[:, None, None]  # medians: bright, faint, ...
    crowding = np.array([0.0, 0.0, 0.5, 0.5])  # clean, clean, crowded, crowded
    out = maps.apply(base, crowding)
    centre = np.median(base, axis=1, keepdims=True)
    for g, a in enumerate([1.0, 2.0, 3.0, 4.0]):
        np.testing.assert_allclose(out[g] - centre[g], a * (base[g] - centre[g]), atol=1e-12)


def test_numbers_are_named_by_class_and_parameter():
    fit = _fit(Split(True), [[0.9, 1.1], [1.3, 1.4]], [1.2, 0.8], [0.1, 0.0], [1, 1], [1, 1])
    numbers = fit.numbers(["bt", "flux"])
    assert numbers == {
        "scale": {"clean": {"bt": 0.9, "flux": 1.1}, "crowded": {"bt": 1.3, "flux": 1.4}},
        "tail": {"bt": 1.2, "flux": 0.8},
        "power": {"bt": 0.1, "flux": 0.0},
        "shrink": 0.0,
    }
    assert fit.n_fitted == 4 + 2 + 2 + 1


def test_numbers_of_a_malformed_fit_are_refused():
    fit = _fit(Split(True), [[0.9, 1.1], [1.3, 1.4]], [1.2, 0.8], [0.1, 0.0], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="zip"):
        fit.numbers(["bt"])  # a name short
    with pytest.raises(ValueError, match="zip"):
        replace(fit, core=fit.core[:1]).numbers(["bt", "flux"])  # a class short


def test_resample_weights_draw_every_galaxy_alike():
    weights = _resample_weights(np.random.default_rng(3), 50)
    assert weights.shape == (JUDGE_RESAMPLES, 50) and weights.dtype == np.float64
    np.testing.assert_array_equal(weights.sum(axis=1), 50)
    np.testing.assert_array_equal(weights, np.round(weights))
    # Each galaxy is drawn once per resample on average: binomial sd sqrt(0.98 / 200).
    np.testing.assert_allclose(weights.mean(axis=0), 1.0, atol=4 * np.sqrt(0.98 / 200))


def test_judged_loss_by_a_loop():
    """The loss of every weighting, cell by cell, against a plain loop."""
    rng = np.random.default_rng(9)
    covered = rng.random((60, 2, len(FIT_LEVELS))) < FIT_LEVELS
    cells = rng.integers(0, 3, 60)
    weights = rng.integers(0, 3, size=(4, 60)).astype(float) + 0.5
    expected = []
    for w in weights:
        per_cell = []
        for cell in range(3):
            m = cells == cell
            for j in range(2):
                coverage = (w[m] @ covered[m, j]) / w[m].sum()
                per_cell.append((cell, np.sum(FIT_WEIGHTS * (coverage - FIT_LEVELS) ** 2)))
        expected.append(sum(loss for _, loss in per_cell) / 3)
    np.testing.assert_allclose(_judged_loss(covered, cells, weights), expected, rtol=1e-12)


def test_challenge_replaces_the_split_only_beyond_the_spread():
    """Hand-made held-out losses (first entry) and resamples (the rest): splits are tried
    coarse first, the cheaper of equally coarse ones first, each against the split chosen
    so far; a gain exactly equal to minus two spreads is not enough."""
    none, crowd, light, both = Split(), Split(True), Split(False, "flux"), Split(True, "flux")
    losses = {
        none: np.array([0.0040, 0.0040, 0.0040, 0.0040]),
        crowd: np.array([0.0030, 0.0030, 0.0029, 0.0031]),  # gain -0.001, spread 0.0001
        light: np.array([0.0035, 0.0035, 0.0035, 0.0035]),  # no better than crowding
        both: np.array([0.0012345678, 0.0013, 0.0011, 0.00123456]),
    }
    chosen, evidence = _challenge([none, crowd, light, both], losses)
    assert chosen == both
    steps = evidence["steps"]
    assert [(s["from"], s["to"], s["kept"]) for s in steps] == [
        ("none", "crowding", True),
        ("crowding", "flux", False),
        ("crowding", "crowding x flux", True),
    ]
    assert set(steps[0]) == {"from", "to", "gain", "spread", "kept"}
    assert steps[0]["gain"] == -0.001 and steps[0]["spread"] == 0.0001
    assert steps[2]["gain"] == round(0.0012345678 - 0.003, 6)
    spread = float(np.std([-0.0017, -0.0018, 0.00123456 - 0.0031], ddof=1))
    assert steps[2]["spread"] == round(spread, 6) != round(spread, 7)
    assert evidence["held_out_loss"] == {
        "none": 0.004,
        "crowding": 0.003,
        "flux": 0.0035,
        "crowding x flux": 0.001235,
    }
    assert evidence["chosen"] == "crowding x flux"
    # A gain of exactly minus two spreads (spread sqrt 2 from resamples 0 and 2) is not
    # kept; a little more is.
    edge = {none: np.array([0.0, 0.0, 0.0]), crowd: np.array([-2 * np.sqrt(2.0), 0.0, 2.0])}
    assert _challenge([none, crowd], edge)[0] == none
    edge[crowd][0] = -2.001 * np.sqrt(2.0)
    assert _challenge([none, crowd], edge)[0] == crowd
    # Equally coarse splits go cheapest first: by flux, of lower held-out loss (its
    # first resample is higher), is tried first.
    order = {**losses, light: np.array([0.002, 0.0035, 0.002, 0.002])}
    steps = _challenge([none, crowd, light, both], order)[1]["steps"]
    assert [s["to"] for s in steps] == ["flux", "crowding", "crowding x flux"]


def test_coverage_below_by_hand():
    fraction = np.array([0.1, 0.5, 0.5, 0.9])
    np.testing.assert_allclose(
        coverage_below(fraction, np.array([0.1, 0.5, 0.6, 1.0])), [0, 0.25, 0.75, 1]
    )


def test_the_fine_pass_reaches_between_coarse_points():
    """Right Gaussian posteriors need tail 1 and power 0.  Coarse grids that hold neither
    (tails 0.5 and 2, powers -0.5 and 0.5) leave it to the fine pass: tail +-1 coarse step
    in 6 steps each way (1 = 0.5 x 4 ** (3 / 6)), power +-1/2 step in 5 steps
    (0 = -0.5 + 0.5)."""
    samples, truth = _gaussian_posteriors(4000, np.ones(1), np.ones(1), seed=27, n_samples=200)
    galaxies = Galaxies.from_samples(samples, truth, np.zeros(4000))
    width_ref = np.median(galaxies.sd, axis=0)
    tails, powers = np.array([0.5, 2.0]), np.array([-0.5, 0.5])
    fit = fit_marginals(galaxies, Split(), width_ref, None, tails=tails, powers=powers)
    assert fit.tail[0] == 1.0 and fit.power[0] == 0.0
    assert fit.core[0, 0] == pytest.approx(1.0, rel=0.03)


def test_fit_marginals_with_a_fixed_tail_and_power():
    samples, truth = _gaussian_posteriors(1000, np.ones(1), np.array([0.5]), seed=12)
    galaxies = Galaxies.from_samples(samples, truth, np.zeros(1000))
    fit = fit_marginals(
        galaxies, Split(), np.ones(1), None, tails=np.ones(1), powers=np.zeros(1), knee=2.0
    )
    assert fit.tail[0] == 1.0 and fit.power[0] == 0.0 and fit.knee[0] == 2.0
    assert fit.core[0, 0] == pytest.approx(2.0, rel=0.06)


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


def _mahalanobis_rank(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mid-rank fraction of each truth's Mahalanobis distance among its samples' (numpy's
    covariance, a loop): an oracle apart from the fit's."""
    out = []
    for s, t in zip(samples, truth, strict=True):
        cov, mean = np.cov(s, rowvar=False), s.mean(axis=0)
        d = np.einsum("si,si->s", s - mean, np.linalg.solve(cov, (s - mean).T).T)
        out.append((np.sum(d < (t - mean) @ np.linalg.solve(cov, t - mean)) + 0.5) / (len(s) + 1))
    return np.array(out)


@pytest.mark.parametrize("amount", [0.0, 0.05, 0.4])
def test_joint_frame_ranks_the_truth_among_the_shrunk_samples(amount):
    rng = np.random.default_rng(17)
    samples = (
        rng.gamma(2.0, size=(200, 300, 3))
        @ np.linalg.cholesky([[1.0, 0.9, 0.2], [0.9, 1.0, 0.1], [0.2, 0.1, 1.0]]).T
    )
    truth = samples.mean(axis=1) + rng.normal(size=(200, 3))
    expected = _mahalanobis_rank(shrink_correlations(samples, amount), truth)
    np.testing.assert_array_equal(JointFrame.of(samples).fraction(truth, amount), expected)


def test_joint_frame_works_in_double_precision():
    samples, _ = _correlated_posteriors(50, claimed_rho=0.9, true_rho=0.9, seed=26)
    single = samples.astype(np.float32)
    frame = JointFrame.of(single)
    assert frame.distances.dtype == np.float64
    np.testing.assert_array_equal(
        frame.distances, JointFrame.of(single.astype(np.float64)).distances
    )


def test_joint_frame_leaves_out_galaxies_no_shrink_moves():
    """Galaxies of singular covariance (a constant parameter) are left as they are by any
    shrink, so the frame leaves them out; the others are ranked as before."""
    rng = np.random.default_rng(19)
    samples = rng.normal(size=(6, 200, 3)) @ np.array([[1, 0.8, 0], [0, 0.6, 0], [0, 0, 1.0]])
    samples[1, :, 2] = 4.0  # one constant parameter
    samples[4] = 2.0  # every parameter constant
    truth = samples.mean(axis=1) + rng.normal(size=(6, 3))
    frame = JointFrame.of(samples)
    np.testing.assert_array_equal(frame.kept, [True, False, True, True, False, True])
    keep = frame.kept
    for amount in (0.0, 0.3):
        expected = _mahalanobis_rank(shrink_correlations(samples[keep], amount), truth[keep])
        np.testing.assert_array_equal(frame.fraction(truth, amount), expected)
    constant = np.full((3, 100, 2), 1.0)
    assert fit_shrink(constant, np.zeros((3, 2))) == 0.0  # nothing to shrink


def test_fit_shrinks_over_confident_correlations_to_the_truths():
    samples, truth = _correlated_posteriors(3000, claimed_rho=0.95, true_rho=0.8, seed=21)
    fit, _ = fit_calibration(samples[:1500], truth[:1500], np.zeros(1500), {}, seed=0)
    # (1 - shrink) 0.95 = 0.8 gives 0.158; the grid steps by 27 %.
    assert 0.12 <= fit.shrink <= 0.21
    held, t_held = samples[1500:], truth[1500:]
    for level in (0.6827, 0.9545):
        after = np.mean(_mahalanobis_rank(fit.maps().apply(held), t_held) < level)
        before = np.mean(_mahalanobis_rank(held, t_held) < level)
        assert abs(after - level) < 0.035  # 3 binomial sd at n=1500
        assert level - before > 0.1  # the thin regions under-cover: this must fail


def test_fit_leaves_right_correlations_alone():
    samples, truth = _correlated_posteriors(1500, claimed_rho=0.9, true_rho=0.9, seed=22)
    assert fit_shrink(samples, truth) <= 0.01
