#!/usr/bin/env python
"""The old four-map calibration against the lean one, out of sample: the before/after table.

    .venv/bin/python scripts/calibration_ablation.py src/gampen/models/hsc-compact \\
        CALIBRATION_SET/info.csv --cache cal5.npz --out ablation.md

1. Each usable galaxy's standardised samples are drawn as ``gampen calibrate`` draws them
   (``--seed``, ``--n-passes``, ``--n-samples``; ``--rows N``: the first N rows only), or
   read from ``--cache`` (written the first time: the network runs once).
2. They are split as calibrate splits them (half to fit, half to check), and each
   calibration below is fitted on one half and judged on the other, then the other way
   round (two folds):

   * ``old 4-map``: the fitting code of commit ``OLD_COMMIT`` (read from git): a map of 13
     numbers for each of clean / crowded x bright / faint galaxies;
   * ``lean``: ``gampen calibrate``'s fit (:mod:`gampen.calibration.fit`), classes
     chosen on held-out halves of the fitting half;
   * lean variants, each changing one choice: every class split forced, a free knee
     (0.5 / 1 / 1.5 / 2 sd per parameter, the best on the fitting half), the tail fixed at
     1, the width power fixed at 0;
   * ``as shipped``: the bundle's own calibration, when the cache is the set it was fitted
     on with its settings (then the first fold's check half is out of sample for it too).

3. Judged by the catalog's intervals (numpy's ``weibull`` quantiles of the mapped samples):
   coverage deviation from 68.27 / 95.45 / 99.73 % per parameter, the worst of them, the
   worst 68.27 / 95.45 % deviation over the four classes (clean / crowded x bright / faint)
   and over the quarters of galaxies ranked by predicted width (per parameter), and the
   coverage loss the fit minimises, averaged over the four classes.
4. Bootstrap (``--bootstrap N`` refits of the lean calibration, ``--old-bootstrap M`` of the
   old one, resampling the first fold's fitting half): the spread of every fitted number
   and of the check half's coverage.

Deviations are in percentage points; one binomial sd on 6,000 galaxies is 0.60 / 0.27 /
0.07 points at the three levels.  Runs at ``nice`` on a shared CPU take about an hour with
the defaults (the old fit alone takes two minutes a time).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gampen.calibration.fit import (
    CROWDED,
    FIT_LEVELS,
    FIT_WEIGHTS,
    CalibrationFit,
    Galaxies,
    Split,
    fit_calibration,
    fit_marginals,
    with_shrink,
)
from gampen.calibration.maps import BrightnessSplit, Maps, Recalibration, SpreadMap, brightness
from gampen.calibration.workflow import (
    Part,
    fit_and_check,
    map_fields,
    split_rows,
    standardised_samples,
)
from gampen.data.catalog import read_catalog
from gampen.infer.options import PredictOptions
from gampen.infer.predict import bundle_catalog
from gampen.infer.summary import LEVELS
from gampen.model.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[1]
#: The last commit whose calibration fitted four maps of 13 numbers each.
OLD_COMMIT = "9b9409d"
#: The old fit's imports, as they read at :data:`OLD_COMMIT`, and where those names live now.
OLD_IMPORTS = {
    "from gampen.infer.spread import": "from gampen.calibration.maps import",
    "from gampen.evaluation.joint import curve_below, mahalanobis_fraction": (
        "from gampen.calibration.ranks import mahalanobis_fraction\n"
        "from gampen.evaluation.joint import curve_below"
    ),
}
KNEES = (0.5, 1.0, 1.5, 2.0)
NAMES = ("bt", "r_e", "flux")
#: The parameter this ablation's classes split by (the only one the fit tried then).
BRIGHTNESS = "flux"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("catalog")
    parser.add_argument("--cache", type=Path, required=True, help="samples .npz (made if absent)")
    parser.add_argument("--rows", type=int, help="use the first ROWS rows of the catalog")
    parser.add_argument("--n-passes", type=int, default=100)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--old-bootstrap", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the tables here too (and .json beside)")
    args = parser.parse_args()
    z, truth, crowding = cached_samples(args)
    fit_rows, check_rows = split_rows(len(z), 0.5, args.seed)
    folds = {"A->B": (fit_rows, check_rows), "B->A": (check_rows, fit_rows)}
    old = old_module()
    param = NAMES.index(BRIGHTNESS)
    settings = {key: str(value) for key, value in vars(args).items()}
    results: dict[str, Any] = {"n": len(z), "settings": settings, "folds": {}, "classes": {}}
    for fold, (fitted, judged) in folds.items():
        fit_part = Part(z[fitted], truth[fitted], crowding[fitted])
        held = Part(z[judged], truth[judged], crowding[judged])
        below = float(np.median(brightness(fit_part.z, param)))
        base, results["classes"][fold] = fit_calibration(
            fit_part.z, fit_part.truth, fit_part.crowding, {BRIGHTNESS: param}, seed=args.seed
        )
        rows = {}
        for name, make in variants(old, args, fold, base).items():
            start = time.monotonic()
            maps, count = make(fit_part, param)
            rows[name] = judge(maps, held, below) | {"numbers": count}
            rows[name]["seconds"] = round(time.monotonic() - start, 1)
            print(f"{fold} {name}: {rows[name]}", flush=True)
        results["folds"][fold] = rows
    first = Part(z[fit_rows], truth[fit_rows], crowding[fit_rows])
    held = Part(z[check_rows], truth[check_rows], crowding[check_rows])
    results["lean_bootstrap"] = lean_bootstrap(first, held, args)
    results["old_bootstrap"] = old_bootstrap(old, first, held, param, args)
    text = tables(results)
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    return 0


def cached_samples(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardised samples (N, S, k), truths and crowding indices: from the cache, or
    drawn as calibrate draws them (then cached)."""
    if args.cache.exists():
        data = np.load(args.cache)
        return data["z"], data["truth"], data["crowding"]
    table = read_catalog(args.catalog)
    table = table[: args.rows] if args.rows else table
    options = PredictOptions(
        n_passes=args.n_passes, n_samples=args.n_samples, seed=args.seed, num_workers=0
    )
    bundle = load_bundle(args.bundle)
    catalog = bundle_catalog(bundle, table, targets=bundle.param_names)
    z, truth, crowding, _ = standardised_samples(bundle, catalog, options)
    np.savez(args.cache, z=z, truth=truth, crowding=crowding)
    return z, truth, crowding


