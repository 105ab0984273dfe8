"""The censored (Tobit) NLL at bt's ends against scipy: the others' marginal density times
the conditional probability beyond the end, with the partitioned-Gaussian formulas written
out here; interior labels keep the plain density; a clipped Gaussian is recovered by
maximising it, while the density score of the same labels is biased."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from gampen.data.labels import LabelTransform
from gampen.errors import ConfigError
from gampen.model.loss import Censoring, gaussian_nll, mixture_nll, moments_nll

LOW, HIGH = -1.3, 1.7


def _random_gaussians(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Means (n, k) and lower Cholesky factors (n, k, k) with a positive diagonal."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 1, (n, k))
    tril = np.tril(rng.normal(0, 0.4, (n, k, k)), -1)
    tril += np.eye(k) * rng.uniform(0.3, 1.5, (n, 1, k))
    return mean, tril


def _oracle(mean: np.ndarray, tril: np.ndarray, target: np.ndarray, j: int) -> np.ndarray:
    """-log p(y_o) - log P(y_j beyond its end | y_o), from the partitioned covariance."""
    out = []
    for m, t, y in zip(mean, tril, target, strict=True):
        cov = t @ t.T
        o = [i for i in range(len(m)) if i != j]
        s_oo, s_jo = cov[np.ix_(o, o)], cov[j, o]
        mu = m[j] + s_jo @ np.linalg.solve(s_oo, y[o] - m[o])
        sd = np.sqrt(cov[j, j] - s_jo @ np.linalg.solve(s_oo, s_jo))
        tail = stats.norm.logcdf(LOW, mu, sd) if y[j] <= LOW else stats.norm.logsf(HIGH, mu, sd)
        out.append(-stats.multivariate_normal(m[o], s_oo).logpdf(y[o]) - tail)
    return np.array(out)


def _nll(mean, tril, target, censoring):
    """The loss under test, per galaxy, in float64."""
    return gaussian_nll(
        torch.tensor(mean),
        torch.tensor(tril),
        torch.tensor(target),
        reduction="none",
        censoring=censoring,
    ).numpy()


@pytest.mark.parametrize("j", [0, 1, 2])
def test_labels_at_an_end_score_the_probability_beyond_it(j):
    mean, tril = _random_gaussians(40, 3, seed=j)
    target = np.random.default_rng(10 + j).normal(0, 1, (40, 3))
    target[:20, j] = LOW
    target[20:, j] = HIGH
    censoring = Censoring(j, LOW, HIGH)
    np.testing.assert_allclose(
        _nll(mean, tril, target, censoring), _oracle(mean, tril, target, j), rtol=1e-9, atol=1e-9
    )
    # the case that must fail: the same labels scored as a density
    assert not np.allclose(
        _nll(mean, tril, target, None), _oracle(mean, tril, target, j), atol=1e-3
    )


def test_interior_labels_keep_the_density():
    mean, tril = _random_gaussians(30, 3, seed=5)
    target = np.random.default_rng(6).uniform(LOW + 0.01, HIGH - 0.01, (30, 3))
    density = -np.array(
        [
            stats.multivariate_normal(m, t @ t.T).logpdf(y)
            for m, t, y in zip(mean, tril, target, strict=True)
        ]
    )
    np.testing.assert_allclose(
        _nll(mean, tril, target, Censoring(0, LOW, HIGH)), density, rtol=1e-9
    )


def test_the_mc_scores_pass_the_censoring_on():
    mean, tril = _random_gaussians(12, 3, seed=7)
    target = np.zeros((6, 3))
    target[:, 0] = HIGH
    means, trils = torch.tensor(mean.reshape(2, 6, 3)), torch.tensor(tril.reshape(2, 6, 3, 3))
    censoring = Censoring(0, LOW, HIGH)
    per_pass = np.stack(
        [_oracle(mean[p * 6 : p * 6 + 6], tril[p * 6 : p * 6 + 6], target, 0) for p in range(2)]
    )
    mixture = mixture_nll(means, trils, torch.tensor(target), reduction="none", censoring=censoring)
    np.testing.assert_allclose(
        mixture.numpy(), np.log(2) - np.logaddexp(-per_pass[0], -per_pass[1]), rtol=1e-9
    )
    moments = moments_nll(means, trils, torch.tensor(target), reduction="none", censoring=censoring)
    assert not torch.allclose(
        moments, moments_nll(means, trils, torch.tensor(target), reduction="none")
    )


def test_a_clipped_gaussian_is_recovered_and_the_density_score_is_biased():
    """Labels y = clip(x, LOW, HIGH) of x ~ N(1.2, 0.8) beside an independent N(0, 1): the
    censored NLL's minimum is the true mean and sd; the density's is pulled inside."""
    rng = np.random.default_rng(11)
    x = rng.normal(1.2, 0.8, 20000)
    target = torch.tensor(np.stack([np.clip(x, LOW, HIGH), rng.normal(0, 1, x.size)], axis=1))

    def fit(censoring):
        params = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS([params], max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            optimiser.zero_grad()
            mean = torch.stack([params[0], params[1]]).expand(len(target), 2)
            tril = torch.diag_embed(
                torch.stack([params[2].exp(), torch.tensor(1.0, dtype=torch.float64)]).expand(
                    len(target), 2
                )
            )
            loss = gaussian_nll(mean, tril, target, censoring=censoring)
            loss.backward()
            return loss

        optimiser.step(closure)
        values = params.detach()
        return float(values[0]), float(values[2].exp())

    mu, sd = fit(Censoring(0, LOW, HIGH))
    assert abs(mu - 1.2) < 0.03 and abs(sd - 0.8) < 0.03  # ~4 standard errors
    biased_mu, biased_sd = fit(None)
    assert biased_mu < 1.1 and biased_sd < 0.7


def test_limits_are_where_bt_0_and_1_land():
    transform = LabelTransform(
        ("bt", "r_e"),
        ("logit", "log"),
        eps=0.05,
        mean=np.array([0.3, -1.0]),
        std=np.array([1.4, 0.7]),
    )
    ends = transform.forward(np.array([[0.0, 1.0], [1.0, 1.0]]))[:, 0]
    np.testing.assert_allclose(transform.limits(0), ends, rtol=1e-12)
    with pytest.raises(ConfigError, match=r"only a logit parameter has ends.*r_e"):
        transform.limits(1)
