"""Deterministic seeds derived from tuples of integers (run seed, epoch, row, ...).

Every random stream in gampen is keyed by what it belongs to rather than by the order in
which work happens, so results do not depend on batch sizes, workers, devices or resumes.
"""

from __future__ import annotations

import numpy as np


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from several integers (independent streams for distinct tuples)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1))
