"""GaMPEN's network: spatial transformer -> CNN backbone -> Gaussian head.

Usage (training)::

    net = GampenNet(NetworkConfig(backbone="compact", n_bands=1, input_size=96))
    out = net(x)                      # x: float32 (B, n_bands, H, W), already stretched
    loss = gaussian_nll(out.mean, out.scale_tril, y)

Usage (MC-dropout prediction, prefix computed once per galaxy)::

    enable_mc_dropout(net)            # eval mode, dropout layers on
    feats = net.features(x)           # deterministic: STN + layers before the first dropout
    out = net.from_features(feats.repeat_interleave(n_passes))   # n_passes draws per galaxy

Networks built with ``n_scalars > 0`` also take per-galaxy numbers ``s`` (B, n_scalars) —
aperture photometry, catalog conditions such as the PSF FWHM and the PSF image's
features (:mod:`gampen.data.scalars`) — as ``net(x, s)``.  A small deterministic MLP
encodes them in the prefix; its output joins the backbone's features at the Gaussian head.
:func:`with_more_scalars` grows a trained network by inputs it ignores at first.

* The MLP first standardises them with a fixed mean and std measured on the training set
  (:meth:`GampenNet.set_scalar_statistics`, stored with the weights), not with
  batch-norm: batch statistics would shift every galaxy of a batch together by ~0.1 sd,
  and their running average by as much at prediction, which costs per-cent photometry.
* No dropout acts on the encoding: the measurements are exact inputs, not learned
  features, and dropping their encoding made the flux of every galaxy jitter by more than
  an isolated galaxy's flux error (0.027 against 0.019 standard units), so intervals were
  too wide for isolated galaxies and, after calibration, too narrow for crowded ones.

``net(x)`` is literally ``net.from_features(net.features(x))``, so the split gives
exactly the numbers of full passes.  :class:`GaussianOutput` holds ``mean`` (B, k) and
``scale_tril`` (B, k, k) in standardised label space and the STN's ``zoom`` (B,)
(1 for ``stn="none"``); :meth:`GampenNet.zoom_at_limit` flags galaxies whose zoom sits
at a bound (bit ``STN_ZOOM_LIMIT`` in :mod:`gampen.flags`).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import nn

from gampen.errors import GampenValueError
from gampen.model.backbones import CompactBackbone, VGG16Backbone
from gampen.model.config import NetworkConfig
from gampen.model.head import GaussianHead
from gampen.model.stn import build_stn, zoom_at_limit

#: Width of the two hidden layers encoding the scalar inputs.
SCALAR_HIDDEN = 128


class Features(NamedTuple):
    """Output of the deterministic prefix: backbone feature maps, the STN zoom and the
    encoded scalar inputs ((B, 0) for an image-only network)."""

    maps: torch.Tensor
    zoom: torch.Tensor
    scalars: torch.Tensor

    def repeat_interleave(self, repeats: int) -> Features:
        """Each galaxy repeated ``repeats`` times in a row (for batched MC-dropout passes)."""
        return Features(*(t.repeat_interleave(repeats, dim=0) for t in self))


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
        self.scalar_encoder = _build_scalar_encoder(config.n_scalars)
        n_encoded = SCALAR_HIDDEN if config.n_scalars else 0
        self.head = GaussianHead(
            self.backbone.out_features + n_encoded,
            config.n_params,
            covariance=config.covariance,
            min_scale=config.min_scale,
        )

    def forward(self, x: torch.Tensor, scalars: torch.Tensor | None = None) -> GaussianOutput:
        """Mean, Cholesky factor and zoom for a batch of images (B, n_bands, H, W) and, for
        networks that take them, their scalar inputs (B, n_scalars)."""
        return self.from_features(self.features(x, scalars))

    def features(self, x: torch.Tensor, scalars: torch.Tensor | None = None) -> Features:
        """The deterministic prefix: STN, every layer before the first dropout layer, and
        the scalar encoder."""
        warped, zoom = self.transform(x)
        return Features(self.backbone.prefix(warped), zoom, self._encode_scalars(x, scalars))

    def from_features(self, features: Features) -> GaussianOutput:
        """The stochastic suffix: the layers from the first dropout on, then the head."""
        mean, scale_tril = self.head(self.head_input(features))
        return GaussianOutput(mean, scale_tril, features.zoom)

    def head_input(self, features: Features) -> torch.Tensor:
        """What the Gaussian head sees (B, d): the backbone's last hidden layer beside the
        encoded scalar inputs."""
        h = self.backbone.suffix(features.maps)
        if features.scalars.shape[1]:
            h = torch.cat((h, features.scalars), dim=1)
        return h

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

    def set_scalar_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Fix the standardisation of the scalar inputs (their training-set mean and std)."""
        standardise = self.scalar_encoder[0]
        standardise.mean.copy_(mean)
        standardise.std.copy_(torch.clamp(std, min=1e-6))

    def _encode_scalars(self, x: torch.Tensor, scalars: torch.Tensor | None) -> torch.Tensor:
        """The encoded scalar inputs (B, SCALAR_HIDDEN), or (B, 0) for an image-only net."""
        n = self.config.n_scalars
        if n == 0:
            return x.new_zeros(x.shape[0], 0)
        if scalars is None or tuple(scalars.shape) != (x.shape[0], n):
            raise GampenValueError(
                "this network takes scalar inputs (photometry, conditions) beside the image",
                value=None if scalars is None else tuple(scalars.shape),
                allowed=f"(batch, {n})",
            )
        return self.encode_scalars(scalars.to(x.dtype))

    def encode_scalars(self, scalars: torch.Tensor) -> torch.Tensor:
        """The scalar encoder alone: (N, n_scalars) raw numbers to (N, SCALAR_HIDDEN)."""
        return self.scalar_encoder(scalars)

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


