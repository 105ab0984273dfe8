"""Shared fixtures of the simulator tests: the hsc config and one small reference run."""

from __future__ import annotations

from pathlib import Path

import pytest

from gampen.simulation.config import SimulationConfig
from gampen.simulation.presets import load_config
from gampen.simulation.runner import simulate

#: Size and seed of the reference run that the runner, CLI and preview tests share.
REFERENCE_N = 10
REFERENCE_SEED = 3


@pytest.fixture(scope="session")
def hsc() -> SimulationConfig:
    """The hsc preset."""
    return load_config("hsc")


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory: pytest.TempPathFactory, hsc: SimulationConfig) -> Path:
    """An uninterrupted single-process run of REFERENCE_N galaxies (do not modify it)."""
    out = tmp_path_factory.mktemp("reference") / "set"
    simulate(hsc, out, n=REFERENCE_N, seed=REFERENCE_SEED, workers=1, progress=False)
    return out


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> content), for byte-identity checks."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
