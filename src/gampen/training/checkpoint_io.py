"""Lightning checkpoints without pickle: tensors in safetensors, the rest as JSON.

Lightning's default ``torch.save`` checkpoints are pickles.  This plugin writes one
safetensors file per checkpoint: every tensor of the nested checkpoint dict (weights,
optimiser moments, RNG states) is stored under its path, and the structure around them
(epochs, loop counters, hyper-parameters) is JSON in the file's metadata.  Loading
rebuilds the same dict, so ``--resume`` restores optimiser state, epoch and RNG exactly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.plugins.io import CheckpointIO
from safetensors import safe_open
from safetensors.torch import save_file

from gampen.atomic import atomic_path
from gampen.errors import GampenValueError

_META_KEY = "gampen_checkpoint"


class SafeCheckpointIO(CheckpointIO):
    """Save and load Lightning checkpoints as safetensors + JSON."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike[str], storage_options: Any = None
    ) -> None:
        tensors: dict[str, torch.Tensor] = {}
        structure = _encode(checkpoint, "", tensors)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(structure)})

    def load_checkpoint(
        self,
        path: str | os.PathLike[str],
        map_location: Any = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        device = map_location if isinstance(map_location, str | torch.device) else "cpu"
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            metadata = handle.metadata() or {}
            if _META_KEY not in metadata:
                raise GampenValueError(f"{path}: not a gampen training checkpoint")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        return _decode(json.loads(metadata[_META_KEY]), tensors)

    def remove_checkpoint(self, path: str | os.PathLike[str]) -> None:
        Path(path).unlink(missing_ok=True)


def _encode(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-safe copy of ``value``; tensors are moved into ``tensors`` under ``key``."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().cpu().clone()  # own storage: safetensors refuses sharing
        return {"__tensor__": key}
    if isinstance(value, dict):
        if not all(isinstance(k, str | int) for k in value):
            raise GampenValueError(f"checkpoint entry {key!r} has keys gampen cannot store")
        return {"__dict__": [[k, _encode(v, f"{key}/{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        items = [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise GampenValueError(
        f"checkpoint entry {key!r} has a type gampen cannot store without pickle",
        value=type(value).__name__,
    )


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {k: _decode(v, tensors) for k, v in value["__dict__"]}
    return value
