"""Small networks for fast model tests (32x32 inputs, narrow widths)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from gampen.model.config import NetworkConfig

#: Narrow compact network on 32x32 images: builds and runs in milliseconds.
TINY = {"input_size": 32, "widths": (4, 8, 8, 16), "hidden": 16, "stn_widths": (4, 8)}
#: VGG-16 layout with narrow widths, for tests that do not need the real size.
TINY_VGG = {
    "backbone": "vgg16",
    "input_size": 32,
    "widths": (4, 8, 8, 16, 16),
    "hidden": 16,
    "stn_widths": (4, 8),
}


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run the tiny networks on one thread: on a shared 2-core machine, two threads
    contending with other processes made these tests ~30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_config() -> NetworkConfig:
    """A small compact-backbone config with a zoom STN."""
    return NetworkConfig(**TINY)


@pytest.fixture
def tiny_vgg_config() -> NetworkConfig:
    """A narrow VGG-16-layout config."""
    return NetworkConfig(**TINY_VGG)
