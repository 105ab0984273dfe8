"""The Gaussian losses: exact against torch.distributions, finite in float32 at the extremes."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from gampen.errors import GampenValueError
from gampen.model.loss import (
    diagonal_nll,
    gaussian_nll,
    get_loss,
    mixture_nll,
    moments_nll,
    mse_loss,
)


def _random_case(
    batch: int, k: int, *, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random mean, Cholesky factor (diagonal in [0.05, 5]) and target."""
    mean = torch.randn(batch, k, dtype=dtype)
    lower = torch.randn(batch, k, k, dtype=dtype).tril(-1)
    diagonal = torch.exp(torch.empty(batch, k, dtype=dtype).uniform_(-3.0, 1.6))
    scale_tril = lower + torch.diag_embed(diagonal)
    target = mean + 3.0 * torch.randn(batch, k, dtype=dtype)
    return mean, scale_tril, target


def _correlated_scale_tril(sigmas: tuple[float, ...], rho: float) -> torch.Tensor:
    """Cholesky factor (float64) of a covariance with the given sigmas and correlations +-rho."""
    k = len(sigmas)
    signs = torch.tensor([(-1.0) ** i for i in range(k)], dtype=torch.float64)
    corr = rho * torch.outer(signs, signs) + (1.0 - rho) * torch.eye(k, dtype=torch.float64)
    sd = torch.tensor(sigmas, dtype=torch.float64)
    return torch.linalg.cholesky(sd[:, None] * corr * sd[None, :])


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_nll_equals_multivariate_normal_log_prob(k: int) -> None:
    mean, scale_tril, target = _random_case(64, k)
    expected = -MultivariateNormal(mean, scale_tril=scale_tril).log_prob(target)
    got = gaussian_nll(mean, scale_tril, target, reduction="none")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0.0)


def test_nll_in_float32_matches_exact_value() -> None:
    """float32 arithmetic against the float64 log_prob of the very same float32 inputs."""
    mean, scale_tril, target = (t.float() for t in _random_case(256, 3))
    expected = -MultivariateNormal(mean.double(), scale_tril=scale_tril.double()).log_prob(
        target.double()
    )
    got = gaussian_nll(mean, scale_tril, target, reduction="none")
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def test_reductions_agree() -> None:
    mean, scale_tril, target = _random_case(8, 3)
    per_galaxy = gaussian_nll(mean, scale_tril, target, reduction="none")
    assert per_galaxy.shape == (8,)
    torch.testing.assert_close(gaussian_nll(mean, scale_tril, target), per_galaxy.mean())
    torch.testing.assert_close(
        gaussian_nll(mean, scale_tril, target, reduction="sum"), per_galaxy.sum()
    )


@pytest.mark.parametrize("rho", [0.0, 0.9, 0.999, 0.99999])
def test_nll_finite_in_float32_at_extreme_variances(rho: float) -> None:
    """Variances 1e-6 .. 1e6 in every combination, with strong (alternating) correlations."""
    cases = list(itertools.product((1e-3, 1.0, 1e3), repeat=3))
    scale_tril64 = torch.stack([_correlated_scale_tril(s, rho) for s in cases])
    mean64 = torch.randn(len(cases), 3, dtype=torch.float64)
    noise = (scale_tril64 @ torch.randn(len(cases), 3, 1, dtype=torch.float64)).squeeze(-1)
    mean = mean64.float().requires_grad_()
    scale_tril = scale_tril64.float().requires_grad_()
    target = (mean64 + noise).float().requires_grad_()

    per_galaxy = gaussian_nll(mean, scale_tril, target, reduction="none")
    per_galaxy.sum().backward()

    assert torch.isfinite(per_galaxy).all()
    for tensor in (mean, scale_tril, target):
        assert torch.isfinite(tensor.grad).all()
    exact = -MultivariateNormal(mean.double(), scale_tril=scale_tril.double()).log_prob(
        target.double()
    )
    torch.testing.assert_close(per_galaxy.double(), exact.detach(), rtol=1e-5, atol=1e-4)


