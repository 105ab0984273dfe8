"""``scripts/crowding.py``: neighbour peaks counted on cutouts with a known number of
Gaussian blobs, and per-count flux errors of rows built by hand (the oracle is the
construction)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ..scripts import load_script

SIZE, SCALE = 96, 0.168


@pytest.fixture(scope="module")
def crowding():
    return load_script("crowding")


def _blob(y: float, x: float, peak: float, sigma: float = 2.0) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return peak * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))


def _cutout(path: Path, neighbours: list[tuple[float, float, float]], seed: int) -> Path:
    """A galaxy at the centre, ``neighbours`` (y, x, peak) elsewhere, sky noise 1 on a
    pedestal the border background removes."""
    image = 3.0 + np.random.default_rng(seed).normal(0, 1.0, (SIZE, SIZE))
    image += _blob(47.5, 47.5, 200.0, 2.5)
    for y, x, peak in neighbours:
        image += _blob(y, x, peak)
    fits.writeto(path, image.astype(np.float32))
    return path


def test_peaks_count_the_neighbours_above_five_sigma_beyond_the_separation(
    crowding, tmp_path, monkeypatch
):
    far = [(20.0, 20.0, 30.0), (75.0, 30.0, 30.0), (30.0, 75.0, 30.0), (70.0, 70.0, 30.0)]
    for count in range(5):
        path = _cutout(tmp_path / f"{count}.fits", far[:count], seed=count)
        assert crowding.neighbour_peaks(path, SCALE) == count
    # a blob 2.2 arcsec from the centre (13 pixels) is the galaxy's, not a neighbour ...
    near = _cutout(tmp_path / "near.fits", [(47.5, 60.5, 30.0)], seed=9)
    assert crowding.neighbour_peaks(near, SCALE) == 0
    # ... though it is a peak of its own
    monkeypatch.setattr(crowding.neighbours, "SEPARATION", 1.5)
    assert crowding.neighbour_peaks(near, SCALE) == 1
    monkeypatch.undo()
    beyond = _cutout(tmp_path / "beyond.fits", [(47.5, 65.5, 30.0)], seed=11)  # 3.0 arcsec
    assert crowding.neighbour_peaks(beyond, SCALE) == 1
    # one too faint to pass 5 sigma of the smoothed noise (sd ~0.2 after a 1.5-px Gaussian)
    faint = _cutout(tmp_path / "faint.fits", [(20.0, 20.0, 0.3)], seed=10)
    assert crowding.neighbour_peaks(faint, SCALE) == 0


def test_errors_by_count_are_those_the_row_was_built_with(crowding, tmp_path):
    n = 300
    counts = np.repeat([0, 1, 2], n // 3)
    flux = np.full(n, 500.0)
    error = np.choose(counts, [0.01, 0.02, 0.04])  # fractional, per count
    (tmp_path / "sims").mkdir()
    truth = {"object_id": np.arange(n), "bt": np.full(n, 0.5), "r_e": np.ones(n), "flux": flux}
    Table(truth | {"n_neighbours": counts}).write(tmp_path / "sims/info.csv", format="ascii.csv")
    sign = np.where(np.arange(n) % 2, 1.0, -1.0)
    table = Table({"object_id": np.arange(n)[::-1], "flags": np.zeros(n, int)})
    for p in ("bt", "r_e"):
        table[f"{p}_median"] = truth[p]
    median = (flux * (1 + sign * error))[::-1]
    table["flux_median"] = median
    table["flux_ci68_lo"], table["flux_ci68_hi"] = median - 6.0, median + 6.0
    table["flags"][:3] = 8  # flagged galaxies are left out
    table.write(tmp_path / "predictions.parquet")
    lines = crowding.by_count(crowding.load_row(tmp_path))
    assert [line.split(":")[0].strip() for line in lines] == [f"{c} neighbours" for c in (0, 1, 2)]
    assert "flux error 1.00 %" in lines[0] and "flux error 4.00 %" in lines[2]
    assert "coverage 100.0 %" in lines[0] and "coverage 0.0 %" in lines[2]
    assert " 97 galaxies" in lines[2] and "100 galaxies" in lines[0]
