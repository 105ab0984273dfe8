"""The robustness battery: the same galaxies rendered again with one shift of real data at a
time, and what a model makes of each: coverage and accuracy among the galaxies it does not
flag, and the share it flags.

    .venv/bin/python scripts/robustness.py [--model BUNDLE] [--n 600] [--seed 4242]
        [--preset hsc] [--out robustness/] [--workers 2] [--shifts NAME ...]

Every shift draws the same galaxies (the nuisances are drawn after all other parameters,
and the pixel noise comes from the same seed), so the rows differ by the shift alone.
The last rows change the unshifted row's cutouts after simulation instead: a strip
without data (``scripts/survey_edge.py``) and a bright star (``scripts/bright_stars.py``).
Writes ``OUT/<shift>/`` (the simulated set and the predictions) and ``OUT/battery.md``
(the table, what keeps each row from issue 19's bars, and how far chance alone moves
its coverage; also printed).  Coverage is of the table's 68.27 / 95.45 / 99.73 %
intervals; errors are bt's mean absolute error and the median absolute fractional error
of r_e and flux.  Every row shares one draw of galaxies,
so at the default 600 a lucky or unlucky draw moves all rows together: compare close
models with ``--n 2000`` or more.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from altered_set import alter_set
from astropy.io import fits
from astropy.table import Row, Table
from bright_stars import star_change
from survey_edge import edge_change

import gampen
from gampen.calibration.workflow import binomial_sd
from gampen.flags import Flag, is_fatal
from gampen.infer.summary import LEVELS

#: The parameters judged, in the table's order.
PARAMS = ("bt", "r_e", "flux")
#: shift name -> (description, simulation config overrides on the preset)
SHIFTS: dict[str, tuple[str, dict[str, Any]]] = {
    "none": ("none", {}),
    "correlated-noise": (
        "coadd-like correlated noise (neighbour correlation 0.1-0.4)",
        {"noise": {"correlation": [0.1, 0.4]}},
    ),
    "clumps": (
        "star-forming clumps (10-40 % of the disk light)",
        {"central": {"clump_probability": 1.0, "clump_fraction": [0.1, 0.4]}},
    ),
    "disk-sersic": ("disk Sersic index 0.6-1.6", {"central": {"disk_n": [0.6, 1.6]}}),
    "bulge-sersic": ("bulge Sersic index 2-6", {"central": {"bulge_n": [2.0, 6.0]}}),
    "moffat-beta": ("Moffat beta 2.5-4.5", {"psf": {"beta": [2.5, 4.5]}}),
    "kolmogorov": ("Kolmogorov PSF", {"psf": {"kolmogorov_fraction": 1.0}}),
    "psf-ellipticity": ("PSF ellipticity, shear up to 0.05", {"psf": {"ellipticity": 0.05}}),
    "psf-fwhm-error": (
        "catalog PSF FWHM wrong by ~9 % rms (a poor PSF model)",
        {"psf": {"fwhm_error": 0.087}},
    ),
    "residual-sky": ("residual sky of +-0.5 sigma per pixel", {"noise": {"pedestal": 0.5}}),
    "sky-gradient": ("sky gradient up to 0.5 sigma at the edge", {"noise": {"gradient": 0.5}}),
    "pure": (
        "pure disks and pure bulges, half each",
        {"central": {"pure_disk_fraction": 0.5, "pure_bulge_fraction": 0.5}},
    ),
    # Shifts of the survey and the catalog rather than of the physics: probes of what no
    # issue named (training centres galaxies within half a pixel, 0-3 neighbours).
    "off-centre-1": ("galaxy up to 1 pixel off the cutout centre", {"central": {"offset": 1.0}}),
    "off-centre-2": ("galaxy up to 2 pixels off the cutout centre", {"central": {"offset": 2.0}}),
    "off-centre": ("galaxy up to 3 pixels off the cutout centre", {"central": {"offset": 3.0}}),
    "crowded": (
        "crowded: 1-6 neighbours in every cutout",
        {"neighbours": {"probability": 1.0, "max_count": 6}},
    ),
    "shallower": (
        "sky noise 0.10-0.16 ADU (about 0.6 mag shallower)",
        {"noise": {"sky_sigma": [0.10, 0.16]}},
    ),
    "deeper": (
        "sky noise 0.02-0.04 ADU (about 1 mag deeper)",
        {"noise": {"sky_sigma": [0.02, 0.04]}},
    ),
    "sky-bump": (
        "residual sky bump, peak up to +-1 sigma, sigma 5-15 arcsec",
        {"noise": {"bump": 1.0}},
    ),
    # Galaxies beyond the training prior's edges (mag 17-23, disk r_e 0.3-3 arcsec): the
    # contract's range flags should catch them.
    "fainter": ("fainter than training: mag 23-24.5", {"central": {"mag": [23.0, 24.5]}}),
    "brighter": ("brighter than training: mag 15.5-17", {"central": {"mag": [15.5, 17.0]}}),
    "larger": ("larger disks than training: r_e 3-6 arcsec", {"central": {"r_disk": [3.0, 6.0]}}),
    "smaller": (
        "smaller disks than training: r_e 0.1-0.3 arcsec",
        {"central": {"r_disk": [0.1, 0.3]}},
    ),
}
#: Shifts that put galaxies outside the training prior: flagging them is the right
#: answer (issue 19), so their share flagged is no miss.
OUTSIDE_PRIOR = frozenset({"shallower", "deeper", "fainter", "brighter", "larger", "smaller"})


#: shift name -> (description, the change made to each of the unshifted row's cutouts,
#: from the run's seed): shifts of the pixels after simulation, as real data brings them.
CHANGED: dict[str, tuple[str, Callable[[int], Callable[[fits.HDUList, Row], None]]]] = {
    "survey-edge": (
        "a strip 10-30 pixels wide without data (zeros), residual sky +-0.5 sigma "
        "(`NONFINITE`, on every galaxy, not counted)",
        lambda seed: edge_change(seed, 0.0, 0.5, (10, 30)),
    ),
    "bright-star": (
        "a star of mag 15-19 3-7 arcsec away",
        lambda seed: star_change(seed, (15.0, 19.0), (3.0, 7.0), []),
    ),
}


#: Flag bits a shift sets on every galaxy by design, not counted as flagged.
EXPECTED = {"survey-edge": int(Flag.NONFINITE)}


def describe(name: str) -> str:
    """A shift's description, simulated or changed after."""
    return SHIFTS[name][0] if name in SHIFTS else CHANGED[name][0]


