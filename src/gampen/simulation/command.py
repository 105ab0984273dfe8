"""The ``gampen simulate`` sub-command: make a GalSim training set with exact truth."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gampen.simulation.config import SimulationConfig

EPILOG = """\
examples:
  gampen simulate --preset hsc --n 50000 --out sims/hsc --seed 1 --workers 2
  gampen simulate --preset hsc --n 2000 --out sims/try --preview sims/try.png
  gampen simulate --out sims/hsc --preview hsc.png          (preview an existing set)
  gampen simulate --preset lsst --config my.yaml --show-config

Rerunning an interrupted command finishes the set without redoing finished cutouts; the
result is identical to an uninterrupted run, whatever --workers is.  A larger --n extends
an existing set.  --config YAML overrides any preset field, e.g.
  neighbours: {probability: 0.8}
  psf: {fwhm: [0.6, 1.0]}
"""


def default_workers() -> int:
    """CPUs this process may use (respects cluster CPU affinity, unlike os.cpu_count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``simulate``."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a training set of galaxies with exact truth (GalSim)",
        description="Render bulge + disk galaxies with neighbours, PSF and survey noise into "
        "OUT/cutouts/<object_id>.fits (with each galaxy's PSF image in the HDU 'PSF') and "
        "write their exact truth to OUT/info.csv.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", help="output folder (required unless --show-config)")
    parser.add_argument(
        "--preset", default="hsc", help="survey preset: hsc, lsst, euclid-vis (default hsc)"
    )
    parser.add_argument("--config", help="YAML file overriding any preset field")
    parser.add_argument(
        "--n",
        type=int,
        help="number of galaxies; no default, a training set's size is your choice "
        "(leave out with --preview to draw an existing set)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"processes (default: the CPUs available, {default_workers()} here)",
    )
    parser.add_argument(
        "--backgrounds",
        metavar="DIR",
        help="draw every galaxy into a crop of a real sky cutout from this folder of FITS "
        "images (the survey's own noise, artefacts and neighbours; at the preset's pixel "
        "scale, at least stamp_size on a side); each crop's noise becomes sky_sigma",
    )
    parser.add_argument("--preview", metavar="PNG", help="draw a grid of example cutouts")
    parser.add_argument(
        "--show-config", action="store_true", help="print the full config as YAML and exit"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    """Show the config, simulate, and/or preview, as the flags ask."""
    from gampen.errors import ConfigError
    from gampen.simulation.presets import config_yaml, load_config

    if args.show_config:
        print(config_yaml(load_config(args.preset, args.config)), end="")
        return 0
    if not args.out:
        raise ConfigError("--out: required", allowed="the output folder of the set")
    if args.n is None:
        if not args.preview:
            raise ConfigError(
                "--n: required to simulate",
                allowed="a number of galaxies (or --preview PNG alone to draw an existing set)",
            )
    else:
        try:
            _simulate(args, load_config(args.preset, args.config))
        except KeyboardInterrupt:
            print(
                "gampen simulate: interrupted; finished cutouts are kept, rerun the same "
                "command to complete the set",
                file=sys.stderr,
            )
            return 130
    if args.preview:
        from gampen.simulation.preview import write_preview

        print(f"preview: {write_preview(args.out, args.preview)}")
    return 0


def _simulate(args: argparse.Namespace, config: SimulationConfig) -> None:
    """Run (or resume) the simulation and print a one-line summary."""
    from gampen.simulation.backgrounds import Backgrounds
    from gampen.simulation.runner import simulate

    workers = default_workers() if args.workers is None else args.workers
    backgrounds = None
    if args.backgrounds:
        survey = config.survey
        backgrounds = Backgrounds.scan(args.backgrounds, survey.pixel_scale, survey.stamp_size)
    summary = simulate(
        config,
        args.out,
        n=args.n,
        seed=args.seed,
        workers=workers,
        progress=not args.no_progress,
        backgrounds=backgrounds,
    )
    print(
        f"{summary.n} galaxies in {summary.catalog.parent} ({summary.drawn} drawn now, "
        f"{summary.rate:.1f} galaxies/s); truth in {summary.catalog}"
    )
