"""Accuracy of the median and mode: hand-computed answers, overall and per subset."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from gampen.evaluation.accuracy import accuracy, binned_accuracy, error_metrics, errors
from gampen.evaluation.conditional import Subset
from gampen.evaluation.inputs import load_inputs

LEVELS = [f"ci{n}_{end}" for n in (68, 95, 99) for end in ("lo", "hi")]


@pytest.fixture
def matched():
    true_bt = np.array([0.0, 0.2, 0.5, 0.9, 1.0, 0.4])
    true_re = np.array([1.0, 2.0, 0.5, 4.0, 1.0, 1.0])
    bt_error = np.array([0.1, -0.2, 0.0, 0.05, -0.3, 0.15])
    re_fraction = np.array([0.1, -0.2, 0.6, 0.0, -0.55, 0.3])
    predictions = Table({"object_id": np.arange(6), "flags": np.zeros(6, dtype=int)})
    predictions["bt_median"] = true_bt + bt_error
    predictions["bt_mode"] = true_bt - 0.1
    predictions["r_e_median"] = true_re * (1 + re_fraction)
    predictions["r_e_mode"] = true_re * 1.25
    for p in ("bt", "r_e"):
        for c in LEVELS:
            predictions[f"{p}_{c}"] = predictions[f"{p}_median"]
    truth = Table({"object_id": np.arange(6), "bt": true_bt, "r_e": true_re})
    truth["n_neighbours"] = [0, 0, 0, 1, 2, 1]
    return load_inputs(predictions, truth)


def test_overall_metrics_equal_the_hand_computed_values(matched):
    result = accuracy(matched)
    bt, r_e = result["bt"], result["r_e"]
    # bt errors 0.1, -0.2, 0, 0.05, -0.3, 0.15
    assert bt["median"]["mean_abs_error"] == pytest.approx(0.8 / 6)
    assert bt["median"]["bias"] == pytest.approx(-0.2 / 6)
    assert bt["mode"] == {"n": 6, "mean_abs_error": pytest.approx(0.1), "bias": pytest.approx(-0.1)}
    # r_e fractional errors 0.1, -0.2, 0.6, 0, -0.55, 0.3: sorted |e| 0, .1, .2, .3, .55, .6
    assert r_e["median"]["median_abs_fractional_error"] == pytest.approx(0.25)
    assert r_e["median"]["bias"] == pytest.approx(0.05)  # median of -.55 -.2 0 .1 .3 .6
    assert r_e["median"]["outlier_fraction"] == pytest.approx(2 / 6)
    assert r_e["mode"]["median_abs_fractional_error"] == pytest.approx(0.25)
    assert r_e["mode"]["outlier_fraction"] == 0.0


def test_binned_metrics_per_subset(matched):
    isolated = np.array([True, True, True, False, False, False])
    parts = [
        Subset("neighbours", "isolated", isolated),
        Subset("neighbours", "with neighbours", ~isolated),
        Subset("width_r_e", "narrow", isolated, ("r_e",)),
    ]
    binned = binned_accuracy(matched, parts)
    iso, nb = binned["neighbours"]
    assert iso["n"] == 3 and iso["params"]["bt"]["median"]["mean_abs_error"] == pytest.approx(0.1)
    assert nb["params"]["bt"]["median"]["bias"] == pytest.approx(-0.1 / 3)
    assert nb["params"]["r_e"]["median"]["outlier_fraction"] == pytest.approx(1 / 3)
    assert set(binned["width_r_e"][0]["params"]) == {"r_e"}


def test_errors_and_empty_sets(matched):
    np.testing.assert_allclose(errors(matched, "r_e", "mode"), 0.25)
    empty = error_metrics(np.array([np.nan]), fractional=True)
    assert empty["n"] == 0 and np.isnan(empty["bias"]) and np.isnan(empty["outlier_fraction"])
    assert np.isnan(error_metrics(np.array([]), fractional=False)["mean_abs_error"])


def test_missing_mode_column_is_skipped(matched):
    matched.predictions.remove_column("bt_mode")
    assert list(accuracy(matched)["bt"]) == ["median"]