def simulated(name: str, args: argparse.Namespace) -> Path:
    """The shift's set, simulated (resumable) or made from the unshifted row's cutouts;
    returns its catalog."""
    folder = args.out / name
    if name in CHANGED:
        clean = simulated("none", args)
        if not (folder / "sims" / "info.csv").exists():
            alter_set(clean.parent, folder / "sims", CHANGED[name][1](args.seed), name)
        return folder / "sims" / "info.csv"
    return gampen.simulate(
        folder / "sims",
        args.n,
        preset=args.preset,
        config=SHIFTS[name][1] or None,
        seed=args.seed,
        workers=args.workers,
        progress=False,
    )


def run_shift(name: str, args: argparse.Namespace) -> Table:
    """Make the shift's set (resumable) and predict it; returns the matched rows."""
    folder = args.out / name
    catalog = simulated(name, args)
    out = folder / "predictions.parquet"
    if not out.exists():
        gampen.predict(catalog, out=out, model=args.model, progress=False)
    return with_truth(Table.read(out), Table.read(catalog, format="ascii.csv"))


def with_truth(predictions: Table, truth: Table) -> Table:
    """``predictions`` with each galaxy's true values beside them (``true_bt`` ...),
    matched by object_id."""
    where = {int(o): i for i, o in enumerate(truth["object_id"])}
    rows = np.array([where[int(o)] for o in predictions["object_id"]])
    for p in PARAMS:
        predictions[f"true_{p}"] = np.asarray(truth[p], dtype=float)[rows]
    return predictions


def error(table: Table, p: str) -> float:
    """The battery's error of parameter ``p`` over ``table``'s galaxies: bt's mean
    absolute error, the others' median absolute fractional error."""
    truth = np.asarray(table[f"true_{p}"], dtype=float)
    median = np.asarray(table[f"{p}_median"], dtype=float)
    if p == "bt":
        return float(np.mean(np.abs(median - truth)))
    return float(np.median(np.abs(median / truth - 1)))


def summary(table: Table, expected: int = 0) -> dict[str, float]:
    """Flagged shares, then coverage and errors of the unflagged galaxies; the
    ``expected`` bits (those the shift sets on every galaxy by design) are not counted."""
    flags = np.asarray(table["flags"]) & ~expected
    kept = table[flags == 0]
    row = {"flagged": float(np.mean(flags != 0)), "fatal": float(np.mean(is_fatal(flags)))}
    row["kept"] = float(len(kept))
    if not len(kept):  # every galaxy flagged: nothing to judge
        return row | {f"{p}_{x}": np.nan for p in PARAMS for x in (*LEVELS, "error")}
    for p in PARAMS:
        truth = np.asarray(kept[f"true_{p}"], dtype=float)
        for level in LEVELS:
            lo, hi = np.asarray(kept[f"{p}_{level}_lo"]), np.asarray(kept[f"{p}_{level}_hi"])
            row[f"{p}_{level}"] = float(np.mean((lo <= truth) & (truth <= hi)))
        row[f"{p}_error"] = error(kept, p)
    return row