def with_more_scalars(net: GampenNet, mean: torch.Tensor, std: torch.Tensor) -> GampenNet:
    """A copy of ``net`` taking ``len(mean)`` more scalar inputs after its own (standardised
    with ``mean`` and ``std``), whose first layer gives them zero weight: its outputs are
    ``net``'s whatever they hold, and fine-tuning learns their use (``--init-from`` a
    bundle without the PSF features).  An image-only ``net`` gets a new scalar encoder
    whose encoding the head weighs by zero."""
    n_old, n_new = net.config.n_scalars, net.config.n_scalars + len(mean)
    grown = GampenNet(dataclasses.replace(net.config, n_scalars=n_new))
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    fresh = grown.state_dict()
    mean = mean.detach().cpu().to(torch.float32)
    std = torch.clamp(std.detach().cpu().to(torch.float32), min=1e-6)
    if n_old:
        state["scalar_encoder.0.mean"] = torch.cat((state["scalar_encoder.0.mean"], mean))
        state["scalar_encoder.0.std"] = torch.cat((state["scalar_encoder.0.std"], std))
        weight = state["scalar_encoder.1.weight"]
        state["scalar_encoder.1.weight"] = torch.cat(
            (weight, weight.new_zeros(len(weight), len(mean))), 1
        )
    else:
        state.update({k: v for k, v in fresh.items() if k.startswith("scalar_encoder.")})
        state["scalar_encoder.0.mean"], state["scalar_encoder.0.std"] = mean, std
        weight = state["head.linear.weight"]
        state["head.linear.weight"] = torch.cat(
            (weight, weight.new_zeros(len(weight), SCALAR_HIDDEN)), 1
        )
    grown.load_state_dict(state, strict=True)
    return grown.to(next(net.parameters()).device).train(net.training)


def enable_mc_dropout(net: nn.Module) -> nn.Module:
    """Put ``net`` in eval mode with every dropout layer active (batch-norm stays frozen)."""
    net.eval()
    for layer in dropout_layers(net):
        layer.train()
    return net


def dropout_layers(net: nn.Module) -> list[nn.Dropout]:
    """``net``'s dropout layers (the sampler looks them up once per batch: walking the
    modules for every galaxy cost 0.3 ms of its ~7)."""
    return [m for m in net.modules() if isinstance(m, nn.Dropout)]


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


class Standardise(nn.Module):
    """``(x - mean) / std`` with fixed per-feature buffers (saved with the weights)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _build_scalar_encoder(n_scalars: int) -> nn.Module:
    """Fixed standardisation (raw inputs of any scale) then two ReLU layers; nothing for
    ``n = 0``."""
    if n_scalars == 0:
        return nn.Identity()
    return nn.Sequential(
        Standardise(n_scalars),
        nn.Linear(n_scalars, SCALAR_HIDDEN),
        nn.ReLU(inplace=True),
        nn.Linear(SCALAR_HIDDEN, SCALAR_HIDDEN),
        nn.ReLU(inplace=True),
    )


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
