"""Known-answer coverage tests: a correct posterior passes, over- or under-confident ones fail."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from gampen.errors import CatalogError
from gampen.evaluate.coverage import format_coverage, interval_coverage
from gampen.infer.summary import LEVELS, summarise

N = 4000


def _posteriors(width_factor: float, seed: int = 0) -> tuple[Table, Table]:
    """Truth ~ N(mu, 1); posterior samples ~ N(mu, width_factor^2) around a noisy mu."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(0, 3, N)
    truth = centre + rng.normal(0, 1, N)
    samples = centre[:, None, None] + width_factor * rng.normal(0, 1, (N, 500, 1))
    stats = summarise(samples, ["x"])
    predictions = Table({"object_id": np.arange(N), "flags": np.zeros(N, int), **stats})
    return predictions, Table({"object_id": np.arange(N), "x": truth})


def _within(coverage: dict[str, float], tolerance: float) -> bool:
    return all(abs(coverage[name] - level) < tolerance for name, level in LEVELS.items())


def test_calibrated_posterior_passes():
    coverage = interval_coverage(*_posteriors(1.0), params=["x"])["x"]
    assert coverage["n"] == N
    assert _within(coverage, tolerance=0.025)  # ~3 sigma of binomial noise at 68 %


@pytest.mark.parametrize("width", [0.6, 1.6])
def test_over_and_under_confident_posteriors_fail(width):
    coverage = interval_coverage(*_posteriors(width), params=["x"])["x"]
    assert not _within(coverage, tolerance=0.025)


def test_fatal_rows_left_out_and_errors():
    predictions, truth = _posteriors(1.0)
    predictions["flags"][:10] = 1
    assert interval_coverage(predictions, truth, params=["x"])["x"]["n"] == N - 10
    assert "ci68 (68.27%)" in format_coverage(interval_coverage(predictions, truth, ["x"]))
    with pytest.raises(CatalogError, match="lacks parameter"):
        interval_coverage(predictions, truth, params=["bt"])
