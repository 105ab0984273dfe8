"""On-the-fly augmentation for training: flips, rotation by any angle, small shifts.

Galaxy morphology does not depend on orientation, so rotations (0-360 degrees) and flips
teach the network that; sub-pixel-to-few-pixel shifts teach it centring tolerance.  Each
draw comes from a seed the sampler hands over with the index, so the same epoch gives the
same augmentations whatever the number of workers, and a resumed run repeats them exactly.
Rotation and shift are one bilinear resampling (zeros flow in at the corners, which the
sky-subtracted, arcsinh-stretched images make a natural fill).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Random flips, rotations and shifts of a (bands, H, W) tensor."""

    flips: bool = True
    rotations: bool = True
    max_shift: float = 2.0

    def __call__(self, image: torch.Tensor, seed: int) -> torch.Tensor:
        """Augment ``image`` with randomness drawn from ``seed`` only."""
        gen = torch.Generator().manual_seed(seed)
        u = torch.rand(5, generator=gen, dtype=torch.float64).tolist()
        if self.flips and u[0] < 0.5:
            image = image.flip(-1)
        angle = 2 * math.pi * u[1] if self.rotations else 0.0
        size = image.shape[-1]
        shift = [(2 * v - 1) * self.max_shift * 2 / size for v in u[2:4]]
        if angle == 0.0 and shift == [0.0, 0.0]:
            return image
        cos, sin = math.cos(angle), math.sin(angle)
        theta = torch.tensor([[cos, -sin, shift[0]], [sin, cos, shift[1]]], dtype=image.dtype)
        grid = F.affine_grid(theta[None], [1, *image.shape], align_corners=False)
        out = F.grid_sample(
            image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return out[0]
