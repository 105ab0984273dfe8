"""What the network sees: the drawn window is where the STN samples; corner plots; choices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.table import Table
from matplotlib.colors import to_rgba

from gampen.evaluation.figure_base import new_figure
from gampen.evaluation.inputs import load_inputs
from gampen.evaluation.network_view import (
    choose,
    corner,
    grid_figure,
    mass_levels,
    show_figure,
    stn_view,
    window_corners,
)
from gampen.model.config import NetworkConfig
from gampen.model.network import GampenNet

TINY = {"input_size": 32, "widths": (4, 8, 8, 16), "hidden": 16, "stn_widths": (4, 8)}
LEVELS = [f"ci{n}_{end}" for n in (68, 95, 99) for end in ("lo", "hi")]


def test_window_corners_of_identity_and_zoom():
    theta = np.zeros((2, 2, 3))
    theta[0, 0, 0] = theta[0, 1, 1] = 1.0
    theta[1, 0, 0] = theta[1, 1, 1] = 0.5
    corners = window_corners(theta, 32)
    np.testing.assert_allclose(corners[0], [[-0.5, -0.5], [31.5, -0.5], [31.5, 31.5], [-0.5, 31.5]])
    np.testing.assert_allclose(corners[1].min(0), [7.5, 7.5])
    np.testing.assert_allclose(corners[1].max(0), [23.5, 23.5])


@pytest.mark.parametrize("kind", ["zoom", "affine"])
def test_drawn_window_is_where_the_stn_samples(kind):
    torch.manual_seed(0)
    net = GampenNet(NetworkConfig(stn=kind, **TINY))
    ramp_x = torch.arange(32.0).expand(32, 32)  # each pixel holds its own x coordinate
    ramp_y = ramp_x.T
    images = torch.stack([ramp_x, ramp_y])[:, None] + 0.0
    warped, zoom, corners = stn_view(net, images)
    assert warped.shape == (2, 1, 32, 32) and zoom.shape == (2,)
    # Output pixel (row 0, col 0) samples the input at its centre, (-1 + 1/32, -1 + 1/32) in
    # normalised output coordinates: corner 0 moved 1/64 of the way along both window edges.
    # The ramps are linear, so bilinear sampling returns exactly that position.
    for g, axis in ((0, 0), (1, 1)):
        c = corners[g]
        start = c[0] + (c[1] - c[0]) / 64 + (c[3] - c[0]) / 64  # centre of output pixel (0, 0)
        assert warped[g, 0, 0, 0] == pytest.approx(start[axis], abs=1e-3)
    if kind == "zoom":
        side = corners[0].max(0) - corners[0].min(0)
        np.testing.assert_allclose(side, zoom[0] * 32, rtol=1e-6)


def _matched(n_isolated: int, n_crowded: int) -> object:
    n = n_isolated + n_crowded
    predictions = Table({"object_id": np.arange(n), "flags": np.zeros(n, dtype=int)})
    predictions["bt_median"] = np.full(n, 0.5)
    for c in LEVELS:
        predictions[f"bt_{c}"] = np.full(n, 0.5)
    truth = Table({"object_id": np.arange(n), "bt": np.full(n, 0.5)})
    truth["n_neighbours"] = [0] * n_isolated + [2] * n_crowded
    return load_inputs(predictions, truth)


def test_choose_balances_isolated_and_crowded_galaxies():
    m = _matched(10, 5)
    chosen = choose(m, 6, rng=np.random.default_rng(0))
    assert np.sum(chosen < 10) == 3 and np.sum(chosen >= 10) == 3
    assert len(choose(m, 30, rng=np.random.default_rng(0))) == 15
    assert len(np.unique(chosen)) == len(chosen)
    m.truth.remove_column("n_neighbours")
    assert len(choose(m, 4, rng=np.random.default_rng(0))) == 4


def test_mass_levels_hold_the_requested_fractions():
    counts = np.array([[8.0, 4.0], [2.0, 1.0]])  # cumulative 8/15, 12/15, 14/15, 1
    np.testing.assert_array_equal(mass_levels(counts, (0.95, 0.68)), [1.0, 4.0])


def test_corner_marks_the_truth_on_every_panel():
    rng = np.random.default_rng(0)
    samples = rng.normal([0.3, 1.0, 100.0], [0.05, 0.1, 5.0], size=(500, 3))
    truth = np.array([0.32, 1.1, 95.0])
    fig = new_figure(6, 6)
    axes = fig.subplots(3, 3, squeeze=False)
    corner(axes, samples, truth, ["bt", "r_e", "flux"])
    red = to_rgba("tab:red")
    for i in range(3):
        lines = [ln for ln in axes[i, i].get_lines() if to_rgba(ln.get_color()) == red]
        assert lines and np.allclose(lines[0].get_xdata(), truth[i])
        for j in range(i):
            stars = [ln for ln in axes[i, j].get_lines() if ln.get_marker() == "*"]
            assert np.allclose([stars[0].get_xdata()[0], stars[0].get_ydata()[0]], truth[[j, i]])
    assert not axes[0, 2].axison
    assert (
        axes[2, 1].get_xlabel() == r"$r_e$ [arcsec]"
        and axes[1, 0].get_ylabel() == axes[2, 1].get_xlabel()
    )


def test_show_and_grid_figures_have_their_panels():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 16, 16))
    corners = np.array([[2.0, 2.0], [13.0, 2.0], [13.0, 13.0], [2.0, 13.0]])
    samples = rng.normal(size=(200, 3)) + np.array([0.5, 1.0, 50.0])
    fig = show_figure(
        image, image, corners, samples, np.array([0.5, 1.0, 50.0]), ["bt", "r_e", "flux"], title="t"
    )
    assert len(fig.get_axes()) == 2 + 9
    grid = grid_figure(
        {"isolated": [(image, corners, "a")] * 3, "with neighbours": [(image, corners, "b")]}
    )
    axes = grid.get_axes()
    assert len(axes) == 6 and sum(ax.axison for ax in axes) == 4
