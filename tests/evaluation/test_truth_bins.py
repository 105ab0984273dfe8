"""Coverage per bin of true B/T, magnitude and size, end to end through evaluate(): posteriors
exact everywhere but in one B/T fifth, where they are too narrow by a known factor."""

from __future__ import annotations

import functools
import itertools
import json

import numpy as np
import pytest
from scipy import stats

from gampen.evaluation.pipeline import EvaluateOptions, evaluate

from .posteriors import TABLE_LEVELS, truth_bin_population, write_inputs

N = 6000
N_SAMPLES = 200
FACTOR = 2.0
NARROW = (0.4, 0.6)
BT_LABELS = [
    "true B/T in [0, 0.2)",
    "true B/T in [0.2, 0.4)",
    "true B/T in [0.4, 0.6)",
    "true B/T in [0.6, 0.8)",
    "true B/T in [0.8, 1]",
    "pure disks (B/T = 0)",
    "pure bulges (B/T = 1)",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("truth_bins")
    pop = truth_bin_population(N, narrow=NARROW, factor=FACTOR, n_samples=N_SAMPLES, seed=21)
    pred, truth, samples = write_inputs(folder / "in", pop)
    options = EvaluateOptions(progress=False)
    metrics = evaluate(pred, truth, out=folder / "out", samples=samples, options=options)
    return pop, metrics, folder / "out"


def _bt_masks(bt: np.ndarray) -> list[np.ndarray]:
    """The seven B/T rows, written out by hand."""
    fifths = [(bt >= lo) & (bt < lo + 0.2) for lo in (0.0, 0.2, 0.4, 0.6)]
    return [*fifths, (bt >= 0.8) & (bt <= 1.0), bt == 0.0, bt == 1.0]


def _rank_fifths(values: np.ndarray) -> list[np.ndarray]:
    """Fifths by rank (the values are distinct, so each holds exactly a fifth)."""
    rank = np.argsort(np.argsort(values))
    return [(rank >= k * len(values) // 5) & (rank < (k + 1) * len(values) // 5) for k in range(5)]


def _table_coverage(f: float, level: float) -> float:
    """The truth lies within z sigma / f of an estimate N(truth, sigma^2): 2 Phi(z / f) - 1."""
    return float(2 * stats.norm.cdf(stats.norm.ppf((1 + level) / 2) / f) - 1)


@functools.cache
def _pit_coverage(f: float, level: float, s: int = N_SAMPLES) -> float:
    """The same from the randomised PIT of ``s`` samples: the truth sits x ~ N(0, f^2)
    sample widths from the centre, b ~ Binomial(s, Phi(x)) samples lie below it, and the
    PIT (b + U) / (s + 1) is inside when within level / 2 of 1/2 (by quadrature; it equals
    ``level`` when f = 1, and is not 2 Phi(z / f) - 1 at 99.73 %: 200 samples hardly
    resolve the tails)."""
    x = np.linspace(-12 * f, 12 * f, 8001)
    b = np.arange(s + 1)
    low, high = (s + 1) * (0.5 - level / 2), (s + 1) * (0.5 + level / 2)
    inside = np.clip(np.minimum(b + 1, high) - np.maximum(b, low), 0, None)  # U's share
    given_x = stats.binom.pmf(b[None], s, stats.norm.cdf(x)[:, None]) @ inside
    return float(np.trapezoid(given_x * stats.norm.pdf(x, scale=f), x))


def _expected(bt: np.ndarray, coverage, level: float) -> tuple[float, float]:
    """Mean and standard deviation of the coverage of galaxies with true B/T ``bt``, each
    holding its truth with probability ``coverage(f, level)``, f = FACTOR in the narrowed
    bin and 1 elsewhere."""
    narrowed = (bt >= NARROW[0]) & (bt < NARROW[1])
    p = np.where(narrowed, coverage(FACTOR, level), coverage(1.0, level))
    return float(p.mean()), float(np.sqrt(np.sum(p * (1 - p))) / len(p))


ORACLES = (("intervals", _table_coverage), ("pit_intervals", _pit_coverage))


def _check_rows(entries, masks, bt) -> None:
    """Every row's n and, per parameter and level, table and PIT coverage within four
    standard deviations of the expected."""
    for entry, mask in zip(entries, masks, strict=True):
        assert entry["n"] == mask.sum(), entry["label"]
        for (p, cell), (source, coverage) in itertools.product(entry["params"].items(), ORACLES):
            for name, level in TABLE_LEVELS.items():
                mean, sd = _expected(bt[mask], coverage, level)
                got = cell[source][name]["empirical"]
                assert abs(got - mean) < 4 * sd, (entry["label"], p, source, name, got, mean)


def test_the_pit_oracle_is_uniform_when_calibrated():
    for level in TABLE_LEVELS.values():
        assert _pit_coverage(1.0, level) == pytest.approx(level, abs=1e-6)
        assert _table_coverage(1.0, level) == pytest.approx(level, abs=1e-12)
    assert _pit_coverage(FACTOR, 0.6827) == pytest.approx(_table_coverage(FACTOR, 0.6827), abs=0.01)


def test_bt_fifths_and_pure_rows_have_the_analytic_coverage(run):
    pop, metrics, _ = run
    bt = np.asarray(pop.truth["bt"])
    rows = metrics["conditional"]["bt"]
    assert [e["label"] for e in rows] == BT_LABELS
    assert rows[5]["n"] > 500 and rows[6]["n"] > 500  # a tenth each
    _check_rows(rows, _bt_masks(bt), bt)


def test_the_narrowed_bin_alone_is_outside_its_band(run):
    _, metrics, _ = run
    for entry in metrics["conditional"]["bt"]:
        narrowed = entry["label"] == "true B/T in [0.4, 0.6)"
        for p, cell in entry["params"].items():
            for source in ("intervals", "pit_intervals"):
                for name in TABLE_LEVELS:
                    got = cell[source][name]
                    if narrowed:  # 2 Phi(z / 2) - 1: 38 %, 68 %, 87 % against 68, 95, 99.7 %
                        assert got["outside_band"] and got["empirical"] < got["band"][0]
                    else:
                        assert abs(got["empirical"] - got["nominal"]) < 0.05, (entry["label"], p)


def test_magnitude_and_size_fifths_mix_the_narrowed_galaxies_in(run):
    pop, metrics, _ = run
    bt = np.asarray(pop.truth["bt"])
    for split in ("mag", "r_e"):
        masks = _rank_fifths(np.asarray(pop.truth[split]))
        assert all(e["n"] == N // 5 for e in metrics["conditional"][split])
        _check_rows(metrics["conditional"][split], masks, bt)


def test_report_json_and_figure_show_the_bins(run):
    _, metrics, out = run
    assert "coverage_truth.png" in metrics["figures"] and (out / "coverage_truth.png").is_file()
    report = (out / "report.md").read_text()
    assert "## Coverage by true B/T, magnitude and size" in report
    assert "](coverage_truth.png)" in report
    assert "| bin | n | param | table 68.27 % |" in report and "samples 99.73 % |" in report
    narrowed = [ln for ln in report.splitlines() if ln.startswith("| true B/T in [0.4, 0.6) |")]
    assert len(narrowed) == 3  # one per parameter, every coverage in bold
    assert all(ln.count("**") == 2 * 6 for ln in narrowed)
    assert any(ln.startswith("| pure bulges (B/T = 1) |") for ln in report.splitlines())
    stored = json.loads((out / "metrics.json").read_text())["conditional"]
    cell = stored["bt"][2]["params"]["bt"]["intervals"]["ci68"]
    assert cell["outside_band"] is True and cell["empirical"] < 0.45
    assert [len(stored[s]) for s in ("bt", "mag", "r_e")] == [7, 5, 5]
