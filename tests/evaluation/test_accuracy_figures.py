"""Residual and rotation figures, inspected in memory; running quantiles by hand."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgba

from gampen.evaluation.accuracy_figures import residuals_figure, rotation_figure, running_quantiles


def test_running_quantiles_in_equal_count_bins():
    x = np.arange(12.0)
    y = np.where(x < 6, 1.0, 3.0)
    centre, mid, lo, hi = running_quantiles(x, y, bins=2)
    np.testing.assert_allclose(centre, [2.5, 8.5])
    np.testing.assert_allclose(mid, [1.0, 3.0])
    np.testing.assert_allclose(lo, mid)
    np.testing.assert_allclose(hi, mid)
    assert running_quantiles(np.array([1.0]), np.array([1.0]))[0].size == 0
    centre, *_ = running_quantiles(np.array([-1.0, 1.0, 2.0, 3.0]), np.ones(4), log=True, bins=1)
    assert centre[0] == 2.0  # non-positive x left out on a log axis


def test_residuals_figure_layout_and_running_median():
    rng = np.random.default_rng(0)
    truth = {"bt": rng.random(300), "r_e": rng.uniform(0.2, 3, 300)}
    errors = {
        "bt": {"median": np.full(300, 0.05), "mode": np.full(300, -0.05)},
        "r_e": {"median": rng.normal(0, 0.1, 300), "mode": rng.normal(0, 0.1, 300)},
    }
    fig = residuals_figure(
        errors, truth, fractional={"bt": False, "r_e": True}, mag=rng.uniform(18, 23, 300)
    )
    axes = np.array(fig.get_axes()).reshape(2, 2)
    red = next(ln for ln in axes[0, 0].get_lines() if to_rgba(ln.get_color()) == to_rgba("tab:red"))
    np.testing.assert_allclose(red.get_ydata(), 0.05)
    assert axes[1, 0].get_xscale() == "log" and axes[1, 1].get_xscale() == "linear"
    assert axes[1, 0].get_ylabel() == "(r_e est. - true) / true"
    assert axes[0, 1].get_xlabel() == "true magnitude [mag]"
    single = residuals_figure(errors, truth, fractional={"bt": False, "r_e": True})
    assert len(single.get_axes()) == 2


def test_rotation_figure_marks_the_medians():
    spreads = {"dihedral": np.array([[0.01, 0.1], [0.03, 0.2], [0.02, np.nan]])}
    summaries = {
        "dihedral": {
            "bt": {"median_spread": 0.02, "kind": "absolute"},
            "r_e": {"median_spread": 0.15, "kind": "fractional"},
        }
    }
    fig = rotation_figure(spreads, ["bt", "r_e"], summaries)
    axes = fig.get_axes()
    assert axes[0].get_lines()[0].get_xdata()[0] == 0.02
    assert "fractional" in axes[1].get_xlabel() and "absolute" in axes[0].get_xlabel()
    assert "0.15" in axes[1].get_legend().get_texts()[0].get_text()
