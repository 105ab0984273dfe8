"""Gaussian head: a linear layer whose outputs are unpacked into a mean and a Cholesky factor.

For ``k`` parameters the raw output row holds, in this order:

1. ``k`` numbers: the mean ``mu`` (standardised label space);
2. ``k`` numbers: the raw diagonal ``d`` of the Cholesky factor ``L``;
3. ``k(k-1)/2`` numbers: the strictly lower entries of ``L`` row by row —
   ``L[1,0], L[2,0], L[2,1], L[3,0], ...`` (the order of ``torch.tril_indices(k, k, -1)``),
   present only when ``covariance="full"``.

That is ``k(k+3)/2`` numbers (``2k`` for a diagonal covariance).  The diagonal of ``L`` is
``softplus(d) + min_scale``: positive and finite for any finite input, so the covariance
``L L^T`` is positive-definite by construction.  The head computes in (at least) float32
even under mixed precision.  The bias of ``d`` starts where
``L = I``, matching standardised targets of unit variance.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def n_head_outputs(n_params: int, *, covariance: str = "full") -> int:
    """Raw outputs needed for ``n_params`` parameters: ``k(k+3)/2`` (full) or ``2k``."""
    if covariance == "full":
        return n_params * (n_params + 3) // 2
    return 2 * n_params


def unpack_gaussian(
    raw: torch.Tensor, n_params: int, *, covariance: str = "full", min_scale: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split raw outputs (B, n_head_outputs) into the mean (B, k) and ``L`` (B, k, k)."""
    k = n_params
    mean = raw[:, :k]
    diagonal = F.softplus(raw[:, k : 2 * k]) + min_scale
    scale_tril = torch.diag_embed(diagonal)
    if covariance == "full":
        rows, cols = torch.tril_indices(k, k, offset=-1, device=raw.device)
        lower = raw.new_zeros(raw.shape[0], k, k)
        lower[:, rows, cols] = raw[:, 2 * k :]
        scale_tril = scale_tril + lower
    return mean, scale_tril


class GaussianHead(nn.Module):
    """Linear layer predicting a multivariate Gaussian: mean and lower-triangular ``L``."""

    def __init__(
        self, in_features: int, n_params: int, *, covariance: str, min_scale: float
    ) -> None:
        super().__init__()
        self.n_params = n_params
        self.covariance = covariance
        self.min_scale = min_scale
        self.linear = nn.Linear(in_features, n_head_outputs(n_params, covariance=covariance))
        with torch.no_grad():
            self.linear.bias.zero_()
            self.linear.bias[n_params : 2 * n_params] = math.log(math.expm1(1.0 - min_scale))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (B, k) and Cholesky factor (B, k, k) with a positive diagonal."""
        raw = self.linear(h)
        raw = raw.to(torch.promote_types(raw.dtype, torch.float32))
        return unpack_gaussian(
            raw, self.n_params, covariance=self.covariance, min_scale=self.min_scale
        )
