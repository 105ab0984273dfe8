"""The ``gampen`` command line: one entry point, one sub-command per capability.

Each capability lives in its own module exposing ``add_parser(subparsers)``, which
registers the sub-command and sets ``func`` (called with the parsed arguments, returning
an exit status).  Heavy imports (torch, galsim) happen inside the commands, so
``gampen --help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from gampen import __version__
from gampen.errors import GampenError
from gampen.parent_watch import exit_with_parent
from gampen.quiet import LIGHTNING_DEPRECATIONS

#: Modules that register sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "gampen.simulation.command",
    "gampen.data.commands",
    "gampen.training.command",
    "gampen.model.command",
    "gampen.infer.command",
    "gampen.infer.crop_command",
    "gampen.calibration.command",
    "gampen.evaluation.command",
    "gampen.demo",
)


def count_or_auto(text: str) -> int | str:
    """A ``--devices`` value: a whole number, or a word Lightning knows such as ``auto``."""
    return int(text) if text.isdigit() else text


def add_cutout_arguments(parser: argparse.ArgumentParser, *, out_help: str) -> None:
    """The arguments every command that runs a model on a catalog takes: the catalog,
    ``--out``, ``--model``, ``--image-dir`` and ``--hdu``."""
    parser.add_argument("catalog", help="catalog (.csv/.ecsv/.fits/.parquet) or a folder of FITS")
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--model", help="model bundle (default: the bundle shipped with gampen)")
    parser.add_argument("--image-dir", help="folder file_name is relative to")
    parser.add_argument("--hdu", help="FITS HDU holding the image (name or index)")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="gampen",
        description="Calibrated Bayesian posteriors of galaxy morphology "
        "(bulge-to-total ratio, effective radius, flux) from survey cutouts.",
    )
    parser.add_argument("--version", action="version", version=f"gampen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug messages")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(verbose=args.verbose)
    if int(os.environ.get("LOCAL_RANK", "0") or 0) > 0:
        exit_with_parent(os.getppid())  # a DDP rank Lightning started: die with rank zero
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except GampenError as exc:
        print(f"gampen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only or vanished folder: no traceback
        logging.getLogger("gampen").debug("the system refused", exc_info=True)
        print(f"gampen {args.command}: error: {_system_error(exc)}", file=sys.stderr)
        return 1


#: What to do about the system errors a user can meet, by errno.
_ADVICE = {
    errno.ENOSPC: "free some space (or choose another --out), then rerun the same command: "
    "finished work is kept and the run resumes",
    errno.EDQUOT: "free some of your quota, then rerun the same command: the run resumes",
    errno.EROFS: "the folder is on a read-only filesystem; choose another --out",
    errno.EACCES: "you may not write there; choose another --out or fix its permissions",
    errno.EPERM: "you may not write there; choose another --out or fix its permissions",
}


def _system_error(exc: OSError) -> str:
    """One line for an OSError: what failed, on which file, and what to do."""
    where = f": {exc.filename}" if exc.filename else ""
    what = exc.strerror or str(exc)
    advice = _ADVICE.get(exc.errno or 0)
    return f"{what}{where}" + (f" ({advice})" if advice else "")


def _configure_logging(*, verbose: bool) -> None:
    """gampen's messages at INFO; Lightning's own chatter only when verbose."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    lightning = logging.getLogger("lightning.pytorch")
    lightning.propagate = False  # it has its own handler; don't print each line twice
    lightning.setLevel(logging.INFO if verbose else logging.WARNING)
    warnings.filterwarnings("ignore", message=LIGHTNING_DEPRECATIONS)


if __name__ == "__main__":
    sys.exit(main())
