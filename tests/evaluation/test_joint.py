"""Joint calibration: Mahalanobis regions against the chi-square answer, TARP, transforms."""

from __future__ import annotations

import numpy as np
import pytest

from gampen.calibration.ranks import mahalanobis_fraction
from gampen.evaluation.joint import (
    TarpFrame,
    curve_below,
    reported,
    tarp_fraction,
    to_unbounded,
)

from .posteriors import expected_joint, gaussian_population

N = 2500
CHECKED = np.array([0.2, 0.5, 0.68, 0.9, 0.95])


def _tolerance(level: np.ndarray, n: int = N) -> np.ndarray:
    """Four binomial standard deviations plus one point for the estimated sample moments."""
    return 4 * np.sqrt(level * (1 - level) / n) + 0.01


def _unbounded(pop):
    truth = np.stack([np.asarray(pop.truth[p]) for p in pop.params], 1)
    return to_unbounded(pop.samples, pop.params), to_unbounded(truth, pop.params)


@pytest.fixture(scope="module", params=[1.0, 0.5, 2.0], ids=["calibrated", "narrow", "wide"])
def population(request):
    return request.param, _unbounded(gaussian_population(N, scale=request.param, seed=4))


def test_mahalanobis_coverage_equals_the_chi_square_answer(population):
    scale, (samples, truth) = population
    f = mahalanobis_fraction(samples, truth, rng=np.random.default_rng(0))
    curve = curve_below(f, CHECKED)
    expected = expected_joint(CHECKED, scale)
    assert np.all(np.abs(curve.empirical - expected) < _tolerance(expected)), curve.empirical
    if scale == 1.0:
        assert np.all(np.abs(curve.empirical - CHECKED) < _tolerance(CHECKED))
    elif scale < 1:  # too narrow: the truth falls outside too often
        assert np.all(curve.empirical < CHECKED - _tolerance(CHECKED))
    else:
        assert np.all(curve.empirical > CHECKED + _tolerance(CHECKED))


def test_tarp_passes_when_calibrated_and_bends_the_right_way_otherwise(population):
    scale, (samples, truth) = population
    rng = np.random.default_rng(1)
    frame = TarpFrame.draw(truth, rng=rng)
    f = tarp_fraction(samples, truth, frame, rng=rng)
    levels = np.array([0.25, 0.5, 0.68, 0.95])
    curve = curve_below(f, levels)
    ecp = dict(zip(levels.tolist(), curve.empirical, strict=True))
    sd = {a: np.sqrt(a * (1 - a) / N) for a in ecp}  # TARP has no estimated moments
    if scale == 1.0:
        assert all(abs(ecp[a] - a) < 4 * sd[a] for a in ecp), ecp
        return
    # Too narrow: above the diagonal at low levels, below at high ones; too wide: the
    # S-curve the other way.  The high levels carry the test, the low one the sign.
    sign = -1 if scale < 1 else 1
    assert sign * (ecp[0.68] - 0.68) > 4 * sd[0.68], ecp
    assert sign * (ecp[0.95] - 0.95) > 4 * sd[0.95], ecp
    assert -sign * (ecp[0.25] - 0.25) > 2 * sd[0.25], ecp


def test_mahalanobis_sees_wrong_correlations_that_marginals_miss():
    rng = np.random.default_rng(2)
    n, s = 2000, 800
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    truth = rng.multivariate_normal([0, 0], cov, size=n)
    wrong = np.array([[1.0, -0.8], [-0.8, 1.0]])  # same marginals, opposite correlation
    samples = rng.multivariate_normal([0, 0], wrong, size=(n, s))
    f = mahalanobis_fraction(samples, truth, rng=rng)
    assert curve_below(f, np.array([0.68])).empirical[0] < 0.68 - 0.1


def test_to_unbounded_squeezes_bt_logs_scales_and_leaves_others():
    values = np.array([[0.0, 2.0, 100.0, -3.0], [0.5, 0.0, 1.0, 7.0]])
    out = to_unbounded(values, ["bt", "r_e", "flux", "x"])
    assert out[0, 0] == pytest.approx(np.log(1e-3 / (1 - 1e-3)))  # GaMPEN's default eps
    assert out[1, 0] == 0.0
    assert out[0, 1] == pytest.approx(np.log(2.0)) and np.isnan(out[1, 1])
    assert out[1, 2] == 0.0
    np.testing.assert_array_equal(out[:, 3], [-3.0, 7.0])


def test_to_unbounded_uses_the_given_eps_on_the_whole_range():
    """logit(eps + (1 - 2 eps) bt) by hand: bt = 0 and 1 at logit(0.05) and logit(0.95),
    bt = 0.01 inside them (not clipped onto bt = 0); off [0, 1] is no B/T: NaN."""
    bt = np.array([[0.0], [1.0], [0.01], [0.25], [1.01], [-0.01]])
    out = to_unbounded(bt, ["bt"], eps=0.05)[:, 0]
    p = 0.05 + 0.9 * np.array([0.0, 1.0, 0.01, 0.25])
    np.testing.assert_allclose(out[:4], np.log(p / (1 - p)), rtol=1e-12)
    assert out[0] == pytest.approx(-np.log(19.0)) and out[1] == pytest.approx(np.log(19.0))
    assert out[0] < out[2] < out[3]
    assert np.isnan(out[4:]).all()
    assert to_unbounded(bt[:1], ["bt"])[0, 0] < out[0] - 3  # the default eps is another space


def test_degenerate_and_nan_posteriors_do_not_break_the_batch():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(3, 50, 2))
    samples[0, :, 0] = 1.0  # no spread at all in one coordinate (bt pinned at a bound)
    samples[1, 5, 1] = np.nan
    truth = np.array([[1.0, 0.0], [0.0, 0.0], [np.nan, 0.0]])
    f = mahalanobis_fraction(samples, truth, rng=rng)
    assert np.isfinite(f[0]) and np.isnan(f[1]) and np.isnan(f[2])
    truth[0, 0] = 1.5  # off the pinned value: outside every region
    assert mahalanobis_fraction(samples, truth, rng=rng)[0] > 0.98


def test_tarp_references_lie_in_the_box_of_the_truths():
    rng = np.random.default_rng(0)
    truth = rng.normal([1.0, 10.0], [2.0, 0.1], size=(500, 2))
    frame = TarpFrame.draw(truth, rng=rng)
    z = (truth - frame.centre) / frame.scale
    assert np.all(frame.references >= z.min(0)) and np.all(frame.references <= z.max(0))
    np.testing.assert_allclose(frame.scale, truth.std(0))
    assert frame.rows(slice(0, 3)).references.shape == (3, 2)


def test_curve_below_exact_small_example():
    curve = curve_below(np.array([0.1, 0.5, 0.7, np.nan]), np.array([0.68, 0.95]))
    np.testing.assert_allclose(curve.empirical, [2 / 3, 1.0])
    assert curve.n == 3
    full = curve_below(np.array([0.1, 0.5, 0.7]))
    assert reported(full) == {"68": pytest.approx(2 / 3), "95": 1.0}
    assert np.isnan(curve_below(np.array([np.nan]), np.array([0.5])).empirical).all()
