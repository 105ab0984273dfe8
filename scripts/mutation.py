#!/usr/bin/env python
"""On-demand mutation testing of the posterior code with mutmut 3 (never run by CI).

    .venv/bin/pip install "mutmut>=3.8,<4"     # once; not a project dependency
    .venv/bin/python scripts/mutation.py        # every module below, one worker
    .venv/bin/python scripts/mutation.py infer/summary.py model/loss.py

Modules and the fast test files that test them (mutmut runs, for each mutant, only the
tests among these that call the mutated function):

* ``infer/sampling.py``   tests/infer/test_sampling.py, tests/infer/test_psf_error.py
* ``infer/psf_error.py``  tests/infer/test_psf_error.py
* ``infer/summary.py``    tests/infer/test_summary_known_answer.py, tests/infer/test_sampling.py
* ``data/labels.py``      tests/data/test_transforms.py, tests/infer/test_summary_known_answer.py
* ``model/loss.py``       tests/model/test_gaussian_nll.py, tests/model/test_censored_nll.py
* ``calibration/maps.py``  tests/calibration/test_maps.py, tests/infer/test_sampling.py
* ``calibration/fit.py``   tests/calibration/test_fit.py
* ``data/scalars.py``     tests/data/test_scalars.py
* ``data/contract.py``    tests/data/test_contract.py, tests/data/test_neighbours.py
* ``data/provenance.py``  tests/data/test_provenance.py
* ``data/psf_features.py``  tests/data/test_psf_features.py, tests/infer/test_psf_error.py
* ``data/centring.py``    tests/data/test_centring.py
* ``data/background.py``  tests/data/test_background.py
* ``data/missing.py``     tests/data/test_missing.py
* ``data/neighbours.py``  tests/data/test_neighbours.py

The repository is never edited: ``src``, ``tests`` and ``pyproject.toml`` are copied to a
scratch folder (``build/mutation`` by default, ``--work`` to change it) with its own
``setup.cfg``, and mutmut writes its mutated copies under ``<work>/mutants``.  An
interrupted run leaves the repository as it was.

The score per module is killed / behaviour-changing mutants, where the mutants listed
under "Equivalent" in ``scripts/mutation-survivors.md`` (each with why) are not
behaviour-changing.  Timeouts count as killed (the tests noticed the mutant).  Exit status
1 if a module scores below ``--threshold``.  One run of every module but the calibration
fit takes a few minutes on two shared CPU cores (``data/psf_features.py`` about one);
``calibration/fit.py`` alone takes about an hour (its tests fit calibrations to thousands
of simulated galaxies).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES: dict[str, list[str]] = {
    "infer/sampling.py": ["tests/infer/test_sampling.py", "tests/infer/test_psf_error.py"],
    "infer/psf_error.py": ["tests/infer/test_psf_error.py"],
    "infer/summary.py": [
        "tests/infer/test_summary_known_answer.py",
        "tests/infer/test_sampling.py",
    ],
    "data/labels.py": [
        "tests/data/test_transforms.py",
        "tests/infer/test_summary_known_answer.py",
        "tests/model/test_censored_nll.py",
    ],
    "model/loss.py": ["tests/model/test_gaussian_nll.py", "tests/model/test_censored_nll.py"],
    "calibration/maps.py": ["tests/calibration/test_maps.py", "tests/infer/test_sampling.py"],
    "calibration/fit.py": ["tests/calibration/test_fit.py"],
    "data/scalars.py": ["tests/data/test_scalars.py"],
    "data/contract.py": ["tests/data/test_contract.py", "tests/data/test_neighbours.py"],
    "data/provenance.py": ["tests/data/test_provenance.py"],
    "data/psf_features.py": ["tests/data/test_psf_features.py", "tests/infer/test_psf_error.py"],
    "data/centring.py": ["tests/data/test_centring.py"],
    "data/background.py": ["tests/data/test_background.py"],
    "data/missing.py": ["tests/data/test_missing.py"],
    "data/neighbours.py": ["tests/data/test_neighbours.py"],
}
#: mutmut exit codes (mutmut.stats.status_by_exit_code) that mean "the tests noticed".
DETECTED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout"}
SURVIVED = {0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "mutation")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument(
        "--report-only", action="store_true", help="summarise the last run in --work again"
    )
    args = parser.parse_args()
    args.modules = args.modules or list(MODULES)
    unknown = set(args.modules) - set(MODULES)
    if unknown:
        parser.error(f"unknown module(s) {sorted(unknown)}; choose from {list(MODULES)}")
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        sys.exit(f'mutmut not found next to {sys.executable}: pip install "mutmut>=3.8,<4"')
    if not args.report_only:
        _prepare(args.work, args.modules)
        start = time.monotonic()
        env = {
            **os.environ,
            # One worker process and one thread each: the machine is shared, and forking
            # a process whose OpenMP pool is running can deadlock.
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        subprocess.run([str(mutmut), "run", "--max-children", "1"], cwd=args.work, env=env)
        print(f"mutmut took {time.monotonic() - start:.0f} s")
    return _report(args.work, args.modules, args.threshold, mutmut)


def _prepare(work: Path, modules: list[str]) -> None:
    """A fresh scratch copy of the package and its tests, with mutmut's configuration."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
    tests = sorted({t for m in modules for t in MODULES[m]})
    lines = [
        "[mutmut]",
        "source_paths = src/",
        "only_mutate =",
        *(f"    src/gampen/{m}" for m in modules),
        "pytest_add_cli_args_test_selection =",
        *(f"    {t}" for t in tests),
        "pytest_add_cli_args =",
        "    -p",
        "    no:cacheprovider",
        "    -x",
        "    -q",
    ]
    (work / "setup.cfg").write_text("\n".join(lines) + "\n")


