"""The Gaussian losses: exact against torch.distributions, finite in float32 at the extremes."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.distributions import MultivariateNormal

from gampen.errors import GampenValueError
from gampen.model.loss import diagonal_nll, gaussian_nll, get_loss, mse_loss


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
