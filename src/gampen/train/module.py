"""The LightningModule that trains a :class:`~gampen.model.network.GampenNet`.

Training minimises the configured loss (full-covariance NLL by default) in standardised
label space; validation always reports the full-covariance NLL (``val_nll``), the figure
early stopping and checkpoint selection use.  Galaxies with a fatal flag are left out of
the loss.  A non-finite loss stops training with the batch's object_ids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from gampen.errors import GampenError
from gampen.flags import FATAL
from gampen.model.loss import gaussian_nll, get_loss
from gampen.model.network import GampenNet
from gampen.seeding import derive_seed
from gampen.train.config import TrainConfig


class TrainingDivergedError(GampenError):
    """The training loss became NaN or infinite."""


class GampenModule(pl.LightningModule):
    """Optimisation, logging and the NaN guard around a GampenNet."""

    def __init__(self, net: GampenNet, config: TrainConfig, object_ids: Sequence[Any]) -> None:
        super().__init__()
        self.net = net
        self.config = config
        self.loss_fn = get_loss(config.loss)
        self.object_ids = np.asarray(object_ids)
        self._freeze(config.freeze)

    def on_train_epoch_start(self) -> None:
        for name in self.config.freeze:
            getattr(self.net, name).eval()  # frozen parts keep their batch-norm statistics

    def on_train_batch_start(self, batch: dict[str, Any], batch_idx: int) -> None:
        # Dropout draws from the global RNG: reseed it per (seed, epoch, batch, rank) so that a
        # batch is reproduced exactly after --resume, whatever else consumed random numbers.
        seed = derive_seed(self.config.seed, self.current_epoch, batch_idx, self.global_rank)
        torch.manual_seed(seed)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        loss, n = self._loss(batch, self.loss_fn)
        if n == 0:
            return None  # every galaxy in the batch is unusable
        if not torch.isfinite(loss):
            ids = self.object_ids[batch["index"].cpu().numpy()].tolist()
            raise TrainingDivergedError(
                f"non-finite training loss ({loss.item()}) at epoch {self.current_epoch}, "
                f"step {self.global_step}; the batch held object_ids {ids}. Lower --lr, check "
                "those cutouts and labels, or resume from the last checkpoint."
            )
        self.log("train_loss", loss, prog_bar=True, batch_size=n)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, n = self._loss(batch, gaussian_nll)
        if n:
            self.log("val_nll", loss, prog_bar=True, sync_dist=True, batch_size=n)

    def configure_optimizers(self) -> dict[str, Any]:
        c = self.config
        params = [p for p in self.net.parameters() if p.requires_grad]
        if c.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                params,
                lr=c.lr,
                momentum=c.momentum,
                weight_decay=c.weight_decay,
                nesterov=c.nesterov,
            )
        else:
            optimizer = torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        if c.schedule == "none":
            return {"optimizer": optimizer}
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(total - 1, c.warmup_epochs * max(1, total // c.epochs))
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _loss(self, batch: dict[str, Any], loss_fn: Any) -> tuple[torch.Tensor, int]:
        """Loss over the batch's usable galaxies, and how many there were."""
        usable = (batch["flags"] & int(FATAL)) == 0
        n = int(usable.sum())
        if n == 0:
            return torch.zeros((), device=self.device), 0
        out = self.net(batch["image"][usable])
        return loss_fn(out.mean, out.scale_tril, batch["target"][usable]), n

    def _freeze(self, parts: Sequence[str]) -> None:
        """Stop gradients through the named parts of the network (transfer learning)."""
        for name in parts:
            for parameter in getattr(self.net, name).parameters():
                parameter.requires_grad_(False)


class WarmupCosine:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to 0."""

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total = warmup, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
