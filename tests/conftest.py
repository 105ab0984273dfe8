"""Shared test set-up: every test starts from fixed seeds; GPU tests skip without a GPU."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# Output files carry the date they were written (DATE); a fixed one lets tests compare bytes.
os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Seed Python, NumPy and (when imported) torch so every test is reproducible."""
    random.seed(12345)
    np.random.seed(12345)
    try:
        import torch
    except ImportError:  # the data layer's tests do not need torch
        return
    torch.manual_seed(12345)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` when no CUDA device is present."""
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