def old_module() -> ModuleType:
    """The fitting module of :data:`OLD_COMMIT`, read from git, its imports pointed at
    where their names live now (:data:`OLD_IMPORTS`)."""
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:src/gampen/evaluation/recalibrate.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for old, new in OLD_IMPORTS.items():
        if old not in source:
            raise RuntimeError(f"{OLD_COMMIT}'s fit no longer reads {old!r}")
        source = source.replace(old, new)
    path = Path(tempfile.mkdtemp()) / "old_recalibrate.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_recalibrate", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_recalibrate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


Make = Callable[[Part, int], tuple[Maps | None, int]]


def variants(
    old: ModuleType, args: argparse.Namespace, fold: str, base: CalibrationFit
) -> dict[str, Make]:
    """Each calibration to judge: a function of the fitting part and the brightness
    parameter giving the maps and how many numbers were fitted.  ``base`` is the lean
    calibration of this fold's fitting part, whose classes the variants keep."""
    out: dict[str, Make] = {"none": lambda part, param: (None, 0)}
    if fold == "A->B" and shipped_applies(args):
        bundle = load_bundle(args.bundle)
        stored = Recalibration.from_calibration(bundle.calibration, bundle.param_names)
        out["as shipped"] = lambda part, param: (stored, 52)
    out["old 4-map"] = lambda part, param: old_maps(old, part, param)
    out["lean"] = lambda part, param: (base.maps(), base.n_fitted)
    for split in (Split(), Split(True), Split(False, BRIGHTNESS), Split(True, BRIGHTNESS)):
        name = f"lean, classes: {split.name}"
        out[name] = lambda part, param, s=split: lean(part, param, s)
    out["lean, free knee"] = lambda part, param: free_knee(part, param, base.split)
    out["lean, tail 1"] = lambda part, param: lean(part, param, base.split, tails=np.ones(1))
    out["lean, power 0"] = lambda part, param: lean(part, param, base.split, powers=np.zeros(1))
    return out


