"""CNN backbones, each split into a deterministic prefix and a stochastic (dropout) suffix.

Every backbone exposes ``prefix`` (all layers before the first dropout layer),
``suffix`` (the rest, ending in the features fed to the Gaussian head) and
``out_features``.  MC dropout only changes the suffix, so prediction can run the prefix
once per galaxy and the suffix once per pass — exactly the same numbers as full passes.

* :class:`CompactBackbone` — designed for CPU speed at 96x96: a stride-2 stem and four
  residual stages (widths 32-64-128-256 by default, each after the first halving the
  size), a 3x3 average pool that keeps coarse position (centre against outskirts) and one
  hidden fully connected layer.  About 1.6 M parameters and 0.30 GFLOP per 96x96 image.
  Dropout (element-wise, as GaMPEN's) sits before every convolution from stage
  ``dropout_from`` on and before both fully connected layers.  The default,
  ``dropout_from=5``, keeps dropout in the classifier only (rate 0.1): the whole
  convolutional stack is then the deterministic prefix (>99 % of the FLOPs), so MC passes
  cost almost nothing and a 1000-sample posterior costs about one forward pass — what a
  survey of millions of galaxies needs on CPUs.  MC dropout then samples the uncertainty
  of the classifier acting on the learned features (a last-layers approximation).
  ``dropout_from=3`` makes the last two stages stochastic too (~92 % of the weights,
  ~44 % of the FLOPs per pass), closer to GaMPEN's dropout everywhere, at ~10x the cost.
* :class:`VGG16Backbone` — GaMPEN's: the VGG-16 layout (13 3x3 convolutions in 5 blocks,
  no batch-norm), dropout before every convolution but the first and after each of the
  classifier's two hidden fully connected layers of 4096.  Trained from scratch (He
  initialisation).  Unlike torchvision's, the classifier takes the last feature map as it
  is (3x3 at 96x96) instead of re-sampling it to 7x7 (50 M parameters instead of 134 M);
  the prefix is the first convolution only.
"""

from __future__ import annotations

import torch
from torch import nn

#: Convolutions per VGG-16 block; each block ends with a 2x2 max-pool.
VGG16_LAYOUT: tuple[int, ...] = (2, 2, 3, 3, 3)
#: Side of the map the compact backbone pools to before its fully connected layer.
COMPACT_POOL = 3


def _dropout_or_identity(rate: float | None) -> nn.Module:
    """A dropout layer, or nothing for layers placed in the deterministic prefix."""
    return nn.Identity() if rate is None else nn.Dropout(rate)


class ResidualBlock(nn.Module):
    """Two 3x3 conv + batch-norm layers with a shortcut; optional dropout before each conv."""

    def __init__(self, c_in: int, c_out: int, *, stride: int, dropout: float | None) -> None:
        super().__init__()
        self.drop_in = _dropout_or_identity(dropout)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.drop_mid = _dropout_or_identity(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``, with dropout if any."""
        x = self.drop_in(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(self.drop_mid(y)))
        return self.relu(y + self.shortcut(x))


class CompactBackbone(nn.Module):
    """Small residual CNN (stem + 4 stages + 1 hidden layer) with dropout from a chosen stage."""

    def __init__(
        self,
        n_bands: int,
        *,
        widths: tuple[int, ...],
        hidden: int,
        dropout: float,
        dropout_from: int,
    ) -> None:
        super().__init__()
        stem = nn.Sequential(
            nn.Conv2d(n_bands, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        c_in = widths[0]
        for index, width in enumerate(widths, start=1):
            rate = dropout if index >= dropout_from else None
            stride = 1 if index == 1 else 2
            stages.append(ResidualBlock(c_in, width, stride=stride, dropout=rate))
            c_in = width
        split = dropout_from - 1
        pool = [nn.AdaptiveAvgPool2d(COMPACT_POOL), nn.Flatten()]
        convolutions_only = split == len(stages)  # pooling is deterministic: keep it early
        self.prefix = nn.Sequential(stem, *stages[:split], *(pool if convolutions_only else []))
        self.suffix = nn.Sequential(
            *stages[split:],
            *([] if convolutions_only else pool),
            nn.Dropout(dropout),
            nn.Linear(c_in * COMPACT_POOL**2, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, hidden) for the Gaussian head."""
        return self.suffix(self.prefix(x))


class VGG16Backbone(nn.Module):
    """VGG-16 with dropout before every convolution but the first, as in GaMPEN."""

    def __init__(
        self,
        n_bands: int,
        *,
        widths: tuple[int, ...],
        hidden: int,
        dropout: float,
        input_size: int,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = n_bands
        for width, n_convs in zip(widths, VGG16_LAYOUT, strict=True):
            for _ in range(n_convs):
                if layers:
                    layers.append(nn.Dropout(dropout))
                layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = width
            layers.append(nn.MaxPool2d(2))
        side = input_size // 2 ** len(VGG16_LAYOUT)
        self.prefix = nn.Sequential(*layers[:2])
        self.suffix = nn.Sequential(
            *layers[2:],
            nn.Flatten(),
            nn.Linear(c_in * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.out_features = hidden
        _init_vgg_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, hidden) for the Gaussian head."""
        return self.suffix(self.prefix(x))


def _init_vgg_weights(module: nn.Module) -> None:
    """He-normal convolutions and small-normal linear layers, so VGG trains from scratch."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.01)
            nn.init.zeros_(layer.bias)
