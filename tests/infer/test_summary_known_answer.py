"""Posterior summaries against independent oracles: numpy's statistics and order-statistic
quantiles (``method='weibull'``), a direct Gaussian KDE maximised by scipy, analytic
quantiles of transformed normals, rank arithmetic done by hand and direct counts."""

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
            quantile = np.quantile(x, p, axis=1, method="weibull")
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


def test_interval_ends_at_whole_ranks_are_those_order_statistics(monkeypatch):
    """A level whose lower rank (1 - L) / 2 (S + 1) is a whole number r gives exactly the
    r-th smallest and r-th largest samples (np.sort, ranks counted by hand), even where the
    rank rounds to just below 1 (L = 0.9 at S = 19: 0.05 * 20 = 0.9999999999999998)."""
    for level, n, r in [(0.96, 99, 2), (0.9, 19, 1), (0.5, 3, 1)]:
        monkeypatch.setitem(LEVELS, "ci68", level)
        samples = np.random.default_rng(n).exponential(size=(5, n, 1)).astype(np.float32)
        out = summarise(samples, ["a"])
        ordered = np.sort(samples[:, :, 0], axis=1)
        np.testing.assert_allclose(out["a_ci68_lo"], ordered[:, r - 1], rtol=1e-6)
        np.testing.assert_allclose(out["a_ci68_hi"], ordered[:, n - r], rtol=1e-6)
        # Must fail: numpy's default quantiles sit one or more ranks further in.
        assert np.all(np.quantile(samples[:, :, 0], (1 - level) / 2, axis=1) > ordered[:, r - 1])


def _ranks(level: float, n: int) -> tuple[int, int]:
    """The two order statistics (1-based) between which the lower end at ``level`` lies."""
    rank = (1 - level) / 2 * (n + 1)
    return int(rank // 1), -int(-rank // 1)


ZERO_COUNTS = (300, 159, 158, 100, 23, 22, 2, 1)


@pytest.mark.parametrize("end", ["lo", "hi"])
def test_bt_intervals_touching_a_boundary_are_one_sided(end):
    """bt samples clipped to 0 (or 1): an interval end whose two neighbouring order
    statistics are both clipped is exactly 0 (or 1), else above it.  With 1000 samples the
    lower ends lie between ranks (158, 159), (22, 23) and (1, 2) (by hand below), so 300 zeros
    (30 %) reach all three ends, 159 the 68.27 % one just, 100 (10 %) only the 95.45 and
    99.73 % ones, 1 none."""
    n = 1000
    assert [_ranks(level, n) for level in LEVELS.values()] == [(158, 159), (22, 23), (1, 2)]
    rng = np.random.default_rng(3)
    rows = [
        rng.permutation(np.r_[np.zeros(zeros), rng.uniform(0.01, 0.6, n - zeros)])
        for zeros in ZERO_COUNTS
    ]
    bt = np.array(rows, dtype=np.float32)
    bound = 0.0
    if end == "hi":  # the mirror image: clipped at 1
        bt, bound = 1 - bt, 1.0
    out = summarise(bt[:, :, None], ["bt"])
    for row, zeros in enumerate(ZERO_COUNTS):
        for name, level in LEVELS.items():
            touches = _ranks(level, n)[1] <= zeros
            got = out[f"bt_{name}_{end}"][row]
            assert (got == bound) == touches, (zeros, name, got)
    assert out[f"bt_ci68_{end}"][0] == bound and out[f"bt_ci68_{end}"][3] != bound  # 30, 10 %
    # Must fail: numpy's default ends lie a rank further in, off the bound with 159 zeros
    # at 68.27 % and with 23 at 95.45 %.
    p = {"lo": (1 - LEVELS["ci68"]) / 2, "hi": (1 + LEVELS["ci68"]) / 2}[end]
    assert np.quantile(bt[1], p) != bound
    p = {"lo": (1 - LEVELS["ci95"]) / 2, "hi": (1 + LEVELS["ci95"]) / 2}[end]
    assert np.quantile(bt[4], p) != bound


def test_bt_class_probabilities_are_the_fractions_beyond_the_cuts():
    """``p_disk`` / ``p_bulge``: direct numpy counts of samples strictly below 0.1 / above
    0.9; samples exactly at a cut (as float32) belong to neither; NaN rows stay NaN."""
    rng = np.random.default_rng(11)
    n = 200
    bt = rng.beta(0.6, 0.6, (6, n)).astype(np.float32)
    bt[0, :50] = np.float32(0.1)  # exactly at the cuts, and at the clipped bounds
    bt[0, 50:90] = np.float32(0.9)
    bt[1, :30], bt[1, 30:70] = 0.0, 1.0
    bt[2] = np.nan
    bt[3] = 0.05  # all disk
    r_e = rng.lognormal(size=(6, n)).astype(np.float32)
    out = summarise(np.stack([r_e, bt], axis=-1), ["r_e", "bt"])
    with np.errstate(invalid="ignore"):
        disk = np.count_nonzero(bt < np.float32(0.1), axis=1) / n
        bulge = np.count_nonzero(bt > np.float32(0.9), axis=1) / n
    disk[2] = bulge[2] = np.nan
    np.testing.assert_allclose(out["p_disk"], disk, rtol=1e-6)
    np.testing.assert_allclose(out["p_bulge"], bulge, rtol=1e-6)
    assert out["p_disk"].dtype == np.float32 and out["p_disk"][3] == 1 and out["p_bulge"][3] == 0
    # The columns follow the bt columns; r_e's come first, as named.
    names = list(out)
    assert names.index("p_disk") == names.index("bt_ci99_hi") + 1 == len(names) - 2
    assert names[-1] == "p_bulge" and names[: len(STATISTICS)] == [f"r_e_{s}" for s in STATISTICS]
    # Must fail: counting the samples at the cuts too changes row 0.
    assert np.count_nonzero(bt[0] <= np.float32(0.1)) / n != disk[0]
    assert np.count_nonzero(bt[0] >= np.float32(0.9)) / n != bulge[0]


def test_no_class_columns_without_bt():
    samples = np.random.default_rng(0).normal(size=(2, 50, 2)).astype(np.float32)
    assert list(summarise(samples, ["r_e", "flux"])) == [
        f"{p}_{s}" for p in ("r_e", "flux") for s in STATISTICS
    ]
