"""On-the-fly augmentation for training: flips, rotations and small shifts.

Galaxy morphology does not depend on orientation, so rotations and flips teach the network
that; shifts of a few pixels teach it centring tolerance.  Each draw comes from a seed the
sampler hands over with the index, so the same epoch gives the same augmentations whatever
the number of workers, and a resumed run repeats them exactly.

Rotation modes:

* ``dihedral`` (default): the 8 exact symmetries of the pixel grid (quarter turns and a
  flip) and whole-pixel shifts (``torch.roll``).  Pixels are only moved, never
  interpolated, so every augmented image has exactly the photometry and noise of a real
  cutout, and the network (and its batch-norm statistics and learned uncertainties) sees
  in training what it will see at prediction.
* ``any``: a rotation by any angle and a sub-pixel shift in one bilinear resampling (zeros
  flow in at the corners).  Interpolation smooths the noise and, applied after the arcsinh
  stretch, does not conserve flux: the network then learns uncertainties for images
  blurrier than real ones.  Kept for GaMPEN-like recipes.
* ``none``: flips (if on) and the bilinear shift only.

None of these touches the scalar inputs: the photometry and the PSF features are
invariant under them.  :class:`PsfDrop` hides a seeded share of the training galaxies'
PSF images instead (their features set to the absent values), so that a network trained
with ``--psf-image`` also learns to rely on ``psf_fwhm`` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gampen.seeding import derive_seed

#: Tells the PSF-drop stream from the others keyed by the same item seed ("PSF").
PSF_DROP_STREAM = 0x505346


@dataclass(frozen=True)
class Augment:
    """Random flips, rotations and shifts of a (bands, H, W) tensor."""

    flips: bool = True
    rotations: str = "dihedral"
    max_shift: float = 2.0

    def __call__(self, image: torch.Tensor, seed: int) -> torch.Tensor:
        """Augment ``image`` with randomness drawn from ``seed`` only."""
        gen = torch.Generator().manual_seed(seed)
        u = torch.rand(5, generator=gen, dtype=torch.float64).tolist()
        if self.flips and u[0] < 0.5:
            image = image.flip(-1)
        if self.rotations == "dihedral":
            return self._exact(image, u)
        angle = 2 * math.pi * u[1] if self.rotations == "any" else 0.0
        return self._resampled(image, angle, u[2:4])

    def _exact(self, image: torch.Tensor, u: list[float]) -> torch.Tensor:
        """A quarter-turn rotation and a whole-pixel shift: pixels moved, never blended."""
        image = torch.rot90(image, k=min(3, int(4 * u[1])), dims=(-2, -1))
        reach = math.floor(self.max_shift)
        shifts = [min(reach, int((2 * reach + 1) * v) - reach) for v in u[2:4]]
        if shifts == [0, 0]:
            return image
        return torch.roll(image, shifts=(shifts[1], shifts[0]), dims=(-2, -1))

    def _resampled(self, image: torch.Tensor, angle: float, v: list[float]) -> torch.Tensor:
        """Rotation by ``angle`` and a sub-pixel shift in one bilinear resampling."""
        size = image.shape[-1]
        shift = [(2 * x - 1) * self.max_shift * 2 / size for x in v]
        if angle == 0.0 and shift == [0.0, 0.0]:
            return image
        cos, sin = math.cos(angle), math.sin(angle)
        theta = torch.tensor([[cos, -sin, shift[0]], [sin, cos, shift[1]]], dtype=image.dtype)
        grid = F.affine_grid(theta[None], [1, *image.shape], align_corners=False)
        out = F.grid_sample(
            image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return out[0]


@dataclass(frozen=True)
class PsfDrop:
    """Replace the PSF features (``where`` in the scalar inputs) of a share ``rate`` of the
    training items by the absent values (zeros), each decision drawn from the item's
    seed alone: the same per (seed, epoch, galaxy) whatever the workers or a resume."""

    rate: float
    where: slice

    def dropped(self, seed: int) -> bool:
        """Whether the item of ``seed`` loses its PSF image this time."""
        if self.rate <= 0:
            return False
        draw = np.random.default_rng(derive_seed(seed, PSF_DROP_STREAM)).random()
        return bool(draw < self.rate)

    def __call__(self, scalars: torch.Tensor, seed: int) -> torch.Tensor:
        """``scalars`` with its PSF features zeroed when :meth:`dropped` (a copy)."""
        if not self.dropped(seed):
            return scalars
        scalars = scalars.clone()
        scalars[self.where] = 0.0
        return scalars
