"""Rank maths shared by calibrate's check and evaluate: the share below each level."""

from __future__ import annotations

import numpy as np

from gampen.calibration.ranks import share_below


def test_share_below_counts_finite_fractions_strictly_below_each_level():
    got = share_below(np.array([0.1, 0.5, 0.7, np.nan, 0.5]), np.array([0.0, 0.5, 0.68, 1.0]))
    np.testing.assert_array_equal(got, [0.0, 0.25, 0.75, 1.0])
    assert np.isnan(share_below(np.array([np.nan]), np.array([0.5, 0.9]))).all()
