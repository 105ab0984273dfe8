"""``scripts/battery_widths.py`` on two battery rows made by hand, whose sd and error
ratios are known by construction (the oracle is the arithmetic of the construction)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from ..scripts import load_script

N = 400


@pytest.fixture(scope="module")
def widths():
    return load_script("battery_widths")


def _write_row(folder: Path, sd_factor: float, error_factor: float, order: np.ndarray) -> None:
    """A row whose sds are ``sd_factor`` and errors ``error_factor`` times the base's;
    rows written in ``order`` (the script must match galaxies by object_id)."""
    rng = np.random.default_rng(5)  # the same galaxies in every row
    truth = {
        "bt": rng.uniform(0.1, 0.9, N),
        "r_e": rng.uniform(0.5, 2, N),
        "flux": rng.uniform(100, 900, N),
    }
    offsets = {p: rng.choice([-1.0, 1.0], N) * rng.uniform(0.01, 0.05, N) for p in truth}
    (folder / "sims").mkdir(parents=True)
    Table({"object_id": np.arange(N), **truth}).write(folder / "sims/info.csv", format="ascii.csv")
    table = Table({"object_id": np.arange(N)[order], "flags": np.zeros(N, int)[order]})
    for p, values in truth.items():
        scale = np.ones(N) if p == "bt" else values  # fractional errors for r_e and flux
        table[f"{p}_median"] = (values + error_factor * offsets[p] * scale)[order]
        table[f"{p}_std"] = (sd_factor * 0.1 * scale)[order]
    table.write(folder / "predictions.parquet")


def test_ratios_are_those_the_rows_were_built_with(widths, tmp_path):
    _write_row(tmp_path / "none", 1.0, 1.0, np.arange(N))
    _write_row(tmp_path / "wide", 1.3, 2.0, np.arange(N)[::-1])
    found = widths.ratios(widths.load_row(tmp_path / "wide"), widths.load_row(tmp_path / "none"))
    for p in ("bt", "r_e", "flux"):
        assert found[p] == pytest.approx((1.3, 2.0), rel=1e-9)


def test_flagged_galaxies_are_left_out(widths, tmp_path):
    _write_row(tmp_path / "none", 1.0, 1.0, np.arange(N))
    _write_row(tmp_path / "bad", 1.0, 1.0, np.arange(N))
    table = Table.read(tmp_path / "bad/predictions.parquet")
    table["flags"][:50] = 8
    table["bt_median"][:50] += 0.5  # wrecked estimates, flagged
    table.write(tmp_path / "bad/predictions.parquet", overwrite=True)
    found = widths.ratios(widths.load_row(tmp_path / "bad"), widths.load_row(tmp_path / "none"))
    assert found["bt"] == pytest.approx((1.0, 1.0), rel=1e-9)