def shipped_applies(args: argparse.Namespace) -> bool:
    """True when the cache holds the bundle's whole calibration set, sampled as it was."""
    fit = load_bundle(args.bundle).calibration.get("fit", {})
    same = (fit.get("n_passes"), fit.get("n_samples"), fit.get("seed"))
    return not args.rows and same == (args.n_passes, args.n_samples, args.seed)


def lean(part: Part, param: int, split: Split, **grids: np.ndarray) -> tuple[Maps, int]:
    """The lean calibration with classes ``split``; ``grids`` replace the tail or power
    grid (one value: that number is fixed, not fitted)."""
    galaxies, below, width_ref = _galaxies(part, param)
    fit = fit_marginals(galaxies, split, width_ref, (param, below), **grids)
    fit = with_shrink(fit, part.z, part.truth, part.crowding)
    return fit.maps(), fit.n_fitted - len(NAMES) * len(grids)


def free_knee(part: Part, param: int, split: Split) -> tuple[Maps, int]:
    """The lean calibration with each parameter's knee the best of :data:`KNEES` on the
    fitting part (one more fitted number per parameter)."""
    galaxies, below, width_ref = _galaxies(part, param)
    fits = [fit_marginals(galaxies, split, width_ref, (param, below), knee=k) for k in KNEES]
    best = np.argmin([f.loss_after for f in fits], axis=0)

    def pick(key: str) -> np.ndarray:
        """Each parameter's ``key`` from the fit of its best knee (parameters first)."""
        return np.array([getattr(fits[b], key)[..., j] for j, b in enumerate(best)])

    fit = replace(
        fits[0], core=pick("core").T, tail=pick("tail"), power=pick("power"), knee=pick("knee")
    )
    fit = with_shrink(fit, part.z, part.truth, part.crowding)
    return fit.maps(), fit.n_fitted + len(NAMES)


def _galaxies(part: Part, param: int) -> tuple[Galaxies, float, np.ndarray]:
    """The fit's view of a part, its brightness limit and reference widths, as
    :func:`gampen.calibration.fit.fit_calibration` makes them."""
    values = brightness(part.z, param)
    below = float(np.median(values))
    lower = {BRIGHTNESS: values < below}
    galaxies = Galaxies.from_samples(part.z, part.truth, part.crowding > CROWDED, lower)
    return galaxies, below, np.median(galaxies.sd, axis=0)


def old_maps(old: ModuleType, part: Part, param: int) -> tuple[Maps, int]:
    """The old four-map calibration of ``part``, as its bundle stored it (rounded)."""
    clean, crowded = old.fit_by_class(part.z.astype(np.float64), part.truth, part.crowding, param)
    fields = _old_fields(clean)
    count = _old_count(clean)
    if crowded is not None:
        fields["crowded"] = {"above": CROWDED, **_old_fields(crowded)}
        count += _old_count(crowded)
    return Recalibration.from_calibration(fields, list(NAMES)), count


def _old_fields(fit: Any) -> dict[str, Any]:
    """An old class fit in the bundle's format (as its calibrate wrote it)."""
    fields = map_fields(fit.main.spread, list(NAMES))
    if fit.faint is not None:
        fields["faint"] = {"param": BRIGHTNESS, "below": round(fit.below, 5)}
        fields["faint"].update(map_fields(fit.faint.spread, list(NAMES)))
    return fields


def _old_count(fit: Any) -> int:
    """Fitted numbers of an old class fit: core, tail, knee, power per parameter and a
    shrink, per map."""
    return (1 + (fit.faint is not None)) * (4 * len(NAMES) + 1)


def _apply(maps: Maps | None, z: np.ndarray, crowding: np.ndarray) -> np.ndarray:
    """Samples mapped as ``gampen predict`` maps them."""
    z = np.asarray(z, dtype=np.float64)
    if maps is None:
        return z
    return maps.apply(z) if isinstance(maps, SpreadMap) else maps.apply(z, crowding)