def test_nll_gradient_matches_multivariate_normal() -> None:
    mean, scale_tril, target = _random_case(4, 3)
    mean.requires_grad_()
    scale_tril.requires_grad_()
    ours = torch.autograd.grad(gaussian_nll(mean, scale_tril, target), (mean, scale_tril))
    reference = torch.autograd.grad(
        -MultivariateNormal(mean, scale_tril=scale_tril).log_prob(target).mean(), (mean, scale_tril)
    )
    for got, expected in zip(ours, reference, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)


def test_diagonal_nll_ignores_off_diagonal_terms() -> None:
    mean, scale_tril, target = _random_case(16, 3)
    diagonal_only = torch.diag_embed(torch.diagonal(scale_tril, dim1=-2, dim2=-1))
    expected = gaussian_nll(mean, diagonal_only, target, reduction="none")
    torch.testing.assert_close(diagonal_nll(mean, scale_tril, target, reduction="none"), expected)


def test_diagonal_nll_equals_sum_of_normal_log_probs() -> None:
    mean, scale_tril, target = _random_case(16, 3)
    sigma = torch.diagonal(scale_tril, dim1=-2, dim2=-1)
    expected = -torch.distributions.Normal(mean, sigma).log_prob(target).sum(-1)
    torch.testing.assert_close(diagonal_nll(mean, scale_tril, target, reduction="none"), expected)


def test_mse_loss_uses_the_mean_only() -> None:
    mean, scale_tril, target = _random_case(16, 3)
    expected = torch.nn.functional.mse_loss(mean, target)
    torch.testing.assert_close(mse_loss(mean, scale_tril, target), expected)
    torch.testing.assert_close(mse_loss(mean, 7.0 * scale_tril, target), expected)


def test_get_loss_by_name() -> None:
    assert get_loss() is gaussian_nll
    assert get_loss("nll") is gaussian_nll
    assert get_loss("diagonal") is diagonal_nll
    assert get_loss("mse") is mse_loss
    with pytest.raises(GampenValueError, match=r"unknown loss.*'huber'.*nll"):
        get_loss("huber")


def test_bad_shapes_and_reduction_are_refused() -> None:
    mean, scale_tril, target = _random_case(4, 3)
    with pytest.raises(GampenValueError, match="mean and target"):
        gaussian_nll(mean, scale_tril, target[:, :2])
    with pytest.raises(GampenValueError, match=r"scale_tril must be \(batch, k, k\)"):
        gaussian_nll(mean, scale_tril[:, :2, :2], target)
    with pytest.raises(GampenValueError, match=r"unknown reduction.*'average'"):
        gaussian_nll(mean, scale_tril, target, reduction="average")


def test_half_precision_inputs_are_promoted() -> None:
    mean, scale_tril, target = _random_case(8, 3, dtype=torch.float32)
    expected = gaussian_nll(mean, scale_tril, target, reduction="none")
    half = gaussian_nll(mean.bfloat16(), scale_tril.bfloat16(), target.bfloat16(), reduction="none")
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, expected, rtol=0.1, atol=0.1)


# --- mixture_nll against torch.distributions; reductions and errors, exactly. ---


def _mixture_reference(means: torch.Tensor, scale_trils: torch.Tensor, target: torch.Tensor):
    """-log p(target) under MixtureSameFamily of equal-weight MultivariateNormals."""
    n_passes, batch = means.shape[:2]
    components = MultivariateNormal(means.transpose(0, 1), scale_tril=scale_trils.transpose(0, 1))
    weights = Categorical(probs=torch.full((batch, n_passes), 1.0 / n_passes, dtype=means.dtype))
    return -MixtureSameFamily(weights, components).log_prob(target)


