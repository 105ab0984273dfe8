"""GaMPEN's network: spatial transformer -> CNN backbone -> Gaussian head.

Usage (training)::

    net = GampenNet(NetworkConfig(backbone="compact", n_bands=1, input_size=96))
    out = net(x)                      # x: float32 (B, n_bands, H, W), already stretched
    loss = gaussian_nll(out.mean, out.scale_tril, y)

Usage (MC-dropout prediction, prefix computed once per galaxy)::

    enable_mc_dropout(net)            # eval mode, dropout layers on
    feats = net.features(x)           # deterministic: STN + layers before the first dropout
    out = net.from_features(feats.repeat_interleave(n_passes))   # n_passes draws per galaxy

``net(x)`` is literally ``net.from_features(net.features(x))``, so the split gives
exactly the numbers of full passes.  :class:`GaussianOutput` holds ``mean`` (B, k) and
``scale_tril`` (B, k, k) in standardised label space and the STN's ``zoom`` (B,)
(1 for ``stn="none"``); :meth:`GampenNet.zoom_at_limit` flags galaxies whose zoom sits
at a bound (bit ``STN_ZOOM_LIMIT`` in :mod:`gampen.flags`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from gampen.errors import GampenValueError
from gampen.model.backbones import CompactBackbone, VGG16Backbone
from gampen.model.config import NetworkConfig
from gampen.model.head import GaussianHead
from gampen.model.stn import build_stn, zoom_at_limit


class Features(NamedTuple):
    """Output of the deterministic prefix: backbone feature maps and the STN zoom."""

    maps: torch.Tensor
    zoom: torch.Tensor

    def repeat_interleave(self, repeats: int) -> Features:
        """Each galaxy repeated ``repeats`` times in a row (for batched MC-dropout passes)."""
        return Features(
            self.maps.repeat_interleave(repeats, dim=0), self.zoom.repeat_interleave(repeats, dim=0)
        )


class GaussianOutput(NamedTuple):
    """Predicted Gaussian per galaxy (standardised label space) and the STN zoom."""

    mean: torch.Tensor
    scale_tril: torch.Tensor
    zoom: torch.Tensor

    @property
    def covariance(self) -> torch.Tensor:
        """``L L^T`` (B, k, k), positive-definite by construction."""
        return self.scale_tril @ self.scale_tril.transpose(-1, -2)


class GampenNet(nn.Module):
    """Spatial transformer, CNN backbone and Gaussian head, built from a :class:`NetworkConfig`."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.stn = build_stn(
            config.stn,
            config.n_bands,
            zoom_min=config.zoom_min,
            zoom_max=config.zoom_max,
            widths=config.stn_widths,
        )
        self.backbone = _build_backbone(config)
        self.head = GaussianHead(
            self.backbone.out_features,
            config.n_params,
            covariance=config.covariance,
            min_scale=config.min_scale,
        )

    def forward(self, x: torch.Tensor) -> GaussianOutput:
        """Mean, Cholesky factor and zoom for a batch of images (B, n_bands, H, W)."""
        return self.from_features(self.features(x))

    def features(self, x: torch.Tensor) -> Features:
        """The deterministic prefix: STN and every layer before the first dropout layer."""
        warped, zoom = self.transform(x)
        return Features(self.backbone.prefix(warped), zoom)

    def from_features(self, features: Features) -> GaussianOutput:
        """The stochastic suffix: the layers from the first dropout on, then the head."""
        mean, scale_tril = self.head(self.backbone.suffix(features.maps))
        return GaussianOutput(mean, scale_tril, features.zoom)

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The STN's resampled images (what the CNN sees) and the zoom per image."""
        self._check_input(x)
        return self.stn(x)

    def zoom_at_limit(self, zoom: torch.Tensor, *, tolerance: float = 0.01) -> torch.Tensor:
        """True where the zoom is within ``tolerance`` of the allowed range from a bound."""
        if self.config.stn == "none":
            return torch.zeros_like(zoom, dtype=torch.bool)
        return zoom_at_limit(
            zoom, zoom_min=self.config.zoom_min, zoom_max=self.config.zoom_max, tolerance=tolerance
        )

    def _check_input(self, x: torch.Tensor) -> None:
        """Refuse images whose shape differs from the configured bands and input size."""
        c = self.config
        expected = (c.n_bands, c.input_size, c.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise GampenValueError(
                "network input has the wrong shape",
                value=tuple(x.shape),
                allowed=f"(batch, {c.n_bands}, {c.input_size}, {c.input_size})",
            )


def enable_mc_dropout(net: nn.Module) -> nn.Module:
    """Put ``net`` in eval mode with every dropout layer active (batch-norm stays frozen)."""
    net.eval()
    for module in net.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    return net


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _build_backbone(config: NetworkConfig) -> CompactBackbone | VGG16Backbone:
    """The backbone named in the config, with its widths and dropout."""
    if config.backbone == "vgg16":
        return VGG16Backbone(
            config.n_bands,
            widths=config.widths,
            hidden=config.hidden,
            dropout=config.dropout,
            input_size=config.input_size,
        )
    return CompactBackbone(
        config.n_bands,
        widths=config.widths,
        hidden=config.hidden,
        dropout=config.dropout,
        dropout_from=config.dropout_from,
    )
