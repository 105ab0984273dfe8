"""Spatial transformer: a learned, per-galaxy crop applied before the CNN.

A small localisation CNN looks at the cutout and predicts a transformation; the image is
resampled on the transformed grid (bilinear, zeros outside the cutout) at the same pixel
size, and the CNN sees the result.  Nothing supervises the transformation except the
network's own loss: it learns to zoom past neighbours onto the central galaxy.

In PyTorch's normalised coordinates (-1..1 across the image) an output pixel at ``u``
samples the input at ``A u + t``.  The kinds:

* ``zoom`` (GaMPEN's released form): ``A = s I``, ``t = 0`` — one zoom factor ``s`` about
  the centre.  ``s`` is the side of the sampled window over the side of the cutout:
  ``s = 0.5`` shows the central half, magnified twice; ``s > 1`` zooms out.
* ``affine``: ``A = s R(phi) [[e^a, h], [0, e^-a]]`` and a shift ``t`` — all six degrees of
  freedom, parametrised so that ``sqrt|det A| = s`` exactly, with the aspect ratio in
  [1/2, 2], the shear ``|h| <= 0.5`` and the shift within a quarter of the cutout.
* ``none``: the identity (``s = 1``).

The localisation net is lighter than GaMPEN's (16 and 32 channels, 7x7 strided then 5x5
kernels, against 64 and 96 channels with 11x11 and 9x9): the zoom is a coarse decision,
and this one costs ~6 % of the compact network's FLOPs at 96x96 (``stn_widths`` widens it).

``s = zoom_min + (zoom_max - zoom_min) * sigmoid(raw)`` keeps the zoom strictly inside
its bounds whatever the localisation net outputs.  The last localisation layer starts
with zero weights and a bias giving ``s = 1`` (and the identity for every other
parameter), so training starts from the uncropped image, as GaMPEN does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Spatial size the localisation features are pooled to before its fully connected layers.
LOCALISATION_POOL = 6
#: Width of the localisation net's hidden fully connected layer.
LOCALISATION_HIDDEN = 32
MAX_LOG_ASPECT = 0.5 * math.log(2.0)  # axis ratio e^{2a} in [1/2, 2]
MAX_SHEAR = 0.5
MAX_SHIFT = 0.5  # normalised units: a quarter of the cutout's side


class Localisation(nn.Module):
    """Small CNN mapping an image to ``n_out`` raw transformation parameters."""

    def __init__(self, n_bands: int, n_out: int, *, widths: tuple[int, int]) -> None:
        super().__init__()
        w1, w2 = widths
        self.body = nn.Sequential(
            nn.Conv2d(n_bands, w1, kernel_size=7, stride=2, padding=3),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(w1, w2, kernel_size=5, padding=2),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(LOCALISATION_POOL),
            nn.Flatten(),
            nn.Linear(w2 * LOCALISATION_POOL**2, LOCALISATION_HIDDEN),
            nn.ReLU(inplace=True),
        )
        self.out = nn.Linear(LOCALISATION_HIDDEN, n_out)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw parameters (B, n_out); equal to ``out.bias`` for every image at initialisation."""
        return self.out(self.body(x))


def bounded_zoom(raw: torch.Tensor, *, zoom_min: float, zoom_max: float) -> torch.Tensor:
    """Map any real ``raw`` into ``[zoom_min, zoom_max]`` smoothly (a scaled sigmoid)."""
    return zoom_min + (zoom_max - zoom_min) * torch.sigmoid(raw)


def identity_zoom_logit(*, zoom_min: float, zoom_max: float) -> float:
    """The raw value that :func:`bounded_zoom` maps to exactly 1 (the identity)."""
    p = (1.0 - zoom_min) / (zoom_max - zoom_min)
    return math.log(p) - math.log1p(-p)


def zoom_at_limit(
    zoom: torch.Tensor, *, zoom_min: float, zoom_max: float, tolerance: float = 0.01
) -> torch.Tensor:
    """True where ``zoom`` is within ``tolerance`` of the allowed range from either bound."""
    margin = tolerance * (zoom_max - zoom_min)
    return (zoom <= zoom_min + margin) | (zoom >= zoom_max - margin)


class SpatialTransformer(nn.Module):
    """Learned zoom or affine resampling; ``forward`` returns the image and the zoom."""

    def __init__(
        self,
        n_bands: int,
        *,
        kind: str,
        zoom_min: float,
        zoom_max: float,
        widths: tuple[int, int],
    ) -> None:
        super().__init__()
        self.kind = kind
        self.zoom_min = zoom_min
        self.zoom_max = zoom_max
        n_out = {"zoom": 1, "affine": 6}[kind]
        self.localisation = Localisation(n_bands, n_out, widths=widths)
        with torch.no_grad():
            self.localisation.out.bias[0] = identity_zoom_logit(
                zoom_min=zoom_min, zoom_max=zoom_max
            )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Resampled image (same shape as ``x``) and the zoom per image (B,)."""
        theta, zoom = self.transformation(x)
        return resample(x, theta), zoom

    def transformation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (B, 2, 3) matrices mapping output to input coordinates, and the zoom (B,)."""
        raw = self.localisation(x)
        zoom = bounded_zoom(raw[:, 0], zoom_min=self.zoom_min, zoom_max=self.zoom_max)
        if self.kind == "zoom":
            return _zoom_matrix(zoom), zoom
        return _affine_matrix(zoom, raw[:, 1:]), zoom


class IdentityTransformer(nn.Module):
    """The ``stn="none"`` stand-in: returns the image untouched and a zoom of 1."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` itself and ones (B,)."""
        return x, x.new_ones(x.shape[0])

    def transformation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Identity matrices (B, 2, 3) and zooms of 1 (B,)."""
        return _zoom_matrix(x.new_ones(x.shape[0])), x.new_ones(x.shape[0])


def resample(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, H, W) sampled bilinearly where ``theta`` (B, 2, 3) maps each output
    pixel (normalised coordinates, pixel edges at -1 and 1); zeros outside."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _zoom_matrix(zoom: torch.Tensor) -> torch.Tensor:
    """``[[s, 0, 0], [0, s, 0]]`` per image."""
    theta = zoom.new_zeros(zoom.shape[0], 2, 3)
    return theta.diagonal_scatter(torch.stack((zoom, zoom), dim=1), dim1=1, dim2=2)


def _affine_matrix(zoom: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    """Bounded affine matrices from the zoom and 5 raw numbers (angle, aspect, shear, shift)."""
    angle, log_aspect, shear = raw[:, 0], raw[:, 1], raw[:, 2]
    a = MAX_LOG_ASPECT * torch.tanh(log_aspect)
    h = MAX_SHEAR * torch.tanh(shear)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack((torch.stack((cos, -sin), 1), torch.stack((sin, cos), 1)), 1)
    zero = torch.zeros_like(a)
    shape = torch.stack((torch.stack((a.exp(), h), 1), torch.stack((zero, (-a).exp()), 1)), 1)
    linear = zoom[:, None, None] * rotation @ shape
    shift = MAX_SHIFT * torch.tanh(raw[:, 3:5])
    return torch.cat((linear, shift[:, :, None]), dim=2)


def build_stn(
    kind: str, n_bands: int, *, zoom_min: float, zoom_max: float, widths: tuple[int, int]
) -> nn.Module:
    """The spatial transformer of the given kind (``zoom``, ``affine`` or ``none``)."""
    if kind == "none":
        return IdentityTransformer()
    return SpatialTransformer(
        n_bands, kind=kind, zoom_min=zoom_min, zoom_max=zoom_max, widths=widths
    )
