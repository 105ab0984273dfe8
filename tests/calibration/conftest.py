"""Set-up of the calibration tests: tiny networks on one thread."""

from __future__ import annotations

import pytest

from ..threads import one_torch_thread

_one_torch_thread = pytest.fixture(autouse=True)(one_torch_thread)
