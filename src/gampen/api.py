"""The calls ``import gampen`` offers: one line each for the main jobs, astropy-style.

Each wraps the library function the command line uses, with keyword arguments for its
options; progress bars go to stderr (``progress=False`` silences them) and Lightning's
chatter is hidden.  Heavy imports (torch, GalSim) happen on first call, not on import.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from astropy.table import Table

    from gampen.model.bundle import Bundle


class CallableModule(types.ModuleType):
    """A subpackage that is also the call of the same name: ``gampen.simulate(...)`` runs
    :func:`simulate`, while ``gampen.simulate.load_config`` and
    ``import gampen.simulate as package`` still reach the subpackage."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call = getattr(sys.modules[__name__], self.__name__.rsplit(".", 1)[-1])
        return call(*args, **kwargs)


def make_callable(module_name: str) -> None:
    """Turn the (already imported) module ``module_name`` into a :class:`CallableModule`."""
    sys.modules[module_name].__class__ = CallableModule


def predict(
    source: str | Path | Table,
    *,
    out: str | Path | None = None,
    model: str | Path | None = None,
    **options: Any,
) -> Table:
    """Posteriors for a catalog: an astropy ``Table``, a catalog file or a folder of FITS.

    ``options`` are :class:`gampen.infer.predict.PredictOptions` fields (``n_passes``,
    ``n_samples``, ``seed``, ``image_dir``, ``keep_columns``, ...).  A table's relative
    ``file_name`` paths are read from ``image_dir``, else the current folder.  ``out``
    also writes the table (format by extension).  ``model`` defaults to the shipped one.
    """
    from gampen.infer.predict import PredictOptions
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
) -> Path:
    """Simulate ``n`` galaxies of ``preset`` (``config`` overrides fields) into ``out``;
    returns the truth catalog's path.  Resumes an unfinished folder."""
    import os

    from gampen.simulate.presets import load_config
    from gampen.simulate.runner import simulate as run

    workers = workers or len(os.sched_getaffinity(0))
    config_ = load_config(preset, config)
    return run(config_, out, n=n, seed=seed, workers=workers, progress=progress).catalog


def train(
    catalog: str | Path,
    out: str | Path,
    *,
    preset: str = "default",
    config: str | Path | None = None,
    **fields: Any,
) -> Path | None:
    """Train a model bundle ``out`` on ``catalog`` (a catalog or a pack) from ``preset``,
    a ``config`` YAML and :class:`gampen.train.config.TrainConfig` ``fields``; returns
    the bundle path (``None`` on ranks other than zero)."""
    from gampen.train.config import load_config
    from gampen.train.fit import train as run

    overrides = {**fields, "catalog": str(catalog), "out": str(out)}
    return run(load_config(preset=preset, config_file=config, overrides=overrides))


def evaluate(
    predictions: str | Path,
    truth: str | Path,
    *,
    out: str | Path,
    samples: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Judge predictions against the truth: writes ``out/report.md``, ``metrics.json``
    and figures; returns the metrics.  ``options`` are
    :class:`gampen.evaluate.pipeline.EvaluateOptions` fields."""
    from gampen.evaluate.pipeline import EvaluateOptions
    from gampen.evaluate.pipeline import evaluate as run

    options = _options(EvaluateOptions, options)
    return run(predictions, truth, out=out, samples=samples, options=options)


def _options(kind: type, given: dict[str, Any]) -> Any:
    """``kind(**given)``, refusing unknown names with a gampen error that lists the known."""
    from gampen.errors import ConfigError

    known = [f.name for f in dataclasses.fields(kind)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"unknown {kind.__name__} field(s)", value=unknown, allowed=known)
    return kind(**given)
