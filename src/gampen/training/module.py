"""The LightningModule that trains a :class:`~gampen.model.network.GampenNet`.

Training minimises the configured loss in standardised label space: the full-covariance
NLL of each stochastic pass (``nll``, GaMPEN's), or a score of the distribution prediction
draws from, built from ``train_passes`` MC-dropout passes: the Gaussian with the mixture's
moments (``moments``) or the mixture itself (``mixture``).
Validation reports ``val_nll``, the NLL of the distribution the model is trained to
predict (the eval-mode Gaussian for ``nll``, the same MC score otherwise); early
stopping and checkpoint selection use it.  Labels at bt's ends (pure disks and bulges)
are censored (:class:`gampen.model.loss.Censoring`): they score the probability the
head puts beyond the end, which prediction turns into exactly 0 or 1.  Galaxies with a
fatal flag are left out of the loss.  A non-finite loss stops training with the batch's
object_ids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from gampen.data.labels import LabelTransform
from gampen.errors import GampenError
from gampen.flags import FATAL
from gampen.model.loss import Censoring, gaussian_nll, get_loss, mixture_nll, moments_nll
from gampen.model.network import GampenNet, enable_mc_dropout
from gampen.seeding import derive_seed
from gampen.training.config import TrainConfig

#: Losses that score several dropout passes of each image together.
MC_LOSSES = {"moments": moments_nll, "mixture": mixture_nll}
#: Losses that score a label at a bounded parameter's end as the mass beyond it.
CENSORABLE = ("nll", "moments", "mixture")
#: Stands in for the epoch when seeding validation dropout (no epoch reaches it).
VALIDATION_STREAM = 2**32 - 1


class TrainingDivergedError(GampenError):
    """The training loss became NaN or infinite."""


class GampenModule(pl.LightningModule):
    """Optimisation, logging and the NaN guard around a GampenNet."""

    def __init__(
        self,
        net: GampenNet,
        config: TrainConfig,
        object_ids: Sequence[Any],
        censoring: Censoring | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.config = config
        self.loss_fn = None if config.loss in MC_LOSSES else get_loss(config.loss)
        #: Which label is censored at its ends (None: none is).
        self.censoring = censoring if config.loss in CENSORABLE else None
        self.object_ids = np.asarray(object_ids)
        self._freeze(config.freeze)

    def on_train_epoch_start(self) -> None:
        # Frozen parts keep their batch-norm statistics (eval mode) but not their dropout off:
        # MC dropout is part of the predictive model the unfrozen layers are fitted under.
        for name in self.config.freeze:
            enable_mc_dropout(getattr(self.net, name))

    def on_train_batch_start(self, batch: dict[str, Any], batch_idx: int) -> None:
        # Dropout draws from the global RNG: reseed it per (seed, epoch, batch, rank) so that a
        # batch is reproduced exactly after --resume, whatever else consumed random numbers.
        seed = derive_seed(self.config.seed, self.current_epoch, batch_idx, self.global_rank)
        torch.manual_seed(seed)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        loss, n = self._loss(batch, training=True)
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
        loss, n = self._loss(batch, training=False, batch_idx=batch_idx)
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
        # Steps from the loader's length: Lightning's estimated_stepping_batches would
        # iterate the train loader here, before --resume restores the epoch, and loader
        # workers would then prefetch the first resumed epoch in epoch 0's order.
        total = max(1, c.epochs * len(self.trainer.datamodule.train_dataloader()))
        warmup = min(total - 1, c.warmup_epochs * max(1, total // c.epochs))
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _loss(
        self, batch: dict[str, Any], *, training: bool, batch_idx: int = 0
    ) -> tuple[torch.Tensor, int]:
        """Training loss (or ``val_nll``) over the batch's usable galaxies, and their count."""
        usable = (batch["flags"] & int(FATAL)) == 0
        n = int(usable.sum())
        if n == 0:
            return torch.zeros((), device=self.device), 0
        images, target = batch["image"][usable], batch["target"][usable]
        scalars = batch["scalars"][usable]
        if not training:
            return self.validation_nll(images, target, batch_idx, scalars=scalars), n
        if self.config.loss in MC_LOSSES:
            return self.mc_loss(images, target, mc_dropout=False, scalars=scalars), n
        out = self.net(images, scalars)
        if self.censoring is not None:
            return gaussian_nll(out.mean, out.scale_tril, target, censoring=self.censoring), n
        return self.loss_fn(out.mean, out.scale_tril, target), n

    def validation_nll(
        self,
        images: torch.Tensor,
        target: torch.Tensor,
        batch_idx: int,
        *,
        reduction: str = "mean",
        scalars: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``val_nll``: the NLL of what the model predicts, the eval-mode Gaussian for the
        single-pass losses, the MC score otherwise (dropout masks seeded per batch, so the
        figure is the same every time)."""
        if self.config.loss not in MC_LOSSES:
            out = self.net(images, scalars)
            return gaussian_nll(
                out.mean, out.scale_tril, target, reduction=reduction, censoring=self.censoring
            )
        torch.manual_seed(
            derive_seed(self.config.seed, VALIDATION_STREAM, batch_idx, self.global_rank)
        )
        return self.mc_loss(images, target, mc_dropout=True, reduction=reduction, scalars=scalars)

    def mc_loss(
        self,
        images: torch.Tensor,
        target: torch.Tensor,
        *,
        mc_dropout: bool,
        reduction: str = "mean",
        scalars: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The MC score (``moments`` or ``mixture``) of ``train_passes`` dropout passes."""
        if mc_dropout:
            enable_mc_dropout(self.net)
        features = self.net.features(images, scalars)
        passes = [self.net.from_features(features) for _ in range(self.config.train_passes)]
        means = torch.stack([p.mean for p in passes])
        scale_trils = torch.stack([p.scale_tril for p in passes])
        score = MC_LOSSES[self.config.loss]
        return score(means, scale_trils, target, reduction=reduction, censoring=self.censoring)

    def _freeze(self, parts: Sequence[str]) -> None:
        """Stop gradients through the named parts of the network (transfer learning)."""
        for name in parts:
            for parameter in getattr(self.net, name).parameters():
                parameter.requires_grad_(False)


def censoring_of(labels: LabelTransform) -> Censoring | None:
    """The censoring of the first logit parameter (bt) at its ends, if there is one."""
    if "logit" not in labels.kinds:
        return None
    index = labels.kinds.index("logit")
    return Censoring(index, *labels.limits(index))


class WarmupCosine:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to 0."""

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total = warmup, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
