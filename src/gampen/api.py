"""The calls ``import gampen`` offers: one line each for the main jobs, astropy-style.

Each wraps the library function the command line uses, with keyword arguments for its
options; progress bars go to stderr (``progress=False`` silences them) and Lightning's
chatter is hidden.  Heavy imports (torch, GalSim) happen on first call, not on import.
Every call's signature (what ``help()`` and IDEs show) lists its real options, taken
from the option dataclass it fills, so the two never drift apart.
"""

from __future__ import annotations

import dataclasses
import inspect
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gampen.errors import ConfigError, GampenError
from gampen.evaluation.options import EvaluateOptions
from gampen.infer.options import PredictOptions
from gampen.training.config import TrainConfig

if TYPE_CHECKING:
    from astropy.table import Table

    from gampen.model.bundle import Bundle

#: The sampling options ``calibrate`` takes (the rest of :class:`PredictOptions` is about
#: writing a prediction table).
CALIBRATE_OPTIONS = ("n_passes", "n_samples", "batch_size", "num_workers", "seed", "image_dir")
CALIBRATE_OPTIONS += ("hdu", "progress")


def predict(
    source: str | Path | Table,
    *,
    out: str | Path | None = None,
    model: str | Path | None = None,
    **options: Any,
) -> Table:
    """Posteriors for a catalog: an astropy ``Table``, a catalog file or a folder of FITS.

    ``options`` are :class:`gampen.infer.options.PredictOptions` fields (``n_passes``,
    ``n_samples``, ``seed``, ``image_dir``, ``keep_columns``, ``conditions`` ...).  A
    table's relative ``file_name`` paths are read from ``image_dir``, else the current
    folder.  ``out`` also writes the table (format by extension).  ``model`` defaults to
    the shipped one.
    """
    from gampen.infer.predict import predict as run

    return run(source, out=out, model=model, options=_options(PredictOptions, options))


def load_model(path: str | Path | None = None) -> Bundle:
    """A model bundle (the shipped default when ``path`` is ``None``); never unpickles."""
    from gampen.model.bundle import load_bundle
    from gampen.models import default_model_path

    return load_bundle(path or default_model_path())


def simulate(
    out: str | Path,
    n: int,
    *,
    preset: str = "hsc",
    config: dict[str, Any] | str | Path | None = None,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    backgrounds: str | Path | None = None,
) -> Path:
    """Simulate ``n`` galaxies of ``preset`` (``config`` overrides fields) into ``out``;
    returns the truth catalog's path.  Resumes an unfinished folder.  ``backgrounds``: a
    folder of real sky cutouts to draw the galaxies into.

    With ``workers > 1`` the galaxies are drawn in fresh processes, which import the
    calling script again: in a script, call this under ``if __name__ == "__main__":``.
    """
    import os

    from gampen.simulation.backgrounds import Backgrounds
    from gampen.simulation.presets import load_config
    from gampen.simulation.runner import simulate as run

    refuse_in_worker("gampen.simulate")
    workers = workers or len(os.sched_getaffinity(0))
    config_ = load_config(preset, config)
    skies = None
    if backgrounds is not None:
        survey = config_.survey
        skies = Backgrounds.scan(backgrounds, survey.pixel_scale, survey.stamp_size)
    summary = run(
        config_, out, n=n, seed=seed, workers=workers, progress=progress, backgrounds=skies
    )
    return summary.catalog


def train(
    catalog: str | Path,
    out: str | Path,
    *,
    preset: str = "default",
    config: str | Path | None = None,
    **fields: Any,
) -> Path | None:
    """Train a model bundle ``out`` on ``catalog`` (a catalog or a pack) from ``preset``,
    a ``config`` YAML and :class:`gampen.training.config.TrainConfig` ``fields`` (a field
    left ``None`` takes the preset's or the YAML's value); returns the bundle path
    (``None`` on ranks other than zero)."""
    from gampen.training.config import load_config
    from gampen.training.fit import train as run

    overrides = {**fields, "catalog": str(catalog), "out": str(out)}
    return run(load_config(preset=preset, config_file=config, overrides=overrides))


