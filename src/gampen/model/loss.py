"""Training losses on the network's Gaussian output (mean, Cholesky factor ``L``).

Every loss has the signature ``loss(mean, scale_tril, target, *, reduction="mean")``
with ``mean`` and ``target`` (B, k) and ``scale_tril`` (B, k, k); ``reduction`` is
``"mean"`` or ``"sum"`` over the batch, or ``"none"`` for the per-galaxy values (B,).

* ``nll`` (default, GaMPEN's): the full-covariance Gaussian negative log-likelihood
  ``0.5 |L^-1 (y - mu)|^2 + sum_i log L_ii + 0.5 k log(2 pi)``, i.e. exactly
  ``-MultivariateNormal(mu, scale_tril=L).log_prob(y)``.  ``L^-1 (y - mu)`` comes from a
  triangular solve and ``log det Sigma = 2 sum_i log L_ii``: the covariance is never
  formed, inverted, or its determinant taken, so the loss stays finite in float32 for
  variances from 1e-6 to 1e6 and correlations near +-1.  Half-precision inputs are
  promoted to float32 first.
* ``diagonal``: independent Gaussians with standard deviations ``L_ii``; the off-diagonal
  entries are ignored, so train it with ``NetworkConfig(covariance="diagonal")``.
* ``mse``: mean squared error of the mean only (no uncertainty is learnt).

**Censoring at bt's ends.**  Prediction clips the samples of a bounded parameter (bt) to
its ends, so the head's probability of a pure disk is the Gaussian mass below the end,
``P(y_j <= low)``, not a density.  A training galaxy whose label is at an end (bt = 0 or 1
exactly) therefore scores ``-log p(y_others) - log P(y_j beyond the end | y_others)`` (a
censored, "Tobit", likelihood), which :class:`Censoring` switches on for
:func:`gaussian_nll`, :func:`moments_nll` and :func:`mixture_nll`.  Scored as a density
instead, a pure bulge pulls the mean onto the end, where half the mass stays inside: the
posterior median of a pure bulge sits below 1 and its intervals miss it.

:func:`mixture_nll` scores the MC-dropout predictive distribution itself: ``K`` stochastic
passes of one image give ``K`` Gaussians, and the loss is ``-log (1/K sum_k N(y; mu_k,
L_k L_k^T))``.  Trained this way, ``L`` learns only the scatter that the pass-to-pass
jitter of ``mu`` does not already explain, so prediction (which draws across passes) does
not count the dropout noise twice, as training every pass alone with ``nll`` does.
Being a mixture score, it lets passes far from the truth go with little gradient, so the
jitter itself is hardly pushed down.

:func:`moments_nll` scores the Gaussian with the mixture's mean and covariance,
``mean_k mu_k`` and ``mean_k L_k L_k^T + cov_k(mu_k)`` (unbiased over the ``K`` passes):
every pass is pulled toward the truth and the jitter counts as predicted variance, so the
network learns a total (aleatoric + dropout) variance equal to its squared error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gampen.errors import GampenValueError

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")
LossFunction = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Censoring:
    """Parameter ``index`` is censored at ``low`` and ``high`` (standardised values of its
    ends): a label within ``tolerance`` of an end means "at or beyond it"."""

    index: int
    low: float
    high: float
    tolerance: float = 1e-4


def gaussian_nll(
    mean: torch.Tensor,
    scale_tril: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
    censoring: Censoring | None = None,
) -> torch.Tensor:
    """Full-covariance Gaussian NLL via a triangular solve and the log-diagonal of ``L``;
    with ``censoring``, labels at an end score the probability beyond it."""
    _check_shapes(mean, scale_tril, target)
    mean, scale_tril, target = _at_least_float32(mean, scale_tril, target)
    residual = (target - mean).unsqueeze(-1)
    whitened = torch.linalg.solve_triangular(scale_tril, residual, upper=False).squeeze(-1)
    log_diagonal = torch.diagonal(scale_tril, dim1=-2, dim2=-1).log()
    per_galaxy = _gaussian_terms(whitened, log_diagonal)
    if censoring is not None:
        value = target[:, censoring.index]
        below = value <= censoring.low + censoring.tolerance
        above = value >= censoring.high - censoring.tolerance
        if bool((below | above).any()):
            censored = _censored_nll(mean, scale_tril, target, censoring, below)
            per_galaxy = torch.where(below | above, censored, per_galaxy)
    return _reduce(per_galaxy, reduction)


def _censored_nll(
    mean: torch.Tensor,
    scale_tril: torch.Tensor,
    target: torch.Tensor,
    censoring: Censoring,
    below: torch.Tensor,
) -> torch.Tensor:
    """``-log p(y_others) - log P(y_j beyond its end | y_others)`` per galaxy: the censored
    parameter ``j`` is moved last, so the Cholesky factor of the reordered covariance gives
    the others' density (its leading block) and j's conditional mean and sd (its last row)."""
    j, k = censoring.index, mean.shape[-1]
    order = [i for i in range(k) if i != j] + [j]
    covariance = scale_tril @ scale_tril.transpose(-1, -2)
    factor = torch.linalg.cholesky(covariance[:, order][:, :, order])
    residual = (target - mean)[:, order]
    others = torch.linalg.solve_triangular(
        factor[:, :-1, :-1], residual[:, :-1, None], upper=False
    ).squeeze(-1)
    log_diagonal = torch.diagonal(factor[:, :-1, :-1], dim1=-2, dim2=-1).log()
    conditional_mean = mean[:, j] + (factor[:, -1, :-1] * others).sum(dim=-1)
    conditional_sd = factor[:, -1, -1]
    beyond = torch.where(
        below,
        (censoring.low - conditional_mean) / conditional_sd,
        (conditional_mean - censoring.high) / conditional_sd,
    )
    return _gaussian_terms(others, log_diagonal) - torch.special.log_ndtr(beyond)


def mixture_nll(
    means: torch.Tensor,
    scale_trils: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
    censoring: Censoring | None = None,
) -> torch.Tensor:
    """NLL of the equal-weight mixture of ``K`` Gaussians: means (K, B, k), L (K, B, k, k)."""
    if means.ndim != 3:
        raise GampenValueError("means must be (passes, batch, k)", value=tuple(means.shape))
    n_passes = means.shape[0]
    per_pass = torch.stack(
        [
            gaussian_nll(means[p], scale_trils[p], target, reduction="none", censoring=censoring)
            for p in range(n_passes)
        ]
    )
    per_galaxy = math.log(n_passes) - torch.logsumexp(-per_pass, dim=0)
    return _reduce(per_galaxy, reduction)


def moments_nll(
    means: torch.Tensor,
    scale_trils: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
    censoring: Censoring | None = None,
) -> torch.Tensor:
    """NLL of the Gaussian matching the moments of ``K`` passes: means (K, B, k), L (K, B, k, k)."""
    if means.ndim != 3 or means.shape[0] < 2:
        raise GampenValueError("means must be (passes >= 2, batch, k)", value=tuple(means.shape))
    means, scale_trils = _at_least_float32(means, scale_trils)
    centre = means.mean(dim=0)
    spread = means - centre
    jitter = torch.einsum("pbi,pbj->bij", spread, spread) / (means.shape[0] - 1)
    covariance = (scale_trils @ scale_trils.transpose(-1, -2)).mean(dim=0) + jitter
    return gaussian_nll(
        centre,
        torch.linalg.cholesky(covariance),
        target,
        reduction=reduction,
        censoring=censoring,
    )


def diagonal_nll(
    mean: torch.Tensor,
    scale_tril: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    """Gaussian NLL of independent parameters with standard deviations ``diag(L)``."""
    _check_shapes(mean, scale_tril, target)
    mean, scale_tril, target = _at_least_float32(mean, scale_tril, target)
    sigma = torch.diagonal(scale_tril, dim1=-2, dim2=-1)
    per_galaxy = _gaussian_terms((target - mean) / sigma, sigma.log())
    return _reduce(per_galaxy, reduction)


def mse_loss(
    mean: torch.Tensor,
    scale_tril: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    """Mean squared error of the predicted mean over the parameters; ``scale_tril`` unused."""
    _check_shapes(mean, scale_tril, target)
    return _reduce((target - mean).square().mean(dim=-1), reduction)


LOSSES: dict[str, LossFunction] = {"nll": gaussian_nll, "diagonal": diagonal_nll, "mse": mse_loss}


def get_loss(name: str = "nll") -> LossFunction:
    """The loss function called ``name`` (``nll``, ``diagonal`` or ``mse``)."""
    if name not in LOSSES:
        raise GampenValueError("unknown loss", value=name, allowed=tuple(LOSSES))
    return LOSSES[name]


def _at_least_float32(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Half-precision inputs (mixed-precision training) promoted to float32; others kept."""
    return tuple(t.to(torch.promote_types(t.dtype, torch.float32)) for t in tensors)


def _gaussian_terms(whitened: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """``0.5 |z|^2 + sum log sigma + 0.5 k log 2 pi`` per galaxy."""
    k = whitened.shape[-1]
    return (
        0.5 * whitened.square().sum(dim=-1)
        + log_sigma.sum(dim=-1)
        + 0.5 * k * math.log(2.0 * math.pi)
    )


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Average, sum or keep the per-galaxy losses."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise GampenValueError("unknown reduction", value=reduction, allowed=REDUCTIONS)


def _check_shapes(mean: torch.Tensor, scale_tril: torch.Tensor, target: torch.Tensor) -> None:
    """Refuse mismatched shapes instead of letting broadcasting hide a bug."""
    if mean.ndim != 2 or target.shape != mean.shape:
        raise GampenValueError(
            "mean and target must both be (batch, k)",
            value=(tuple(mean.shape), tuple(target.shape)),
        )
    expected = (*mean.shape, mean.shape[-1])
    if tuple(scale_tril.shape) != expected:
        raise GampenValueError(
            "scale_tril must be (batch, k, k)", value=tuple(scale_tril.shape), allowed=expected
        )
