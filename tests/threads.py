"""One torch thread for tests of tiny networks: much faster on a shared 2-core machine."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def one_torch_thread() -> Iterator[None]:
    """Run the test on one torch thread, then restore the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
