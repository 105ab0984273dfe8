"""Posterior summaries against independent oracles: numpy's statistics and quantiles, a
direct Gaussian KDE maximised by scipy, and analytic quantiles of transformed normals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import optimize, special, stats

from gampen.data.labels import LabelTransform
from gampen.infer.summary import LEVELS, STATISTICS, kde_mode, summarise

BIN = 12.0 / 400  # the mode grid: 400 bins over +-6 standard deviations


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One thread: the machine's two cores are shared with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 7, 42, 43, 100, 739, 740])
def test_moments_and_quantiles_equal_numpy(n):
    samples = np.random.default_rng(n).normal(0.0, 1.0, (4, n, 2)) * [1.0, 30.0] + [0.0, 100.0]
    samples = samples.astype(np.float32)
    out = summarise(samples, ["a", "b"])
    assert list(out) == [f"{p}_{s}" for p in ("a", "b") for s in STATISTICS]
    x = samples.astype(np.float64)
    expected = {
        "mean": x.mean(axis=1),
        "median": np.median(x, axis=1),
        "std": x.std(axis=1, ddof=1) if n > 1 else np.zeros((4, 2)),
    }
    for name, level in LEVELS.items():
        # The extremes of n exact draws hold a new one with probability (n - 1) / (n + 1):
        # a level above that cannot be resolved, and its interval is NaN, not too narrow.
        resolved = (n - 1) / (n + 1) >= level
        for end, p in (("lo", (1 - level) / 2), ("hi", (1 + level) / 2)):
            quantile = np.quantile(x, p, axis=1)
            expected[f"{name}_{end}"] = quantile if resolved else np.full_like(quantile, np.nan)
    for stat, values in expected.items():
        for j, p in enumerate(("a", "b")):
            column = out[f"{p}_{stat}"]
            assert column.dtype == np.float32 and column.shape == (4,)
            np.testing.assert_allclose(column, values[:, j], rtol=2e-6, atol=2e-6, err_msg=stat)


def test_float64_samples_give_float32_columns():
    samples = np.random.default_rng(0).normal(size=(3, 50, 2))  # float64
    out = summarise(samples, ["a", "b"])
    assert all(column.dtype == np.float32 for column in out.values())
    np.testing.assert_allclose(out["a_mean"], samples[:, :, 0].mean(axis=1), rtol=1e-6)


def test_kde_mode_in_float64():
    """Any floating dtype works and is kept (the grid and kernel follow the samples)."""
    v = _quantile_samples(stats.gamma(3.0), 1000)
    x = torch.from_numpy(v)[None, :, None]
    mode = kde_mode(x)
    assert mode.dtype == torch.float64
    assert abs(mode.item() - _kde_mode_oracle(v)) < 0.15 * BIN * v.std()
    torch.testing.assert_close(mode.float(), kde_mode(x.float()), rtol=1e-5, atol=0)


def test_single_sample_posterior_is_that_sample_with_no_interval():
    samples = np.array([[[0.25, 3.0]], [[-1.0, 7.5]]], dtype=np.float32)  # (2 galaxies, 1, 2)
    out = summarise(samples, ["x", "y"])
    for j, p in enumerate(("x", "y")):
        assert np.all(out[f"{p}_std"] == 0)
        for stat in ("mean", "median", "mode"):
            np.testing.assert_array_equal(out[f"{p}_{stat}"], samples[:, 0, j], err_msg=stat)
        for stat in set(STATISTICS) - {"std", "mean", "median", "mode"}:
            assert np.all(np.isnan(out[f"{p}_{stat}"])), stat  # one draw makes no interval


def test_nan_rows_stay_nan_and_constant_rows_are_their_value():
    samples = np.random.default_rng(0).normal(size=(3, 800, 2)).astype(np.float32)
    samples[1] = np.nan
    samples[2, :, 1] = 4.5
    out = summarise(samples, ["a", "b"])
    for column in out.values():
        assert np.isnan(column[1]) and np.all(np.isfinite(column[[0, 2]]))
    for stat in set(STATISTICS) - {"std"}:
        assert out[f"b_{stat}"][2] == 4.5, stat
    assert out["b_std"][2] == 0


def _kde_mode_oracle(v: np.ndarray) -> float:
    """Maximum of the Gaussian KDE of ``v`` with Scott's width 1.06 sd S^-1/5 (sd with
    ddof 0), found by scipy on the exact kernel sum; no grid, no binning."""
    v = v.astype(np.float64)
    h = 1.06 * v.std() * len(v) ** -0.2

    def minus_density(t: float) -> float:
        return -np.exp(-0.5 * ((t - v) / h) ** 2).sum()

    grid = np.median(v) + v.std() * np.linspace(-3, 3, 601)
    i = int(np.argmin([minus_density(t) for t in grid]))
    bracket = (grid[i - 1], grid[i], grid[i + 1])
    return optimize.minimize_scalar(minus_density, bracket=bracket, tol=1e-12).x


def _quantile_samples(dist, n: int) -> np.ndarray:
    """n deterministic samples: the distribution's quantiles at (i - 1/2) / n."""
    return dist.ppf((np.arange(1, n + 1) - 0.5) / n)


def _skewed_and_bimodal_posteriors(n: int) -> np.ndarray:
    """Gamma posteriors of many shapes and scales (sd from 1e-3 to 1e3) and two bimodal
    mixtures, as (B, n, 1) float32."""
    rows = []
    for i, shape in enumerate(np.linspace(1.5, 20.0, 12)):
        scale = 10.0 ** (-3 + 6 * i / 11)
        rows.append(scale * _quantile_samples(stats.gamma(shape), n) - 5 * scale)
    for weight in (0.7, 0.3):
        big = round(weight * n)
        rows.append(
            np.sort(
                np.r_[
                    _quantile_samples(stats.norm(0, 1), big),
                    _quantile_samples(stats.norm(5, 1.5), n - big),
                ]
            )
        )
    return np.array(rows, dtype=np.float32)[:, :, None]


