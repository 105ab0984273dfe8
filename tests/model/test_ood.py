"""The out-of-distribution score against independent oracles: the chi-square law of
Mahalanobis distances, scipy's Mahalanobis distance with the model's full covariance, and
flag rates on in-distribution and on shifted features."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import mahalanobis

from gampen.model.ood import QUANTILE, OodModel


def _ppca_sample(n: int, seed: int, *, d: int = 40, k: int = 5) -> np.ndarray:
    """Gaussian features whose covariance is k strong directions plus isotropic noise."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(99).normal(size=(d, k)))[0].T  # fixed (k, d)
    strong = rng.normal(size=(n, k)) * np.linspace(10.0, 3.0, k)
    return 5.0 + strong @ basis + rng.normal(0.0, 0.5, (n, d))


def test_distances_follow_the_chi_square_law_of_their_dimension():
    model = OodModel.fit(_ppca_sample(20_000, 0), components=5)
    fresh = model.distance(_ppca_sample(20_000, 1))
    # squared Mahalanobis distances of d-dimensional Gaussians are chi-square with d dof
    assert np.mean(fresh**2) == pytest.approx(40, rel=0.02)
    assert stats.kstest(fresh**2, stats.chi2(40).cdf).statistic < 0.02


def test_distance_equals_scipys_with_the_full_covariance():
    model = OodModel.fit(_ppca_sample(3000, 2), components=5)
    v = model.components
    covariance = v.T @ np.diag(model.variances) @ v + model.rest * (np.eye(40) - v.T @ v)
    inverse = np.linalg.inv(covariance)
    x = _ppca_sample(5, 3)
    expected = [mahalanobis(row, model.mean, inverse) for row in x]
    np.testing.assert_allclose(model.distance(x), expected, rtol=1e-8)


def test_the_threshold_flags_half_a_percent_of_like_galaxies_and_all_shifted_ones():
    model = OodModel.fit(_ppca_sample(20_000, 4), components=5)
    assert np.mean(model.score(_ppca_sample(20_000, 4)) > 1) == pytest.approx(
        1 - QUANTILE, abs=2e-4
    )
    fresh = np.mean(model.score(_ppca_sample(20_000, 5)) > 1)
    assert fresh == pytest.approx(1 - QUANTILE, abs=0.002)
    shifted = _ppca_sample(2000, 6) + 2.0  # a pedestal on every feature: 4 sigma of the rest
    assert np.mean(model.score(shifted) > 1) > 0.99
    # the case that must fail: a shift along the strongest direction, within its spread
    along = _ppca_sample(2000, 7) + 5.0 * model.components[0]
    assert np.mean(model.score(along) > 1) < 0.05


def test_round_trip_and_malformed_models():
    model = OodModel.fit(_ppca_sample(500, 8), components=4)
    back = OodModel.from_dict(model.to_dict())
    x = _ppca_sample(50, 9)
    np.testing.assert_allclose(back.score(x), model.score(x), rtol=1e-4)
    good = model.to_dict()
    for broken in (
        {k: v for k, v in good.items() if k != "mean"},
        {**good, "variances": good["variances"][:-1]},
        {**good, "threshold": 0.0},
        {**good, "rest": -1.0},
        {**good, "variances": [float("nan")] * len(good["variances"])},
    ):
        with pytest.raises(ValueError, match="'ood'"):
            OodModel.from_dict(broken)