def calibrate(
    model: str | Path,
    catalog: str | Path,
    *,
    out: str | Path,
    check_fraction: float = 0.5,
    force: bool = False,
    overwrite: bool = False,
    allow_training_galaxies: bool = False,
    **options: Any,
) -> Path:
    """Recalibrate ``model`` on ``catalog`` (held-out galaxies with true labels) and write
    the calibrated bundle ``out``; returns its path.  ``options`` are the sampling fields
    of :class:`gampen.infer.options.PredictOptions` (``n_passes``, ``n_samples``,
    ``seed`` ...).  A calibration worse than none on the check part is refused unless
    ``force``; a catalog holding the model's training galaxies unless
    ``allow_training_galaxies``."""
    from gampen.calibration.workflow import calibrate as run
    from gampen.calibration.workflow import write_calibrated
    from gampen.checks import refuse_existing, refuse_inputs_as_outputs

    unknown = sorted(set(options) - set(CALIBRATE_OPTIONS))
    if unknown:
        raise ConfigError("unknown calibrate option(s)", value=unknown, allowed=CALIBRATE_OPTIONS)
    refuse_inputs_as_outputs([out], [catalog, model])
    refuse_existing([out], overwrite=overwrite)
    result = run(
        model,
        catalog,
        options=PredictOptions(**options),
        check_fraction=check_fraction,
        allow_training_galaxies=allow_training_galaxies,
    )
    return write_calibrated(result, out, force=force)


def evaluate(
    predictions: str | Path | Table,
    truth: str | Path | Table,
    *,
    out: str | Path,
    samples: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Judge predictions against the truth (files, or tables as :func:`predict` returns
    them): writes ``out/report.md``, ``metrics.json`` and figures; returns the metrics.
    ``options`` are :class:`gampen.evaluation.options.EvaluateOptions` fields."""
    from gampen.evaluation.pipeline import evaluate as run

    options = _options(EvaluateOptions, options)
    return run(predictions, truth, out=out, samples=samples, options=options)


def refuse_in_worker(call: str) -> None:
    """Refuse a call made while a worker process imports its parent's script again (a
    script without a ``__main__`` guard), with the fix, instead of a dead worker."""
    if multiprocessing.parent_process() is not None:
        raise GampenError(
            f"{call} was called while a worker process was starting: the script that "
            "calls it has no main guard, so every worker runs it again. Put the call "
            'under  if __name__ == "__main__":  (or pass workers=1)'
        )


def _options(kind: type, given: dict[str, Any]) -> Any:
    """``kind(**given)``, refusing unknown names with a gampen error that lists the known."""
    known = [f.name for f in dataclasses.fields(kind)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"unknown {kind.__name__} field(s)", value=unknown, allowed=known)
    return kind(**given)


def _with_options(
    call: Callable[..., Any], kind: type, names: tuple[str, ...] = (), *, unset: bool = False
) -> None:
    """Give ``call`` the signature it really has: its own parameters, with its ``**``
    catch-all replaced by the fields of the dataclass ``kind`` (only ``names``, if given)
    as keyword-only parameters with their defaults (``None`` when ``unset``: the value
    then comes from a preset)."""
    own = inspect.signature(call)
    fixed = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
    taken = {p.name for p in fixed}
    extra = []
    for f in dataclasses.fields(kind):
        if f.name in taken or (names and f.name not in names):
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        default = None if unset else default
        extra.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default))
    call.__signature__ = own.replace(parameters=[*fixed, *extra])


_with_options(predict, PredictOptions)
_with_options(calibrate, PredictOptions, CALIBRATE_OPTIONS)
_with_options(evaluate, EvaluateOptions)
_with_options(train, TrainConfig, unset=True)