#: Issue 19's bars for a shifted row: coverage within this many points of nominal at
#: 68 and 95 %, errors at most this factor times the unshifted row's, at most this share
#: flagged.
COVERAGE_BAR, ERROR_BAR, FLAGGED_BAR = 0.05, 1.5, 0.10
#: Fewer unflagged galaxies than this and one galaxy moves a coverage by more than the
#: 5-point bar: their coverage and errors are not judged (a row whose shift leaves the
#: training prior then holds by its flags; the shipped model leaves 1-4 of 600 brighter
#: galaxies unflagged, whose 68 % coverage of 0-50 % says nothing).
MIN_JUDGED = 20


def judged(row: dict[str, float]) -> bool:
    """Whether ``row`` keeps enough unflagged galaxies for its coverage and errors to be
    judged (a row without a count, made by hand, is)."""
    return row.get("kept", MIN_JUDGED) >= MIN_JUDGED


def misses(
    row: dict[str, float], unshifted: dict[str, float], outside_prior: bool = False
) -> list[str]:
    """What keeps ``row`` from issue 19's bars (empty: it holds), against ``unshifted``;
    a row ``outside_prior`` may flag any share; coverage and errors of fewer than
    :data:`MIN_JUDGED` unflagged galaxies are not judged."""
    flagged = ["flagged"] if row["flagged"] > FLAGGED_BAR and not outside_prior else []
    if not judged(row):
        return flagged
    out = [
        f"{p} {level.removeprefix('ci')}"
        for level in ("ci68", "ci95")
        for p in ("bt", "r_e", "flux")
        if abs(row[f"{p}_{level}"] - LEVELS[level]) > COVERAGE_BAR
    ]
    out += [
        f"{p} error"
        for p in ("bt", "r_e", "flux")
        if row[f"{p}_error"] > ERROR_BAR * unshifted[f"{p}_error"]
    ]
    return out + flagged


def table(rows: dict[str, dict[str, float]]) -> str:
    """The battery as Markdown; with the unshifted row, a column of what misses issue 19's
    bars and a count of the rows that hold."""
    unshifted = rows.get("none")
    lines = [
        "| shift | flagged (fatal) | worst 68 % coverage | 68 % bt / r_e / flux "
        "| 95 % bt / r_e / flux | 99.7 % bt / r_e / flux | errors bt / r_e / flux "
        "| misses the bars |",
        "|---|---|---|---|---|---|---|---|",
    ]
    held = 0
    for name, r in rows.items():
        missed = misses(r, unshifted, name in OUTSIDE_PRIOR) if unshifted else ["?"]
        held += not missed
        cover = {level: [r[f"{p}_{level}"] for p in ("bt", "r_e", "flux")] for level in LEVELS}
        worst = max(cover["ci68"], key=lambda c: abs(c - LEVELS["ci68"]))
        lines.append(
            f"| {describe(name)} | {r['flagged']:.1%} ({r['fatal']:.1%}) | {worst:.1%} | "
            + " | ".join(" / ".join(f"{c:.1%}" for c in cover[level]) for level in LEVELS)
            + f" | {r['bt_error']:.3f} / {r['r_e_error']:.1%} / {r['flux_error']:.2%} | "
            + (", ".join(missed) or "-")
            + ("" if judged(r) else f" ({r['kept']:.0f} unflagged: not judged)")
            + " |"
        )
    if unshifted:
        lines += [
            "",
            f"{held} of {len(rows)} rows hold issue 19's bars (every parameter's 68 and 95 "
            f"% coverage within {100 * COVERAGE_BAR:.0f} points of nominal, errors at most "
            f"{ERROR_BAR}x the unshifted row's, at most {FLAGGED_BAR:.0%} flagged).",
        ]
    return "\n".join(lines)


def precision(n: int) -> str:
    """How far a row's coverage moves by chance alone: one binomial sd at each level."""
    sds = [100 * binomial_sd(level, n) for level in LEVELS.values()]
    return (
        f"{n} galaxies per row: one binomial sd of a 68.27 / 95.45 / 99.73 % coverage is "
        + " / ".join(f"{sd:.1f}" for sd in sds)
        + " points, and every row shares the same galaxies."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model bundle (default: the shipped one)")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--preset", default="hsc")
    parser.add_argument("--out", type=Path, default=Path("robustness"))
    parser.add_argument("--workers", type=int, default=2)
    names = [*SHIFTS, *CHANGED]
    parser.add_argument("--shifts", nargs="+", default=names, choices=names)
    args = parser.parse_args()
    rows = {name: summary(run_shift(name, args), EXPECTED.get(name, 0)) for name in args.shifts}
    text = table(rows) + "\n\n" + precision(args.n)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "battery.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