def test_kde_mode_equals_the_exact_kde_maximum():
    """Within 0.15 grid bins (0.0045 sd) of the exact KDE's maximum.

    The grid is 0.03 sd wide; binning adds a box of that width to the kernel (variance
    w^2/12, a 0.1 % change of Scott's 0.2 sd kernel at S = 4000) and the parabola through the
    three highest bins errs by O(w^2/h) = 0.15 bins at most for a density varying on the
    scale h.  Deterministic quantile samples keep sampling noise out.
    """
    samples = _skewed_and_bimodal_posteriors(4000)
    got = kde_mode(torch.from_numpy(samples)).numpy()[:, 0]
    for i, v in enumerate(samples[:, :, 0]):
        error = (got[i] - _kde_mode_oracle(v)) / v.astype(np.float64).std()
        assert abs(error) < 0.15 * BIN, (i, error / BIN)
    # The skewed and bimodal cases are real tests: the mode is far from the median.
    medians = np.median(samples[:, :, 0], axis=1)
    assert np.all(np.abs(got - medians) / samples[:, :, 0].std(axis=1) > 0.05)


@pytest.mark.parametrize("n", [20, 301])
def test_kde_mode_of_few_samples(n):
    """Few random samples: the exact KDE maximum to within half a grid bin, the most by
    which binning moves a sample (0.015 sd)."""
    rng = np.random.default_rng(n)
    samples = np.stack([rng.gamma(a, 0.5, n) for a in (1.5, 2.5, 4.0, 8.0)])[:, :, None]
    samples = samples.astype(np.float32)
    got = kde_mode(torch.from_numpy(samples)).numpy()[:, 0]
    for i, v in enumerate(samples[:, :, 0]):
        error = (got[i] - _kde_mode_oracle(v)) / v.astype(np.float64).std()
        assert abs(error) < 0.5 * BIN, (i, error / BIN)


def test_kde_mode_of_a_symmetric_posterior_is_its_centre():
    """Symmetric samples: the density is symmetric about the median, so is its maximum
    (to 1/30 of a bin: float32 rounding of the binning)."""
    q = _quantile_samples(stats.norm(0, 1), 1000)
    for centre, sd in [(0.0, 1.0), (5.0, 3.0), (-2.0, 1e-3)]:
        x = torch.from_numpy((centre + sd * q).astype(np.float32))[None, :, None]
        assert abs(kde_mode(x).item() - centre) < BIN / 30 * sd


def test_kde_mode_uses_the_median_it_is_given_or_its_own():
    v = _quantile_samples(stats.gamma(3.0), 999).astype(np.float32)
    x = torch.from_numpy(v)[None, :, None]
    median = torch.tensor([[float(np.median(v))]])
    own = kde_mode(x)
    assert torch.equal(kde_mode(x, median=median), own)
    # The given median centres the grid (and is the mode of a constant posterior).
    constant = torch.full((1, 50, 1), 2.0)
    assert kde_mode(constant).item() == 2.0
    assert kde_mode(constant, median=torch.tensor([[2.5]])).item() == 2.5


def _bt_quantile(transform: LabelTransform, t: np.ndarray) -> np.ndarray:
    """Physical bt at standardised value t: sigmoid, undo the eps squeeze, clip to [0, 1]."""
    eps = transform.eps
    p = special.expit(t * transform.std[0] + transform.mean[0])
    return np.clip((p - eps) / (1 - 2 * eps), 0.0, 1.0)


def test_bt_intervals_are_the_mapped_normal_quantiles():
    """Standardised-space normal posteriors N(mu, sd^2), mapped to bt sample by sample: each
    equal-tailed interval end is the monotone map of the normal quantile.  5-sigma bound on a
    sample quantile: sd sqrt(q (1 - q) / S) / phi(Phi^-1(q)), mapped through the monotone
    transform, so the bracket is exact."""
    transform = LabelTransform(names=("bt",), mean=np.array([-1.0]), std=np.array([2.5]))
    mus = np.array([-1.9, -1.5, 0.4, 1.6, 2.7])  # bt near 0, low, middle, high, near 1
    sds = np.array([0.3, 0.3, 0.5, 0.3, 0.3])
    n = 4000
    z = np.random.default_rng(7).standard_normal((len(mus), n, 1)) * sds[:, None, None]
    bt = transform.inverse(z + mus[:, None, None])
    out = summarise(bt, ["bt"])
    assert out["bt_ci99_lo"][0] == 0.0 and out["bt_ci99_hi"][-1] == 1.0  # clipped tails
    assert out["bt_ci68_lo"][0] > 0 and out["bt_ci68_hi"][-1] < 1
    for name, level in LEVELS.items():
        for q, end in (((1 - level) / 2, "lo"), ((1 + level) / 2, "hi")):
            x_q = stats.norm.ppf(q)
            se = np.sqrt(q * (1 - q) / n) / stats.norm.pdf(x_q)
            low = _bt_quantile(transform, mus + sds * (x_q - 5 * se))
            high = _bt_quantile(transform, mus + sds * (x_q + 5 * se))
            got = out[f"bt_{name}_{end}"]
            assert np.all((low - 1e-6 <= got) & (got <= high + 1e-6)), (name, end)
            # Must fail: the same posteriors twice as wide (outside the bracket).
            wide = _bt_quantile(transform, mus + 2 * sds * x_q)
            inner = (wide > 0) & (wide < 1)
            assert np.all((wide[inner] < low[inner]) | (wide[inner] > high[inner])), (name, end)