def _mixture_case(n_passes: int, batch: int, k: int) -> tuple[torch.Tensor, ...]:
    cases = [_random_case(batch, k) for _ in range(n_passes)]
    means = torch.stack([c[0] for c in cases])
    scale_trils = torch.stack([c[1] for c in cases])
    return means, scale_trils, cases[0][2]


@pytest.mark.parametrize(("n_passes", "k"), [(1, 3), (2, 1), (5, 3), (8, 2)])
def test_mixture_nll_equals_mixture_same_family(n_passes: int, k: int) -> None:
    means, scale_trils, target = _mixture_case(n_passes, 16, k)
    expected = _mixture_reference(means, scale_trils, target)
    got = mixture_nll(means, scale_trils, target, reduction="none")
    assert got.shape == (16,)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(mixture_nll(means, scale_trils, target), expected.mean())
    torch.testing.assert_close(
        mixture_nll(means, scale_trils, target, reduction="sum"), expected.sum()
    )


def test_mixture_of_identical_passes_is_the_single_gaussian() -> None:
    mean, scale_tril, target = _random_case(8, 3)
    got = mixture_nll(mean.expand(4, 8, 3), scale_tril.expand(4, 8, 3, 3), target, reduction="none")
    expected = -MultivariateNormal(mean, scale_tril=scale_tril).log_prob(target)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_mixture_nll_is_stable_far_from_every_pass() -> None:
    """Per-pass NLLs of ~1e4 (exp underflows): the log-sum-exp keeps the value exact."""
    means, scale_trils, target = _mixture_case(3, 4, 3)
    scale_trils = 1e-2 * scale_trils
    far = target + 30.0
    expected = _mixture_reference(means, scale_trils, far)
    assert expected.min() > 1e3
    got = mixture_nll(means.float(), scale_trils.float(), far.float(), reduction="none")
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=0)


def test_mixture_nll_gradient_matches_torch() -> None:
    means, scale_trils, target = _mixture_case(3, 4, 3)
    means.requires_grad_()
    scale_trils.requires_grad_()
    ours = torch.autograd.grad(mixture_nll(means, scale_trils, target), (means, scale_trils))
    reference = torch.autograd.grad(
        _mixture_reference(means, scale_trils, target).mean(), (means, scale_trils)
    )
    for got, expected in zip(ours, reference, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)


def test_mixture_nll_refuses_a_missing_pass_axis() -> None:
    mean, scale_tril, target = _random_case(4, 3)
    with pytest.raises(GampenValueError) as error:
        mixture_nll(mean, scale_tril, target)
    assert str(error.value) == "means must be (passes, batch, k); got (4, 3)"
    means, scale_trils, target = _mixture_case(2, 4, 3)
    with pytest.raises(GampenValueError, match="scale_tril must be"):
        mixture_nll(means, scale_trils[:, :, :2, :2], target)
    with pytest.raises(GampenValueError, match="unknown reduction"):
        mixture_nll(means, scale_trils, target, reduction="max")


@pytest.mark.parametrize("loss", [gaussian_nll, diagonal_nll, mse_loss])
def test_every_reduction_of_every_loss(loss) -> None:
    """B = 5 galaxies, k = 3 parameters: "none" is one value per galaxy."""
    mean, scale_tril, target = _random_case(5, 3)
    sigma = torch.diagonal(scale_tril, dim1=-2, dim2=-1)
    expected = {
        gaussian_nll: -MultivariateNormal(mean, scale_tril=scale_tril).log_prob(target),
        diagonal_nll: -torch.distributions.Normal(mean, sigma).log_prob(target).sum(-1),
        mse_loss: torch.nn.functional.mse_loss(mean, target, reduction="none").mean(-1),
    }[loss]
    torch.testing.assert_close(loss(mean, scale_tril, target, reduction="none"), expected)
    torch.testing.assert_close(loss(mean, scale_tril, target, reduction="sum"), expected.sum())
    torch.testing.assert_close(loss(mean, scale_tril, target), expected.mean())
    with pytest.raises(GampenValueError) as error:
        loss(mean, scale_tril, target, reduction="average")
    assert str(error.value) == (
        "unknown reduction; got 'average'; expected ('mean', 'sum', 'none')"
    )