def _covered(samples: np.ndarray, truth: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Whether numpy's weibull interval at each level holds each truth: (N, L)."""
    p = np.concatenate([(1 - levels) / 2, (1 + levels) / 2])
    ends = np.quantile(samples, p, axis=1, method="weibull")
    half = len(levels)
    return ((ends[:half] <= truth) & (truth <= ends[half:])).T


def judge(maps: Maps | None, held: Part, below: float) -> dict[str, Any]:
    """Coverage deviations (points) of the mapped check part per parameter at the
    catalog's levels, the worst over them and over the classes, and the class loss."""
    mapped = _apply(maps, held.z, held.crowding)
    levels = np.array(list(LEVELS.values()))
    faint = brightness(held.z, NAMES.index(BRIGHTNESS)) < below
    cells = 2 * (held.crowding > CROWDED) + faint
    out: dict[str, Any] = {"deviation": {}}
    class_worst, quarter_worst = np.zeros(2), np.zeros(2)
    loss = 0.0
    for j, name in enumerate(NAMES):
        covered = _covered(mapped[:, :, j], held.truth[:, j], np.concatenate([levels, FIT_LEVELS]))
        deviation = 100 * (covered[:, :3].mean(axis=0) - levels)
        out["deviation"][name] = [round(float(d), 2) for d in deviation]
        for cell in range(4):
            inside = covered[cells == cell].mean(axis=0)
            class_worst = np.maximum(class_worst, 100 * np.abs(inside[:2] - levels[:2]))
            loss += float(((inside[3:] - FIT_LEVELS) ** 2) @ FIT_WEIGHTS) / 4
        width = held.z[:, :, j].std(axis=1)  # the raw predicted width, which ranks alike
        quarter = np.searchsorted(np.quantile(width, [0.25, 0.5, 0.75]), width)
        for q in range(4):
            inside = covered[quarter == q, :2].mean(axis=0)
            quarter_worst = np.maximum(quarter_worst, 100 * np.abs(inside - levels[:2]))
    out["worst"] = round(max(abs(d) for v in out["deviation"].values() for d in v), 2)
    out["worst_class_68"], out["worst_class_95"] = (round(float(w), 2) for w in class_worst)
    out["worst_quarter_68"], out["worst_quarter_95"] = (round(float(w), 2) for w in quarter_worst)
    out["class_loss"] = round(loss, 6)
    return out


def lean_bootstrap(part: Part, held: Part, args: argparse.Namespace) -> dict[str, Any]:
    """The lean calibration's numbers and their bootstrap spread (as calibrate stores them)."""
    if not args.bootstrap:
        return {}
    out = fit_and_check(
        part, held, list(NAMES), seed=args.seed, bootstrap=args.bootstrap, progress=True
    )
    return {"fit": out["fit"], "after": out["check"]["after"]}


def old_bootstrap(old: ModuleType, part: Part, held: Part, param: int, args) -> dict[str, Any]:
    """The old calibration's numbers refitted on resamples of the fitting part: the sd of
    each kind of number, as median and largest over maps and parameters, and of the check
    part's coverage."""
    if not args.old_bootstrap:
        return {}
    rng = np.random.default_rng(args.seed)
    numbers, coverage = [], []
    for i in range(args.old_bootstrap):
        rows = rng.integers(0, len(part.z), len(part.z))
        again = Part(part.z[rows], part.truth[rows], part.crowding[rows])
        maps, _ = old_maps(old, again, param)
        numbers.append(_old_numbers(maps))
        mapped = _apply(maps, held.z, held.crowding)
        levels = np.array(list(LEVELS.values()))
        coverage.append(
            [_covered(mapped[:, :, j], held.truth[:, j], levels).mean(0) for j in range(3)]
        )
        print(f"old bootstrap {i + 1}/{args.old_bootstrap}", flush=True)
    numbers_sd = {key: np.std(v, axis=0, ddof=1) for key, v in _stack(numbers).items()}
    return {
        "resamples": args.old_bootstrap,
        "numbers_sd": {
            key: {"median": round(float(np.median(sd)), 4), "max": round(float(sd.max()), 4)}
            for key, sd in numbers_sd.items()
        },
        "numbers_range": {
            key: [round(float(np.min(v)), 3), round(float(np.max(v)), 3)]
            for key, v in _stack(numbers).items()
        },
        "check_sd": np.round(np.std(coverage, axis=0, ddof=1), 5).tolist(),
    }


def _old_numbers(maps: Maps) -> dict[str, np.ndarray]:
    """The numbers of the old maps, by kind: (maps, k) per factor, (maps,) shrinks."""
    spreads = _spreads(maps)
    kinds = ("scale", "tail", "knee", "power")
    out = {key: np.array([getattr(s, key) for s in spreads]) for key in kinds}
    return out | {"shrink": np.array([s.shrink for s in spreads])}


def _spreads(maps: Any) -> list[SpreadMap]:
    """Every map of a calibration: clean before crowded, bright before faint."""
    if isinstance(maps, Recalibration):
        return _spreads(maps.clean) + _spreads(maps.crowded)
    if isinstance(maps, BrightnessSplit):
        return _spreads(maps.bright) + _spreads(maps.faint)
    return [maps]


def _stack(numbers: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One array per kind over the bootstrap refits (refits first)."""
    return {key: np.stack([n[key] for n in numbers]) for key in numbers[0]}


def tables(results: dict[str, Any]) -> str:
    """The markdown tables of the results."""
    lines = [f"Out-of-sample coverage deviation (points), {results['n']} galaxies, two folds", ""]
    head = "| calibration | fold | numbers | bt 68/95/99.7 | r_e 68/95/99.7 | flux 68/95/99.7 "
    head += "| worst | worst class 68 / 95 | worst width quarter 68 / 95 | class loss x1e4 |"
    lines += [head, "|---" * 9 + "|"]
    for fold, rows in results["folds"].items():
        for name, r in rows.items():
            cells = [" / ".join(f"{d:+.2f}" for d in r["deviation"][n]) for n in NAMES]
            lines.append(
                f"| {name} | {fold} | {r['numbers']} | "
                + " | ".join(cells)
                + f" | {r['worst']:.2f} | {r['worst_class_68']:.2f} / {r['worst_class_95']:.2f}"
                + f" | {r['worst_quarter_68']:.2f} / {r['worst_quarter_95']:.2f}"
                + f" | {1e4 * r['class_loss']:.1f} |"
            )
    lean_boot = results.get("lean_bootstrap", {}).get("fit")
    if lean_boot:
        lines += ["", _lean_bootstrap_table(lean_boot)]
    old_boot = results.get("old_bootstrap")
    if old_boot:
        lines += ["", _old_bootstrap_table(old_boot)]
    return "\n".join(lines)


def _lean_bootstrap_table(fit: dict[str, Any]) -> str:
    """The lean calibration's numbers +- bootstrap sd, and the check coverage's sd."""
    boot = fit["bootstrap"]
    numbers, sd = fit["numbers"], boot["numbers_sd"]
    lines = [
        f"Lean calibration ({fit['classes']}; {fit['fitted_numbers']} numbers), +- bootstrap sd "
        f"over {boot['resamples']} refits",
        "",
        "| number | " + " | ".join(NAMES) + " |",
        "|---" * 4 + "|",
    ]
    for c, row in numbers["scale"].items():
        spread = sd["scale"][c]
        lines.append(
            f"| core, {c} | " + " | ".join(f"{row[n]:.3f} +- {spread[n]:.3f}" for n in NAMES) + " |"
        )
    for key in ("tail", "power"):
        lines.append(
            f"| {key} | "
            + " | ".join(f"{numbers[key][n]:.3f} +- {sd[key][n]:.3f}" for n in NAMES)
            + " |"
        )
    lines.append(f"| shrink | {numbers['shrink']:.4f} +- {sd['shrink']:.4f} | | |")
    check = boot["check_sd"]
    cells = " | ".join(" / ".join(f"{100 * check[n][c]:.2f}" for c in LEVELS) for n in NAMES)
    lines.append(f"| check coverage sd (points, 68/95/99.7) | {cells} |")
    return "\n".join(lines)


def _old_bootstrap_table(boot: dict[str, Any]) -> str:
    """The old calibration's bootstrap sd by kind of number, and of the check coverage."""
    lines = [
        f"Old 4-map calibration, bootstrap over {boot['resamples']} refits: sd of each kind of "
        "number (median / largest over the maps and parameters) and its range",
        "",
        "| number | sd median | sd largest | range over refits |",
        "|---|---|---|---|",
    ]
    for key, sd in boot["numbers_sd"].items():
        low, high = boot["numbers_range"][key]
        lines.append(f"| {key} | {sd['median']:.3f} | {sd['max']:.3f} | {low} - {high} |")
    cells = " | ".join(" / ".join(f"{100 * v:.2f}" for v in row) for row in boot["check_sd"])
    lines.append(f"| check coverage sd (points, 68/95/99.7; bt, r_e, flux) | {cells} | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
