"""Calibration figures, inspected in memory: the plotted data are the numbers computed."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from gampen.evaluation.coverage_figures import (
    joint_figure,
    marginal_figure,
    pit_figure,
    subsets_figure,
    truth_bins_figure,
)
from gampen.evaluation.marginal import CoverageCurve, curve_from_pit, pit_histogram

RED = to_rgba("tab:red")


def _curve(shift: float) -> CoverageCurve:
    pit = np.clip(np.random.default_rng(0).random(500) * (1 - shift) + shift / 2, 0, 1)
    return curve_from_pit(pit)


def _red_line(ax):
    return next(ln for ln in ax.get_lines() if to_rgba(ln.get_color()) == RED)


def test_marginal_figure_plots_the_curve_its_deviation_and_the_table_points():
    curves = {"bt": _curve(0.0), "r_e": _curve(0.3)}
    points = {
        p: CoverageCurve(
            np.array([0.6827, 0.9545, 0.9973]), np.array([0.7, 0.96, 1.0]), 500, *[np.zeros(3)] * 2
        )
        for p in curves
    }
    fig = marginal_figure(curves, source="samples", table_points=points)
    axes = np.array(fig.get_axes()).reshape(2, 2)
    top, bottom = _red_line(axes[0, 1]), _red_line(axes[1, 1])
    np.testing.assert_allclose(top.get_ydata(), curves["r_e"].empirical)
    np.testing.assert_allclose(
        bottom.get_ydata(), 100 * (curves["r_e"].empirical - curves["r_e"].levels)
    )
    diamonds = [ln for ln in axes[0, 0].get_lines() if ln.get_marker() == "D"]
    np.testing.assert_allclose(diamonds[0].get_ydata(), [0.7, 0.96, 1.0])
    assert "r_e" in axes[0, 1].get_title() and "n = 500" in axes[0, 1].get_title()
    assert "nominal" in axes[1, 0].get_xlabel()


def test_pit_figure_draws_densities():
    pit = np.random.default_rng(1).random(1000)
    fig = pit_figure({"bt": pit_histogram(pit), "flux": pit_histogram(pit**2)})
    axes = fig.get_axes()
    assert len(axes) == 2
    heights = axes[1].patches[-1].get_path().vertices[:, 1]  # the stairs
    assert np.isclose(heights.max(), np.histogram(pit**2, 20, (0, 1))[0].max() * 20 / 1000)
    assert "KS p" in axes[0].get_title()


def _cell(empirical: float, nominal: float) -> dict:
    return {"nominal": nominal, "empirical": empirical, "band": [nominal - 0.02, nominal + 0.02]}


def _bin(label: str, values: dict[str, float], params: list[str]) -> dict:
    intervals = {
        name: _cell(values[name], level)
        for name, level in (("ci68", 0.6827), ("ci95", 0.9545), ("ci99", 0.9973))
    }
    return {"label": label, "n": 100, "params": {p: {"intervals": intervals} for p in params}}


def test_subsets_figure_one_row_per_split_and_widths_share_a_row():
    values = {"ci68": 0.7827, "ci95": 0.9545, "ci99": 0.9973}
    conditional = {
        "neighbours": [
            _bin("isolated", values, ["bt", "r_e"]),
            _bin("with neighbours", values, ["bt", "r_e"]),
        ],
        "width_bt": [_bin("w in [0, 1)", values, ["bt"])],
        "width_r_e": [_bin("w in [1, 2]", values, ["r_e"])],
    }
    fig = subsets_figure(conditional, ["bt", "r_e"])
    axes = np.array(fig.get_axes()).reshape(2, 2)
    assert "neighbours" in axes[0, 0].get_ylabel() and "width" in axes[1, 0].get_ylabel()
    ticks = [t.get_text() for t in axes[1, 1].get_xticklabels()]
    assert ticks == ["[1, 2]\nn=100"]
    first = axes[0, 0].containers[0]  # the 68 % error bars
    np.testing.assert_allclose(first.lines[0].get_ydata(), [10.0, 10.0])


def test_truth_bins_figure_shades_the_bands_and_crosses_the_defects():
    good = {"ci68": 0.6927, "ci95": 0.9545, "ci99": 0.9973}  # +1 pp: inside the +-2 pp band
    bad = {"ci68": 0.3827, "ci95": 0.9545, "ci99": 0.9973}  # -30 pp at 68 %
    conditional = {
        "bt": [
            _bin("true B/T in [0, 0.2)", good, ["bt", "r_e"]),
            _bin("true B/T in [0.4, 0.6)", bad, ["bt", "r_e"]),
            _bin("pure disks (B/T = 0)", good, ["bt", "r_e"]),
        ],
        "r_e": [_bin("true r_e [arcsec] in [0.3, 3]", good, ["bt", "r_e"])],
    }
    fig = truth_bins_figure(conditional, ["bt", "r_e"])
    axes = np.array(fig.get_axes()).reshape(2, 2)  # rows: B/T, then r_e (no magnitude)
    assert "B/T" in axes[0, 0].get_ylabel() and "r_e" in axes[1, 0].get_ylabel()
    ax = axes[0, 1]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["[0, 0.2)\nn=100", "[0.4, 0.6)\nn=100", "pure disks\n(B/T = 0)\nn=100"]
    bands = ax.containers[0]  # the 68 % bands: nominal +- 2 pp
    np.testing.assert_allclose([r.get_y() for r in bands], [-2.0] * 3)
    np.testing.assert_allclose([r.get_height() for r in bands], [4.0] * 3)
    points, crosses = [ln for ln in ax.get_lines() if ln.get_marker() in ("o", "X")][:2]
    np.testing.assert_allclose(points.get_ydata(), [1.0, -30.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(crosses.get_ydata(), [-30.0], atol=1e-9)  # the one defect
    assert crosses.get_xdata()[0] == pytest.approx(1 - 0.22)
    assert sum(len(ln.get_xdata()) for ln in ax.get_lines() if ln.get_marker() == "X") == 1


def test_joint_figure_reports_68_and_95():
    curves = {"mahalanobis": _curve(0.0), "tarp": _curve(0.2)}
    fig = joint_figure(curves)
    texts = [t.get_text() for t in fig.get_axes()[0].texts]
    assert any("at 68 %" in t and "at 95 %" in t for t in texts)