def test_shape_errors_give_the_full_message() -> None:
    mean, scale_tril, target = _random_case(4, 3)
    with pytest.raises(GampenValueError) as error:
        gaussian_nll(mean, scale_tril, target[:, :2])
    assert str(error.value) == "mean and target must both be (batch, k); got ((4, 3), (4, 2))"
    with pytest.raises(GampenValueError) as error:
        mse_loss(mean[None], scale_tril, target[None])  # same shapes, but not (batch, k)
    assert str(error.value) == (
        "mean and target must both be (batch, k); got ((1, 4, 3), (1, 4, 3))"
    )
    with pytest.raises(GampenValueError) as error:
        diagonal_nll(mean, scale_tril[:, :, :2], target)
    assert str(error.value) == "scale_tril must be (batch, k, k); got (4, 3, 2); expected (4, 3, 3)"
    with pytest.raises(GampenValueError) as error:
        get_loss("huber")
    assert str(error.value) == "unknown loss; got 'huber'; expected ('nll', 'diagonal', 'mse')"


def test_float64_stays_float64_and_half_becomes_float32() -> None:
    mean, scale_tril, target = _random_case(4, 3)
    for loss in (gaussian_nll, diagonal_nll):
        assert loss(mean, scale_tril, target).dtype == torch.float64
        half = loss(mean.half(), scale_tril.half(), target.half(), reduction="none")
        expected = loss(mean.half().float(), scale_tril.half().float(), target.half().float())
        assert half.dtype == torch.float32
        torch.testing.assert_close(half.mean(), expected, rtol=1e-6, atol=1e-6)


# --- moments_nll: the Gaussian with the mixture's moments, against numpy + torch. ---


@pytest.mark.parametrize("n_passes, k", [(2, 1), (5, 3), (8, 2)])
def test_moments_nll_is_the_moment_matched_gaussian(n_passes: int, k: int) -> None:
    import numpy as np

    means, scale_trils, target = _mixture_case(n_passes, 6, k)
    expected = []
    for b in range(6):
        m = means[:, b].numpy()
        ls = scale_trils[:, b].numpy()
        cov = np.mean([l_ @ l_.T for l_ in ls], axis=0) + np.atleast_2d(np.cov(m.T, ddof=1))
        gauss = MultivariateNormal(torch.from_numpy(m.mean(0)), torch.from_numpy(cov))
        expected.append(-gauss.log_prob(target[b]))
    got = moments_nll(means, scale_trils, target, reduction="none")
    torch.testing.assert_close(got, torch.stack(expected))
    torch.testing.assert_close(
        moments_nll(means, scale_trils, target), torch.stack(expected).mean()
    )


def test_moments_nll_penalises_jitter_that_a_mixture_score_tolerates() -> None:
    """Two passes either side of the truth: the moment-matched Gaussian is as wide as the
    jitter, so its NLL grows with it, while the mixture's stays at its nearest pass."""
    target = torch.zeros(1, 1)
    scale = torch.full((2, 1, 1, 1), 0.1)
    near = torch.tensor([[[0.0]], [[1.0]]])  # one pass on the truth
    far = torch.tensor([[[0.0]], [[3.0]]])  # same, the other pass further away
    assert moments_nll(far, scale, target) > moments_nll(near, scale, target) + 0.5
    assert abs(mixture_nll(far, scale, target) - mixture_nll(near, scale, target)) < 1e-3
    message = r"^means must be \(passes >= 2, batch, k\); got \(1, 1, 1\)$"
    with pytest.raises(GampenValueError, match=message):
        moments_nll(near[:1], scale[:1], target)
