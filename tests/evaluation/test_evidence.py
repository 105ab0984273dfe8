"""Per-galaxy evidence: one streamed pass equals the direct computation; subsets; summaries."""

from __future__ import annotations

import numpy as np
import pytest

from gampen.calibration.ranks import mahalanobis_fraction
from gampen.evaluation import evidence as ev
from gampen.evaluation.inputs import load_inputs
from gampen.evaluation.joint import to_unbounded

from .posteriors import gaussian_population, write_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    pop = gaussian_population(300, scale=1.0, n_samples=200, seed=7)
    paths = write_inputs(tmp_path_factory.mktemp("evidence"), pop)
    return pop, paths


def test_streamed_evidence_equals_the_direct_computation(inputs):
    pop, (pred, truth, samples) = inputs
    matched = load_inputs(pred, truth, samples=samples)
    found = ev.collect(matched, rng=np.random.default_rng(0), progress=False, block=64)
    assert found.pit.shape == (300, 3) and np.isfinite(found.pit).all()
    assert np.isfinite(found.mahalanobis).all() and np.isfinite(found.tarp).all()
    # The PIT lies between the two ranks a tie-free truth can have.
    values = pop.samples.astype(float)
    true = np.stack([np.asarray(pop.truth[p]) for p in pop.params], 1)
    below = np.mean(values < true[:, None, :], axis=1)
    assert np.all(np.abs(found.pit - below) <= 1 / values.shape[1] + 1e-12)
    # Mahalanobis ranks: same up to the tie-breaking draw.
    direct = mahalanobis_fraction(
        to_unbounded(values, pop.params),
        to_unbounded(true, pop.params),
        rng=np.random.default_rng(1),
    )
    assert np.all(np.abs(found.mahalanobis - direct) <= 1 / values.shape[1] + 1e-12)


def test_without_samples_only_the_table_is_judged(inputs):
    _, (pred, truth, _) = inputs
    found = ev.collect(load_inputs(pred, truth), rng=np.random.default_rng(0), progress=False)
    assert found.pit is None and found.mahalanobis is None
    curve = found.marginal_curve("bt")
    np.testing.assert_allclose(curve.levels, [0.6827, 0.9545, 0.9973])
    summary = ev.summarise(found, curves=True)
    assert "joint" not in summary and "pit_intervals" not in summary["params"]["bt"]
    assert summary["params"]["bt"]["curve_source"] == "table intervals"


def test_subset_and_summary_structure(inputs):
    _, (pred, truth, samples) = inputs
    found = ev.collect(
        load_inputs(pred, truth, samples=samples), rng=np.random.default_rng(0), progress=False
    )
    mask = np.arange(300) < 100
    part = found.subset(mask)
    assert len(part) == 100
    np.testing.assert_array_equal(part.pit, found.pit[:100])
    summary = ev.summarise(part, curves=False)
    assert summary["n"] == 100 and set(summary["params"]) == {"bt", "r_e", "flux"}
    cell = summary["params"]["r_e"]["intervals"]["ci68"]
    assert cell["nominal"] == 0.6827 and cell["band"][0] < 0.6827 < cell["band"][1]
    assert cell["empirical"] == pytest.approx(part.hits["r_e"]["ci68"].mean())
    assert cell["outside_band"] == (not cell["band"][0] <= cell["empirical"] <= cell["band"][1])
    sampled = summary["params"]["r_e"]["pit_intervals"]["ci95"]  # |PIT - 1/2| < 0.9545 / 2
    inside = np.abs(part.pit[:, 1] - 0.5) < 0.9545 / 2
    assert sampled["empirical"] == pytest.approx(inside.mean()) and sampled["nominal"] == 0.9545
    assert set(summary["joint"]) == {"mahalanobis", "tarp"}
    assert "curve" not in summary["joint"]["tarp"]
    assert "curve" in ev.summarise(part, curves=True)["joint"]["tarp"]


def test_too_few_samples_skip_the_joint_tests(tmp_path):
    pop = gaussian_population(50, scale=1.0, n_samples=ev.MIN_JOINT_SAMPLES - 1, seed=1)
    pred, truth, samples = write_inputs(tmp_path, pop)
    found = ev.collect(
        load_inputs(pred, truth, samples=samples), rng=np.random.default_rng(0), progress=False
    )
    assert np.isfinite(found.pit).all() and np.isnan(found.mahalanobis).all()
    assert "joint" not in ev.summarise(found, curves=False)


def test_same_seed_same_evidence(inputs):
    _, (pred, truth, samples) = inputs
    matched = load_inputs(pred, truth, samples=samples)
    a, b, c = (
        ev.collect(matched, rng=np.random.default_rng(seed), progress=False) for seed in (3, 3, 4)
    )
    np.testing.assert_array_equal(a.pit, b.pit)
    np.testing.assert_array_equal(a.tarp, b.tarp)
    assert not np.array_equal(a.tarp, c.tarp)


def _mahalanobis_rank(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Share of each galaxy's samples (n, S, k) nearer its mean than the truth (n, k) is,
    in the metric of its sample covariance (NumPy only)."""
    mean = samples.mean(axis=1)
    out = np.empty(len(samples))
    for i, (x, m, t) in enumerate(zip(samples, mean, truth, strict=True)):
        inverse = np.linalg.inv(np.cov(x, rowvar=False))
        d_x = np.einsum("si,ij,sj->s", x - m, inverse, x - m)
        out[i] = np.mean(d_x < (t - m) @ inverse @ (t - m))
    return out


def test_the_joint_space_has_the_given_logit_eps(inputs):
    pop, (pred, truth, samples) = inputs
    matched = load_inputs(pred, truth, samples=samples)
    values = pop.samples.astype(float)
    true = np.stack([np.asarray(pop.truth[p]) for p in pop.params], 1)

    def space(v: np.ndarray) -> np.ndarray:  # logit(0.05 + 0.9 bt), log r_e, log flux
        p = 0.05 + 0.9 * v[..., 0]
        return np.stack([np.log(p / (1 - p)), np.log(v[..., 1]), np.log(v[..., 2])], axis=-1)

    expected = _mahalanobis_rank(space(values), space(true))
    rng = np.random.default_rng(0)
    found = ev.collect(matched, rng=rng, progress=False, eps=0.05).mahalanobis
    assert np.all(np.abs(found - expected) <= 1 / values.shape[1] + 1e-9)
    default = ev.collect(matched, rng=np.random.default_rng(0), progress=False).mahalanobis
    assert np.mean(np.abs(default - expected) > 2 / values.shape[1]) > 0.05  # another space
