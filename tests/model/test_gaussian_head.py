"""Gaussian head: output layout, positive diagonal, positive-definite covariance."""

from __future__ import annotations

import pytest
import torch

from gampen.model.head import GaussianHead, n_head_outputs, unpack_gaussian


def test_output_counts() -> None:
    assert [n_head_outputs(k) for k in (1, 2, 3, 5)] == [2, 5, 9, 20]
    assert n_head_outputs(3, covariance="diagonal") == 6


def test_raw_layout_is_mean_then_diagonal_then_lower_rows() -> None:
    raw = torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 10.0, 20.0, 30.0]])
    mean, scale_tril = unpack_gaussian(raw, 3, min_scale=0.0)
    assert mean.tolist() == [[1.0, 2.0, 3.0]]
    softplus0 = torch.nn.functional.softplus(torch.tensor(0.0)).item()
    expected = torch.tensor(
        [[softplus0, 0.0, 0.0], [10.0, softplus0, 0.0], [20.0, 30.0, softplus0]]
    )
    torch.testing.assert_close(scale_tril[0], expected)


@pytest.mark.parametrize("covariance", ["full", "diagonal"])
def test_covariance_positive_definite_by_construction(covariance: str) -> None:
    k = 3
    raw = 5.0 * torch.randn(512, n_head_outputs(k, covariance=covariance), dtype=torch.float64)
    mean, scale_tril = unpack_gaussian(raw, k, covariance=covariance, min_scale=1e-3)
    assert mean.shape == (512, k)
    assert torch.equal(scale_tril, scale_tril.tril())
    assert (torch.diagonal(scale_tril, dim1=-2, dim2=-1) >= 1e-3).all()
    if covariance == "diagonal":
        assert torch.equal(
            scale_tril, torch.diag_embed(torch.diagonal(scale_tril, dim1=-2, dim2=-1))
        )
    # L is triangular with a positive diagonal, so L L^T is positive-definite and its own
    # Cholesky factor is L again (checked where the conditioning leaves float64 room).
    moderate = raw / 5.0
    _, scale_tril = unpack_gaussian(moderate, k, covariance=covariance, min_scale=0.1)
    covariance_matrix = scale_tril @ scale_tril.transpose(-1, -2)
    factor, info = torch.linalg.cholesky_ex(covariance_matrix)
    assert (info == 0).all()
    torch.testing.assert_close(factor, scale_tril)


def test_diagonal_stays_finite_and_floored_for_extreme_outputs() -> None:
    raw = torch.tensor([[0.0] * 3 + [-1e30, 1e30, 88.0] + [1e4, -1e4, 0.0]])
    _, scale_tril = unpack_gaussian(raw, 3, min_scale=1e-3)
    diagonal = torch.diagonal(scale_tril, dim1=-2, dim2=-1)
    assert torch.isfinite(scale_tril).all()
    assert diagonal[0, 0].item() == pytest.approx(1e-3)
    assert (diagonal > 0).all()


def test_head_starts_at_unit_scale() -> None:
    head = GaussianHead(8, 3, covariance="full", min_scale=1e-3)
    with torch.no_grad():
        head.linear.weight.zero_()
    mean, scale_tril = head(torch.randn(4, 8))
    assert torch.equal(mean, torch.zeros(4, 3))
    torch.testing.assert_close(scale_tril, torch.eye(3).expand(4, 3, 3))
