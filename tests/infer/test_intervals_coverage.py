"""Interval ends at order-statistic ranks hold the truth as often as their levels say.

Oracles: for an exact posterior the k-th smallest of S samples lies below a fresh draw with
probability k / (S + 1) whatever the distribution, so [x_(r), x_(S+1-r)] holds it with
probability (S + 1 - 2r) / (S + 1); scipy's normal CDF gives each Gaussian interval's exact
content; numpy's default quantiles stand for the old ends, which must miss.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from gampen.infer.summary import LEVELS, summarise


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One thread: the machine's two cores are shared with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gaussian_posteriors(rng: np.random.Generator, b: int, s: int) -> tuple[np.ndarray, ...]:
    """Centres and widths of ``b`` Gaussian posteriors over four decades, ``s`` float32
    samples of each (b, s) and one truth drawn from each."""
    mu = rng.uniform(-5.0, 5.0, b)
    sd = 10.0 ** rng.uniform(-2.0, 1.0, b)
    samples = (mu[:, None] + sd[:, None] * rng.standard_normal((b, s))).astype(np.float32)
    return mu, sd, samples, mu + sd * rng.standard_normal(b)


def _holds(lo: np.ndarray, hi: np.ndarray, truth: np.ndarray) -> float:
    """The fraction of intervals holding their truth."""
    return float(np.mean((lo <= truth) & (truth <= hi)))


def test_gaussian_posteriors_hold_the_truth_at_their_levels():
    """20,000 exact Gaussian posteriors of 1000 samples.  The 99.73 % interval holds the truth
    within 0.1 percentage point of 99.73 % (binomial sd 0.037 points); numpy's default ends
    hold it ~99.55 % of the time, outside that.  The 68.27 and 95.45 % intervals are within
    3 binomial sd.  The exact content of each interval (normal CDF at its ends), averaged,
    has far less noise (< 0.01 points): within 0.05 points of every level (measured:
    68.24, 95.45, 99.75 %), where the default ends give 68.11, 95.26 and 99.55 %."""
    b, s = 20_000, 1000
    mu, sd, samples, truth = _gaussian_posteriors(np.random.default_rng(0), b, s)
    out = summarise(samples[:, :, None], ["x"])
    tails = [p for level in LEVELS.values() for p in ((1 - level) / 2, (1 + level) / 2)]
    default = np.quantile(samples, tails, axis=1)  # (6, b)
    for i, (name, level) in enumerate(LEVELS.items()):
        lo, hi = out[f"x_{name}_lo"], out[f"x_{name}_hi"]
        holds, old = _holds(lo, hi, truth), _holds(default[2 * i], default[2 * i + 1], truth)
        tolerance = 0.001 if name == "ci99" else 3 * np.sqrt(level * (1 - level) / b)
        assert abs(holds - level) < tolerance, (name, holds)
        content = np.mean(stats.norm.cdf((hi - mu) / sd) - stats.norm.cdf((lo - mu) / sd))
        assert abs(content - level) < 0.0005, (name, content)
        if name == "ci99":  # must fail: the old ends under-cover beyond the tolerance
            assert abs(old - level) > tolerance, old
            old_content = stats.norm.cdf((default[5] - mu) / sd) - stats.norm.cdf(
                (default[4] - mu) / sd
            )
            assert level - np.mean(old_content) > 0.0015


def test_few_uniform_samples_hold_exactly_the_level():
    """S = 100 at 95.45 %: the lower end sits at rank r = 0.02275 * 101 = 2.298.  Uniform
    order statistics have means k / (S + 1), and the ends interpolate linearly between two
    of them, so an interval's content hi - lo averages (S + 1 - 2r) / (S + 1) = 95.45 %
    exactly; numpy's default (rank 3.252) averages 93.56 %."""
    b, s = 20_000, 100
    rng = np.random.default_rng(1)
    samples = rng.uniform(size=(b, s)).astype(np.float32)
    truth = rng.uniform(size=b)
    out = summarise(samples[:, :, None], ["u"])
    level = LEVELS["ci95"]
    r = (1 - level) / 2 * (s + 1)
    content = (out["u_ci95_hi"] - out["u_ci95_lo"]).astype(np.float64)
    error = 4 * content.std() / np.sqrt(b)
    assert abs(content.mean() - (s + 1 - 2 * r) / (s + 1)) < error
    holds = _holds(out["u_ci95_lo"], out["u_ci95_hi"], truth)
    assert abs(holds - level) < 3 * np.sqrt(level * (1 - level) / b)
    # Must fail: the default ends, one rank further in.
    old = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=1)
    assert level - (old[1] - old[0]).mean() > 10 * error


@pytest.mark.parametrize(("s", "r"), [(100, 2), (60, 1), (39, 4)])
def test_whole_rank_intervals_hold_the_distribution_free_coverage(monkeypatch, s, r):
    """A level whose ends are whole ranks r and S + 1 - r: skewed (exponential) posteriors
    of many scales hold their truth with probability (S + 1 - 2r) / (S + 1), within 3
    binomial sd; numpy's default ends, at least 3 sd short."""
    level = (s + 1 - 2 * r) / (s + 1)
    monkeypatch.setitem(LEVELS, "ci95", level)
    b = 30_000
    rng = np.random.default_rng(s)
    scale = 10.0 ** rng.uniform(-2.0, 2.0, b)
    samples = (scale[:, None] * rng.exponential(size=(b, s))).astype(np.float32)
    truth = scale * rng.exponential(size=b)
    out = summarise(samples[:, :, None], ["e"])
    sd = np.sqrt(level * (1 - level) / b)
    assert abs(_holds(out["e_ci95_lo"], out["e_ci95_hi"], truth) - level) < 3 * sd
    old = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=1)
    assert level - _holds(old[0], old[1], truth) > 3 * sd