def _equivalent_mutants() -> set[str]:
    """Mutant names under "## Equivalent" in scripts/mutation-survivors.md: each bullet's
    backticked names, the first in full, later ones as a ``_N`` suffix of the first."""
    path = ROOT / "scripts" / "mutation-survivors.md"
    if not path.exists():
        return set()
    names: set[str] = set()
    section = ""
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
        elif section.startswith("equivalent") and line.lstrip().startswith("- "):
            first, *more = re.findall(r"`([^`]+)`", line.split(":")[0])
            names.add(first)
            stem = first.rsplit("_", 1)[0]
            names.update(stem + suffix for suffix in more if re.fullmatch(r"_\d+", suffix))
    return names


def _report(work: Path, modules: list[str], threshold: float, mutmut: Path) -> int:
    equivalent = _equivalent_mutants()
    failed = False
    print(f"\n{'module':22} {'mutants':>7} {'equiv.':>6} {'killed':>6} {'score':>7}")
    survivors: list[str] = []
    for module in modules:
        meta = work / "mutants" / "src" / "gampen" / (module + ".meta")
        if not meta.exists():
            print(f"{module:22} no results ({meta} missing)")
            failed = True
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        listed = {name for name in codes if name in equivalent}
        detected = [n for n, c in codes.items() if c in DETECTED]
        behaviour = len(codes) - len(listed - set(detected))
        undetected = [n for n, c in codes.items() if c not in DETECTED and n not in listed]
        survivors += undetected
        score = (behaviour - len(undetected)) / behaviour if behaviour else 1.0
        failed |= score < threshold
        print(f"{module:22} {len(codes):7d} {len(listed):6d} {len(detected):6d} {score:7.1%}")
        for name in sorted(listed & set(detected)):
            print(f"    listed as equivalent but killed now: {name}")
    if survivors:
        print("\nNot killed and not listed as equivalent:")
        for name in survivors:
            diff = subprocess.run(
                [str(mutmut), "show", name], cwd=work, capture_output=True, text=True
            ).stdout
            print(diff.rstrip())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
