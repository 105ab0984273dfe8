"""Runs: output layout and FITS headers, determinism across workers, resume, refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from gampen.errors import ConfigError
from gampen.simulation import runner
from gampen.simulation.config import SimulationConfig
from gampen.simulation.presets import load_config
from gampen.simulation.priors import draw_galaxy
from gampen.simulation.runner import simulate
from gampen.simulation.truth import TRUTH_COLUMNS, truth_row

from .conftest import REFERENCE_N, REFERENCE_SEED, folder_bytes


def _values(row) -> tuple:
    """A table row as plain Python values."""
    return tuple(value.item() if hasattr(value, "item") else value for value in row)


def test_output_layout_and_catalog(reference_run: Path, hsc: SimulationConfig) -> None:
    table = Table.read(reference_run / "info.csv", format="ascii.csv")
    assert tuple(table.colnames) == TRUTH_COLUMNS
    assert list(table["object_id"]) == list(range(REFERENCE_N))
    for row in table:
        assert row["file_name"] == f"cutouts/{row['object_id']}.fits"
        assert (reference_run / row["file_name"]).is_file()
        expected = truth_row(draw_galaxy(hsc, REFERENCE_SEED, int(row["object_id"])), hsc)
        assert _values(row) == expected  # CSV floats round-trip exactly
    assert sorted(p.name for p in reference_run.iterdir()) == [
        "cutouts",
        "info.csv",
        "simulate.json",
    ]
    stored = json.loads((reference_run / "simulate.json").read_text())
    assert stored["n"] == REFERENCE_N and stored["seed"] == REFERENCE_SEED
    assert stored["config"] == hsc.to_dict()


def test_cutout_fits(reference_run: Path) -> None:
    row = Table.read(reference_run / "info.csv", format="ascii.csv")[4]
    with fits.open(reference_run / row["file_name"]) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "PSF"]  # tests/simulation/test_psf_hdu.py
        data, header = hdul[0].data, hdul[0].header
    assert data.dtype == np.dtype(">f4") and data.shape == (96, 96)
    assert np.all(np.isfinite(data))
    assert header["PIXSCALE"] == 0.168 and header["MAGZP"] == 27.0
    assert header["PSF_FWHM"] == row["psf_fwhm"] and header["SKYSIG"] == row["sky_sigma"]
    assert abs(header["CEN_X"] - 48.5) <= 0.5 and abs(header["CEN_Y"] - 48.5) <= 0.5
    wcs = WCS(header)
    assert wcs.proj_plane_pixel_scales()[0].to_value("arcsec") == pytest.approx(0.168)
    sky = wcs.pixel_to_world(47.5, 47.5)  # 0-based centre = FITS pixel 48.5
    assert sky.ra.deg % 360 == pytest.approx(0.0, abs=1e-9)
    assert sky.dec.deg == pytest.approx(0.0, abs=1e-9)


def test_same_seed_same_bytes_whatever_the_workers(
    reference_run: Path, hsc: SimulationConfig, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    simulate(hsc, out, n=REFERENCE_N, seed=REFERENCE_SEED, workers=2, progress=False)
    assert folder_bytes(out) == folder_bytes(reference_run)


def test_interrupted_run_resumes_to_the_same_bytes(
    reference_run: Path, hsc: SimulationConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "resumed"
    written: list[Path] = []
    real_write = runner.write_cutout

    def crash_after_four(path, data, header, psf=None):
        if len(written) == 4:
            raise KeyboardInterrupt
        written.append(real_write(path, data, header, psf))

    monkeypatch.setattr(runner, "write_cutout", crash_after_four)
    with pytest.raises(KeyboardInterrupt):
        simulate(hsc, out, n=REFERENCE_N, seed=REFERENCE_SEED, progress=False)
    assert not (out / "info.csv").exists()
    (out / "cutouts" / ".7.x1y2z3.fits").write_bytes(b"half a file")  # killed mid-write

    monkeypatch.setattr(runner, "write_cutout", real_write)
    drawn: list[int] = []
    real_render = runner.render_cutout

    def counting_render(galaxy, config, seed, background=None):
        drawn.append(galaxy.object_id)
        return real_render(galaxy, config, seed, background)

    monkeypatch.setattr(runner, "render_cutout", counting_render)
    summary = simulate(hsc, out, n=REFERENCE_N, seed=REFERENCE_SEED, progress=False)
    assert sorted(drawn) == list(range(4, REFERENCE_N))  # finished cutouts not redone
    assert summary.drawn == REFERENCE_N - 4
    assert folder_bytes(out) == folder_bytes(reference_run)


def test_larger_n_extends_the_set(
    reference_run: Path, hsc: SimulationConfig, tmp_path: Path
) -> None:
    out = tmp_path / "extended"
    shutil.copytree(reference_run, out)
    summary = simulate(hsc, out, n=REFERENCE_N + 2, seed=REFERENCE_SEED, progress=False)
    assert summary.drawn == 2
    before, after = folder_bytes(reference_run), folder_bytes(out)
    assert all(after[name] == data for name, data in before.items() if name.startswith("cutouts"))
    table = Table.read(out / "info.csv", format="ascii.csv")
    assert len(table) == REFERENCE_N + 2
    last = truth_row(draw_galaxy(hsc, REFERENCE_SEED, REFERENCE_N + 1), hsc)
    assert _values(table[-1]) == last


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": REFERENCE_SEED + 1}, r"different settings \(seed\).*got 4; expected 3"),
        ({"n": REFERENCE_N - 1}, r"--n: .* holds a set of 10 galaxies.*got 9"),
        (
            {"config": load_config("hsc", {"psf": {"beta": 2.5}})},
            r"different settings \(config.psf.beta\).*got 2.5; expected 3.0",
        ),
    ],
)
def test_resume_with_other_settings_is_refused(
    reference_run: Path, hsc: SimulationConfig, tmp_path: Path, change: dict, message: str
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference_run, out)
    settings = {"config": hsc, "n": REFERENCE_N, "seed": REFERENCE_SEED, **change}
    config = settings.pop("config")
    with pytest.raises(ConfigError, match=message):
        simulate(config, out, progress=False, **settings)


def test_foreign_folder_is_refused(hsc: SimulationConfig, tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("do not touch")
    with pytest.raises(ConfigError, match=r"not empty and holds no simulate\.json"):
        simulate(hsc, tmp_path, n=2, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
    with pytest.raises(ConfigError, match="--out: exists and is not a folder"):
        simulate(hsc, tmp_path / "thesis.tex", n=2, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 0}, "--n"),
        ({"seed": -1}, "--seed"),
        ({"workers": 0}, "--workers"),
        ({"n": 2.5}, "--n"),
    ],
)
def test_bad_run_settings(hsc: SimulationConfig, tmp_path: Path, kwargs: dict, field: str) -> None:
    settings = {"n": 2, "seed": 0, "workers": 1, **kwargs}
    with pytest.raises(ConfigError, match=rf"^{field}: out of range; got"):
        simulate(hsc, tmp_path / "bad", progress=False, **settings)
    assert not (tmp_path / "bad").exists()


def _children(pid: int) -> set[int]:
    """The pids of ``pid``'s direct children (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found |= {int(p) for p in text.split()}
    return found


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_parent(tmp_path):
    command = [sys.executable, "-m", "gampen", "simulate", "--preset", "hsc", "--n", "5000"]
    command += ["--seed", "1", "--workers", "2", "--out", str(tmp_path / "sims"), "--no-progress"]
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = {p for p in _children(parent.pid) if _alive(p)}
            time.sleep(0.2)
        assert len(workers) >= 2, "the simulation's workers never started"
        while not list((tmp_path / "sims" / "cutouts").glob("*.fits")):
            assert time.monotonic() < deadline, "no cutout written"
            time.sleep(0.2)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "orphaned workers outlived the parent"
    finally:
        parent.kill()


def _die_at_three(i: int) -> int:
    """A job whose worker dies (as if killed) on item 3."""
    if i == 3:
        os._exit(1)
    return i


def test_a_dying_worker_is_a_clear_error_not_a_traceback() -> None:
    from gampen.errors import GampenError
    from gampen.simulation.runner import _map

    with pytest.raises(GampenError, match=r"worker process died.*rerun the same command"):
        list(_map(_die_at_three, range(8), 2))
