"""Running a simulation: parallel over processes, deterministic, resumable.

Layout of the output folder (docs/architecture.md, "Training set")::

    OUT/simulate.json        settings of the run (config, seed, n, versions)
    OUT/cutouts/<id>.fits    one cutout per object, object_id = 0 .. n-1 (HDUs: the image,
                             then PSF, the galaxy's PSF as a PSF model reports it)
    OUT/info.csv             truth catalog, written last and atomically

Every object is made from its own random streams (see :mod:`gampen.simulation.priors`), so
the output does not depend on the number of workers.  A cutout is written atomically, so one
that exists is finished; a rerun skips it and only recomputes its catalog row (parameters
and ``r_e``, no drawing), adding the ``PSF`` HDU if it was written before cutouts had one.
A rerun with a larger ``n`` extends the set; anything else that differs from
``simulate.json`` is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import galsim
from astropy.table import Table
from tqdm import tqdm

from gampen import __version__
from gampen.atomic import atomic_path
from gampen.errors import ConfigError, GampenError
from gampen.parent_watch import exit_with_parent
from gampen.simulation.backgrounds import Backgrounds
from gampen.simulation.config import SimulationConfig
from gampen.simulation.cutout import add_psf_hdu, cutout_header, psf_hdu, write_cutout
from gampen.simulation.priors import draw_galaxy, noise_seed
from gampen.simulation.render import render_cutout
from gampen.simulation.truth import cutout_name, truth_columns, truth_row

logger = logging.getLogger(__name__)

SETTINGS_FILE = "simulate.json"
CATALOG_FILE = "info.csv"
CUTOUT_FOLDER = "cutouts"
#: Version of the output layout; bump when an older folder can no longer be resumed.
FORMAT_VERSION = 1
#: Objects handed to a worker at a time: large enough to amortise inter-process traffic,
#: small enough to keep the progress bar moving.
_CHUNK = 8
_MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class RunSummary:
    """What a run did: objects in the set, cutouts drawn now, seconds spent."""

    catalog: Path
    n: int
    drawn: int
    seconds: float

    @property
    def rate(self) -> float:
        """Galaxies drawn per second in this run."""
        return self.drawn / self.seconds if self.seconds > 0 else 0.0


def simulate(
    config: SimulationConfig,
    out: str | os.PathLike[str],
    *,
    n: int,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    backgrounds: Backgrounds | None = None,
) -> RunSummary:
    """Make (or finish) the training set of ``n`` galaxies in ``out``; returns a summary.
    With ``backgrounds``, each galaxy is drawn into a crop of a real sky cutout."""
    _check_count("--n", n, 1, 100_000_000)
    _check_count("--seed", seed, 0, _MAX_SEED)
    _check_count("--workers", workers, 1, 1024)
    folder = Path(out)
    _prepare_folder(folder, settings(config, seed, backgrounds), n)
    start = time.perf_counter()
    job = functools.partial(
        simulate_object, config=config, seed=seed, folder=folder, backgrounds=backgrounds
    )
    rows: list[Any] = [None] * n
    drawn = 0
    with tqdm(total=n, desc="simulate", unit="gal", disable=not progress) as bar:
        for object_id, row, was_drawn in _map(job, range(n), workers):
            rows[object_id] = row
            drawn += was_drawn
            bar.update()
    catalog = folder / CATALOG_FILE
    write_catalog(rows, catalog, truth_columns(config, backgrounds=backgrounds is not None))
    return RunSummary(catalog, n, drawn, time.perf_counter() - start)


def simulate_object(
    object_id: int,
    *,
    config: SimulationConfig,
    seed: int,
    folder: Path,
    backgrounds: Backgrounds | None = None,
) -> tuple[int, tuple, bool]:
    """Draw and write one cutout unless it exists (then only give it the ``PSF`` HDU if it
    lacks one); return (id, truth row, whether drawn)."""
    galaxy = draw_galaxy(config, seed, object_id)
    crop = None
    if backgrounds is not None:
        crop = backgrounds.crop(seed, object_id, config.survey.stamp_size)
        galaxy = dataclasses.replace(galaxy, sky_sigma=crop.sigma)
    path = folder / cutout_name(object_id)
    drawn = not path.exists()
    if drawn:
        sky = None if crop is None else crop.pixels
        data = render_cutout(galaxy, config, noise_seed(seed, object_id), background=sky)
        header = cutout_header(galaxy, config)
        if crop is not None:
            header["BACKGRND"] = (crop.name, "real sky cutout the galaxy was drawn into")
        write_cutout(path, data, header, psf_hdu(galaxy, config))
    else:
        add_psf_hdu(path, galaxy, config)
    row = truth_row(galaxy, config)
    if crop is not None:
        row += (crop.name, crop.x0, crop.y0)
    return object_id, row, drawn


def settings(
    config: SimulationConfig, seed: int, backgrounds: Backgrounds | None = None
) -> dict[str, Any]:
    """What must match for a folder to be resumed: layout, versions, config, seed (and the
    background cutouts, when galaxies are drawn into them)."""
    extra = {} if backgrounds is None else {"backgrounds": backgrounds.settings()}
    return {
        **extra,
        "format": FORMAT_VERSION,
        "gampen_version": __version__,
        "galsim_version": galsim.__version__,
        "seed": seed,
        "config": config.to_dict(),
    }


def write_catalog(rows: list[tuple], path: Path, names: tuple[str, ...]) -> None:
    """Write the truth rows (columns ``names``) as ``info.csv``, atomically."""
    table = Table(rows=rows, names=names)
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.csv")


def _map(job: Any, ids: range, workers: int):
    """``job`` over ``ids`` in this process or in ``workers`` processes, results in order."""
    if workers == 1:
        yield from map(job, ids)
        return
    # "spawn" behaves the same on every platform and never forks a threaded parent; the
    # executor (unlike multiprocessing.Pool) fails cleanly if a worker cannot start.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=exit_with_parent, initargs=(os.getpid(),)
    ) as pool:
        try:
            yield from pool.map(job, ids, chunksize=_CHUNK)
        except BrokenProcessPool as exc:
            raise GampenError(
                "a simulation worker process died (killed, or out of memory); rerun the "
                "same command: the cutouts already written are kept. (Called from a "
                'script? Workers import it again: put the call under if __name__ == "__main__":)'
            ) from exc


def _prepare_folder(folder: Path, wanted: dict[str, Any], n: int) -> None:
    """Create ``folder`` or check it holds a compatible run; record the settings."""
    settings_path = folder / SETTINGS_FILE
    if folder.exists() and not folder.is_dir():
        raise ConfigError("--out: exists and is not a folder", value=str(folder))
    if settings_path.exists():
        _check_resumable(settings_path, wanted, n)
    elif folder.exists() and any(folder.iterdir()):
        raise ConfigError(
            f"--out: {folder} is not empty and holds no {SETTINGS_FILE}, so it is not a "
            "gampen simulate output to resume",
            allowed="a new or empty folder",
        )
    cutouts = folder / CUTOUT_FOLDER
    cutouts.mkdir(parents=True, exist_ok=True)
    for leftover in cutouts.glob(".*.fits"):  # temporary files of an interrupted write
        leftover.unlink()
    with atomic_path(settings_path) as tmp:
        tmp.write_text(json.dumps({**wanted, "n": n}, indent=2) + "\n")


def _check_resumable(settings_path: Path, wanted: dict[str, Any], n: int) -> None:
    """Refuse to resume a folder made with other settings, or to shrink its set."""
    try:
        stored = json.loads(settings_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{settings_path}: unreadable ({exc}); use a new --out") from exc
    previous_n = stored.pop("n", None)
    for key, value in wanted.items():
        if stored.get(key) != value:
            where = _first_difference(stored.get(key), value, key)
            raise ConfigError(
                f"--out: {settings_path.parent} was made with different settings ({where}); "
                "rerun with the original settings to resume, or use a new --out",
                value=_lookup(value, where.split(".")[1:]),
                allowed=_lookup(stored.get(key), where.split(".")[1:]),
            )
    if isinstance(previous_n, int) and n < previous_n:
        raise ConfigError(
            f"--n: {settings_path.parent} holds a set of {previous_n} galaxies; a smaller "
            "--n would leave orphan cutouts",
            value=n,
            allowed=f"--n >= {previous_n} (a larger --n extends the set)",
        )
    logger.info("resuming the run in %s", settings_path.parent)


def _first_difference(old: Any, new: Any, path: str) -> str:
    """Dotted path of the first nested field where ``old`` and ``new`` differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in new:
            if old.get(key) != new[key]:
                return _first_difference(old.get(key), new[key], f"{path}.{key}")
    return path


def _lookup(value: Any, keys: list[str]) -> Any:
    """The nested entry of ``value`` at ``keys`` (None where it is missing)."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _check_count(name: str, value: Any, lo: int, hi: int) -> None:
    """An integer setting must lie in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(
            f"{name}: out of range", value=value, allowed=f"an integer in [{lo}, {hi}]"
        )
