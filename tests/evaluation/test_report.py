"""metrics.json is strict JSON; report.md shows the headline table and links the figures."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from gampen.evaluation.report import json_ready, render, write_metrics, write_report


def _cell(value, nominal):
    return {"nominal": nominal, "empirical": value, "band": [nominal - 0.02, nominal + 0.02]}


def _entry(label, n, values):
    levels = (("ci68", 0.6827), ("ci95", 0.9545), ("ci99", 0.9973))
    intervals = {name: _cell(v, lv) for (name, lv), v in zip(levels, values, strict=True)}
    params = {"bt": {"intervals": intervals, "curve_source": "samples"}}
    return {"label": label, "n": n, "params": params}


@pytest.fixture
def metrics():
    return {
        "gampen_version": "0.1",
        "inputs": {
            "predictions": "p.fits",
            "truth": "t.csv",
            "samples": None,
            "n_used": 100,
            "n_left_out": 2,
            "left_out": {"fatal_flag": 2, "nan_truth": 0},
            "model": None,
            "logit_eps": 0.001,
            "training_overlap": "",
        },
        "marginal": {
            **_entry("all", 100, [0.69, 0.90, np.nan]),
            "max_abs_deviation": np.float64(0.05),
        },
        "conditional": {
            "neighbours": [_entry("isolated", 50, [0.7, 0.95, 1.0])],
            "mag_halves": [_entry("faint (mag >= 21)", 50, [0.5, 0.95, 1.0])],
        },
        "joint": {
            "mahalanobis": {
                "n": 100,
                "coverage": {"68": 0.7, "95": 0.96},
                "max_abs_deviation": 0.03,
            },
            "tarp": {"n": 100, "coverage": {"68": 0.66, "95": 0.94}, "max_abs_deviation": 0.04},
        },
        "accuracy": {
            "bt": {"median": {"n": 100, "mean_abs_error": 0.1, "bias": -0.01}},
            "r_e": {
                "mode": {
                    "n": 100,
                    "median_abs_fractional_error": 0.08,
                    "bias": 0.02,
                    "outlier_fraction": float("nan"),
                }
            },
        },
        "rotation": {},
        "figures": ["coverage.png", "pit.png", "show_7.png"],
    }


def test_json_is_strict_with_nan_as_null(tmp_path, metrics):
    path = write_metrics(metrics, tmp_path / "metrics.json")
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert data["marginal"]["params"]["bt"]["intervals"]["ci99"]["empirical"] is None
    assert data["marginal"]["max_abs_deviation"] == 0.05
    assert json_ready({"a": np.arange(2), "b": (np.int64(3), np.inf)}) == {
        "a": [0, 1],
        "b": [3, None],
    }


def test_report_headline_table_bold_outside_band_and_relative_links(tmp_path, metrics):
    text = write_report(metrics, tmp_path / "report.md").read_text()
    assert "| all | 100 | bt | 69.0 | **90.0** | - |" in text
    assert "| faint (mag >= 21) | 50 | bt | **50.0** | 95.0 | 100.0 |" in text
    assert "| isolated | 50 |" in text
    assert "left out: 2 (fatal flag: 2)" in text
    assert "| Mahalanobis regions | 100 | 70.0 % | 96.0 % | 3.0 percentage points |" in text
    assert "| median | 0.1 | -0.01 |" in text and "| mode | 0.08 | 0.02 | - |" in text
    assert "](coverage.png)" in text and "](pit.png)" in text and "](show_7.png)" in text
    assert "joint.png" not in text and "Rotation" not in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["coverage.png", "pit.png", "show_7.png"]  # relative to report.md


def test_rotation_section(metrics):
    metrics["rotation"] = {
        "dihedral": {
            "settings": {"n_galaxies": 5, "n_passes": 2, "n_samples": 10},
            "params": {
                "r_e": {
                    "median_spread": 0.03,
                    "p90_spread": 0.07,
                    "kind": "fractional",
                    "median_spread_over_posterior_std": 0.1,
                }
            },
        },
        "rendered": {
            "params": {"r_e": {"n_groups": 4, "median_spread": 0.05, "kind": "fractional"}}
        },
    }
    text = render(metrics)
    assert "| r_e (fractional) | 0.03 | 0.07 | 0.1 |" in text
    assert "| r_e (fractional) | 4 | 0.05 |" in text


def test_truth_bins_table_with_table_and_sample_columns(metrics):
    pure = _entry("pure disks (B/T = 0)", 30, [0.4, 0.95, 1.0])
    pure["params"]["bt"]["pit_intervals"] = pure["params"]["bt"]["intervals"]
    metrics["conditional"]["bt"] = [_entry("true B/T in [0, 0.2)", 40, [0.68, 0.95, 1.0]), pure]
    metrics["conditional"]["r_e"] = [_entry("true r_e [arcsec] in [0.3, 0.9)", 20, [0.7, 0.9, 1.0])]
    text = render(metrics)
    assert "## Coverage by true B/T, magnitude and size" in text
    assert (
        "| bin | n | param | table 68.27 % | table 95.45 % | table 99.73 % | samples 68.27 %"
        in text
    )
    assert "| true B/T in [0, 0.2) | 40 | bt | 68.0 | 95.0 | 100.0 | - | - | - |" in text
    assert "| pure disks (B/T = 0) | 30 | bt | **40.0** | 95.0 | 100.0 | **40.0** | 95.0 |" in text
    assert "| true r_e [arcsec] in [0.3, 0.9) | 20 | bt | 70.0 | **90.0** |" in text
    del metrics["conditional"]["bt"]
    assert "samples 68.27 %" not in render(metrics)  # no row has samples: table columns only
    del metrics["conditional"]["r_e"]
    assert "Coverage by true" not in render(metrics)


def test_by_columns_table_only_for_the_columns_asked_for(metrics):
    assert "Coverage by the columns asked for" not in render(metrics)
    metrics["conditional"]["by psf_model"] = [
        _entry("psf_model = kolmogorov", 30, [0.55, 0.9, 1.0]),
        _entry("psf_model = moffat", 70, [0.7, 0.95, 1.0]),
    ]
    text = render(metrics)
    assert "## Coverage by the columns asked for" in text
    assert "one bin per name, of `psf_model` (`--by`)" in text
    assert "| psf_model = kolmogorov | 30 | bt | **55.0** | **90.0** | 100.0 |" in text
    assert "| psf_model = moffat | 70 | bt | 70.0 | 95.0 | 100.0 |" in text
    assert text.index("Coverage by the columns") > text.index("## Coverage of the credible")


def test_header_names_the_model_its_eps_and_a_training_overlap(metrics):
    assert "eps = 0.001 (GaMPEN's default; no --model given)" in render(metrics)
    metrics["inputs"].update(model="m.zip", logit_eps=0.05, training_overlap="it repeats them")
    text = render(metrics)
    assert "eps = 0.05 (the model's, `m.zip`)" in text
    assert "training galaxies** (it repeats them)" in text
