"""The written outputs of ``gampen evaluate``: ``metrics.json`` and a short ``report.md``.

``metrics.json`` is strict JSON (NaN written as null).  ``report.md`` shows the headline
table (coverage of the 68.27/95.45/99.73 % intervals per parameter, overall and in the
isolated/neighbours and bright/faint halves), the same per bin of true B/T, magnitude and
size, joint 68/95 %, accuracy and rotation spread, and links the figures by relative path.
Coverage outside the 95 % binomial band of a calibrated model is shown in bold.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from gampen.atomic import atomic_path
from gampen.evaluation.conditional import BY_PREFIX, TRUTH_SPLITS
from gampen.infer.summary import LEVELS

#: Figure captions in report order (files that were not written are skipped).
FIGURES: dict[str, str] = {
    "coverage.png": "Marginal coverage against nominal level, with the 95 % binomial band",
    "pit.png": "PIT histograms (flat when calibrated)",
    "joint.png": "Joint coverage: Mahalanobis regions and TARP",
    "coverage_subsets.png": "Coverage in subsets (neighbours, bright/faint, PSF, width)",
    "coverage_truth.png": "Coverage by true B/T, magnitude and size, with the 95 % binomial band",
    "residuals.png": "Residuals of the median and mode",
    "rotation.png": "Rotation stability of the posterior mode",
    "cutout_grid.png": "Cutouts with the STN window, isolated and with neighbours",
}


def json_ready(value: Any) -> Any:
    """``value`` with NumPy types as Python ones and NaN/inf as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(metrics: dict[str, Any], path: Path) -> Path:
    """Write the metrics as indented strict JSON, atomically."""
    text = json.dumps(json_ready(metrics), indent=1, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def write_report(metrics: dict[str, Any], path: Path) -> Path:
    """Write the Markdown report, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(render(metrics))
    return path


def render(metrics: dict[str, Any]) -> str:
    """The report's Markdown text."""
    m = json_ready(metrics)
    parts = [
        _header(m),
        coverage_section(m),
        truth_bins_section(m),
        by_columns_section(m),
        _joint(m),
        _accuracy(m),
        _rotation(m),
        _figures(m),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _header(m: dict[str, Any]) -> str:
    """Inputs and how many galaxies were used and left out."""
    inputs = m["inputs"]
    left = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in inputs["left_out"].items() if v)
    samples = f"`{inputs['samples']}`" if inputs["samples"] else "none (table intervals only)"
    return (
        f"# gampen evaluate\n\n"
        f"- predictions: `{inputs['predictions']}`\n"
        f"- truth: `{inputs['truth']}`\n"
        f"- samples: {samples}\n"
        f"- galaxies evaluated: {inputs['n_used']}; left out: {inputs['n_left_out']}"
        + (f" ({left})" if left else "")
        + _model_lines(inputs)
        + f"\n- gampen {m['gampen_version']}"
    )


def _model_lines(inputs: dict[str, Any]) -> str:
    """The model given (if any), the B/T logit epsilon of the joint tests, and a warning
    when the truth holds the model's training galaxies."""
    model, eps, overlap = inputs["model"], inputs["logit_eps"], inputs["training_overlap"]
    whose = f"the model's, `{model}`" if model else "GaMPEN's default; no --model given"
    text = f"\n- joint tests in logit(eps + (1 - 2 eps) B/T), eps = {eps:g} ({whose})"
    if overlap:
        text += f"\n- **warning: the truth holds the model's training galaxies** ({overlap})"
    return text


def coverage_section(m: dict[str, Any]) -> str:
    """Headline coverage table: overall and the isolated/neighbours, bright/faint halves."""
    rows = [("all", m["marginal"])]
    for split in ("neighbours", "mag_halves"):
        rows += [(e["label"], e) for e in m["conditional"].get(split, [])]
    head = "| galaxies | n | param | " + " | ".join(f"{100 * v:.2f} %" for v in LEVELS.values())
    lines = [
        "## Coverage of the credible intervals",
        "",
        "Fraction of galaxies whose truth lies inside the equal-tailed interval "
        "(calibrated: equal to the column's level; **bold**: outside the 95 % binomial band).",
        "",
        head + " |",
        "|---|---|---|" + "---|" * len(LEVELS),
    ]
    for label, row in rows:
        for p, cell in row["params"].items():
            values = " | ".join(_percent(cell["intervals"][name]) for name in LEVELS)
            lines.append(f"| {label} | {row['n']} | {p} | {values} |")
    dev = m["marginal"]["max_abs_deviation"]
    source = next(iter(m["marginal"]["params"].values()))["curve_source"]
    lines += [
        "",
        f"Largest deviation of the coverage curves (levels 1-99.9 %, from the {source}): "
        f"{_pp(dev)}.",
    ]
    return "\n".join(lines)


def truth_bins_section(m: dict[str, Any]) -> str:
    """Coverage per bin of true B/T, magnitude and size: the table's intervals and, with
    samples, the samples' own central intervals (from the PIT)."""
    bins = [e for s in TRUTH_SPLITS for e in m["conditional"].get(s, [])]
    intro = (
        "Fifths of true B/T with fixed edges (the last includes 1), galaxies with B/T exactly "
        "0 and exactly 1 again on their own, and fifths (equal counts) of true magnitude and "
        "r_e."
    )
    return _bins_section("Coverage by true B/T, magnitude and size", intro, bins)


def by_columns_section(m: dict[str, Any]) -> str:
    """Coverage per bin of the truth columns named with ``--by``."""
    splits = [s for s in m["conditional"] if s.startswith(BY_PREFIX)]
    bins = [e for s in splits for e in m["conditional"][s]]
    names = ", ".join(f"`{s.removeprefix(BY_PREFIX)}`" for s in splits)
    intro = f"Quartiles (equal counts), or one bin per name, of {names} (`--by`)."
    return _bins_section("Coverage by the columns asked for", intro, bins)


def _bins_section(title: str, intro: str, bins: list[dict[str, Any]]) -> str:
    """A coverage table, one row per bin and parameter: the table's intervals and, with
    samples, the samples' central intervals (from the PIT); empty without bins."""
    if not bins:
        return ""
    sampled = any("pit_intervals" in cell for e in bins for cell in e["params"].values())
    levels = [f"{100 * v:.2f} %" for v in LEVELS.values()]
    columns = [f"table {v}" for v in levels] + ([f"samples {v}" for v in levels] if sampled else [])
    lines = [
        f"## {title}",
        "",
        f"{intro} `table`: the table's intervals"
        + ("; `samples`: the samples' central intervals, from the PIT" if sampled else "")
        + ". **Bold**: outside the 95 % binomial band.",
        "",
        "| bin | n | param | " + " | ".join(columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for entry in bins:
        for p, cell in entry["params"].items():
            values = [_percent(cell["intervals"][name]) for name in LEVELS]
            if sampled:
                pit = cell.get("pit_intervals", {})
                values += [_percent(pit[name]) if pit else "-" for name in LEVELS]
            lines.append(f"| {entry['label']} | {entry['n']} | {p} | {' | '.join(values)} |")
    return "\n".join(lines)


def _joint(m: dict[str, Any]) -> str:
    """Joint coverage at 68 and 95 % (Mahalanobis regions and TARP)."""
    if "joint" not in m:
        return ""
    lines = [
        "## Joint coverage",
        "",
        "| test | n | 68 % | 95 % | largest deviation |",
        "|---|---|---|---|---|",
    ]
    for name, label in (("mahalanobis", "Mahalanobis regions"), ("tarp", "TARP (ECP)")):
        entry = m["joint"][name]
        cov = entry["coverage"]
        lines.append(
            f"| {label} | {entry['n']} | {_fraction(cov['68'])} | {_fraction(cov['95'])} "
            f"| {_pp(entry['max_abs_deviation'])} |"
        )
    return "\n".join(lines)


def _accuracy(m: dict[str, Any]) -> str:
    """Accuracy of the median and mode of every parameter."""
    lines = ["## Accuracy of the point estimates", ""]
    absolute = {"mean_abs_error": "mean abs. error", "bias": "bias (mean)"}
    fractional = {
        "median_abs_fractional_error": "median abs. frac. error",
        "bias": "bias (median frac.)",
        "outlier_fraction": "outliers (abs. frac. > 0.5)",
    }
    for p, by_estimator in m["accuracy"].items():
        first = next(iter(by_estimator.values()), {})
        names = fractional if "median_abs_fractional_error" in first else absolute
        lines += [
            f"| {p} | " + " | ".join(names.values()) + " |",
            "|---|" + "---|" * len(names),
        ]
        for estimator, values in by_estimator.items():
            cells = " | ".join(_number(values[k]) for k in names)
            lines.append(f"| {estimator} | {cells} |")
        lines.append("")
    return "\n".join(lines).rstrip()


def _rotation(m: dict[str, Any]) -> str:
    """Median spread of the posterior mode across orientations."""
    rotation = m.get("rotation") or {}
    if not rotation:
        return ""
    lines = ["## Rotation stability", ""]
    if "dihedral" in rotation:
        s = rotation["dihedral"]["settings"]
        lines += [
            f"Modes of {s['n_galaxies']} galaxies at the 8 dihedral orientations "
            f"({s['n_passes']} passes, {s['n_samples']} samples each); spread = std across "
            "orientations (fractional for log-scaled parameters).",
            "",
            "| param | median spread | 90th percentile | median spread / posterior std |",
            "|---|---|---|---|",
        ]
        for p, e in rotation["dihedral"]["params"].items():
            ratio = e.get("median_spread_over_posterior_std")
            lines.append(
                f"| {p} ({e['kind']}) | {_number(e['median_spread'])} "
                f"| {_number(e['p90_spread'])} | {_number(ratio)} |"
            )
    if "rendered" in rotation:
        lines += ["", "Rendered rotations (truth column `rotation_group`):", ""]
        lines += ["| param | groups | median spread |", "|---|---|---|"]
        for p, e in rotation["rendered"]["params"].items():
            lines.append(f"| {p} ({e['kind']}) | {e['n_groups']} | {_number(e['median_spread'])} |")
    return "\n".join(lines)


def _figures(m: dict[str, Any]) -> str:
    """Links to every figure written, by relative path."""
    written = m.get("figures", [])
    lines = ["## Figures", ""]
    for name, caption in FIGURES.items():
        if name in written:
            lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    shown = [f for f in written if f.startswith("show_")]
    if shown:
        lines += ["### Shown galaxies: cutout, STN window and posterior", ""]
        lines += [f"![{name}]({name})" for name in shown]
    return "\n".join(lines).rstrip()


def _percent(cell: dict[str, Any]) -> str:
    """A coverage cell as a percentage, bold when outside the binomial band."""
    value, band = cell["empirical"], cell["band"]
    if value is None:
        return "-"
    text = f"{100 * value:.1f}"
    outside = band[0] is not None and not band[0] <= value <= band[1]
    return f"**{text}**" if outside else text


def _fraction(value: float | None) -> str:
    """A fraction as a percentage with one decimal."""
    return "-" if value is None else f"{100 * value:.1f} %"


def _pp(value: float | None) -> str:
    """A coverage difference in percentage points."""
    return "-" if value is None else f"{100 * value:.1f} percentage points"


def _number(value: float | None) -> str:
    """A metric with three significant digits."""
    return "-" if value is None else f"{value:.3g}"
