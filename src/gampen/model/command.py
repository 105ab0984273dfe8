"""``gampen info BUNDLE``: describe a model bundle in words (``--json`` for the raw metadata).

Loading the bundle also validates it, so ``gampen info`` doubles as a check that a bundle
is complete, readable and consistent with its weights.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gampen.model.bundle import Bundle
    from gampen.model.config import NetworkConfig

#: Width at which long values (preprocessing, metrics) are cut with an ellipsis.
LINE_WIDTH = 100
_LABEL_WIDTH = 15


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``info`` sub-command."""
    parser = subparsers.add_parser(
        "info",
        help="describe a model bundle",
        description="Print a model bundle's architecture, parameters, bands, geometry, "
        "preprocessing, calibration, metrics and provenance.",
    )
    parser.add_argument("bundle", help="bundle directory or .zip")
    parser.add_argument("--json", action="store_true", help="print the raw gampen.json")
    parser.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    """Print the bundle description; returns the exit status."""
    from gampen.model.bundle import load_bundle, read_metadata

    if args.json:
        print(json.dumps(read_metadata(args.bundle), indent=2))
        return 0
    bundle = load_bundle(args.bundle)
    print(describe_bundle(bundle, source=str(args.bundle)))
    return 0


def describe_bundle(bundle: Bundle, *, source: str) -> str:
    """Human-readable, multi-line summary of a loaded :class:`gampen.model.bundle.Bundle`."""
    from gampen.model.network import count_parameters

    c = bundle.config
    side = c.input_size * bundle.pixel_scale
    n_bands = len(bundle.bands)
    sections = [
        (
            "Model bundle",
            [
                f"{source} (format {bundle.format_version}, gampen {bundle.gampen_version})",
                f"sha256 {bundle.sha256} "
                f"({'calibrated' if bundle.calibrated else 'NOT calibrated'})",
            ],
        ),
        ("Architecture", _architecture(c, count_parameters(bundle.net))),
        ("Parameters", [", ".join(bundle.param_names)]),
        ("Bands", [f"{', '.join(bundle.bands)} ({n_bands} band{'s' if n_bands > 1 else ''})"]),
        (
            "Geometry",
            [
                f"{c.input_size} x {c.input_size} px at {bundle.pixel_scale:g} arcsec/px "
                f"({side:.2f} arcsec across); zero point {bundle.zero_point:g}"
            ],
        ),
        ("Inputs", _contract_lines(bundle)),
        ("Preprocessing", _mapping_lines(bundle.preprocessing)),
        ("Calibration", _mapping_lines(bundle.calibration)),
        ("Metrics", _mapping_lines(bundle.metrics)),
        ("Provenance", _mapping_lines(bundle.provenance)),
    ]
    return "\n".join(_section(title, lines) for title, lines in sections)


def _contract_lines(bundle: Bundle) -> list[str]:
    """What each cutout must be: pixel scale, AB zero point, conditions and their units,
    and the ranges the model was trained on."""
    contract = bundle.contract
    lines = [
        f"pixels of {contract.pixel_scale:g} arcsec; flux in units of AB zero point "
        f"{contract.zero_point:g} (other zero points and Jy-like BUNITs are converted)"
    ]
    for name, unit in contract.condition_units.items():
        lines.append(f"condition {name}" + (f" in {unit}" if unit else ""))
    if contract.psf_image:
        fallback = "psf_fwhm" if "psf_fwhm" in contract.condition_units else "the image"
        lines.append(
            "PSF image where given (column psf_image, else the cutout's PSF HDU); "
            f"else {fallback} alone"
        )
    ranges = _ranges_text(contract.ranges)
    lines.append(f"trained on: {ranges}" if ranges else "training ranges: not recorded")
    if contract.calibrated_ranges:
        lines.append(f"calibrated on: {_ranges_text(contract.calibrated_ranges)}")
    return lines


def _ranges_text(ranges: dict[str, tuple[float, float]]) -> str:
    """``name [lo, hi], ...`` for a contract's ranges."""
    return ", ".join(f"{name} [{lo:g}, {hi:g}]" for name, (lo, hi) in ranges.items())


def _architecture(c: NetworkConfig, n_parameters: int) -> list[str]:
    """Backbone, widths, STN, head and dropout in three lines."""
    widths = "-".join(str(w) for w in c.widths)
    stn = "none" if c.stn == "none" else f"{c.stn}, zoom in [{c.zoom_min:g}, {c.zoom_max:g}]"
    dropout = f"dropout {c.dropout:g}"
    if c.backbone == "compact":
        last_stage = len(c.widths)
        where = "classifier only" if c.dropout_from > last_stage else f"from stage {c.dropout_from}"
        dropout += f" {where}"
    return [
        f"{c.backbone} backbone, widths {widths}, hidden {c.hidden}; "
        f"{n_parameters:,} trainable parameters",
        f"STN {stn}; {c.covariance} covariance (Cholesky), min scale {c.min_scale:g}",
        f"{dropout} (MC dropout); input {c.n_bands} x {c.input_size} x {c.input_size}",
    ]


def _mapping_lines(mapping: dict[str, Any]) -> list[str]:
    """One ``key: value`` line per entry, values as compact JSON cut to the line width."""
    if not mapping:
        return ["(none)"]
    return [_shorten(f"{key}: {_compact(value)}") for key, value in mapping.items()]


def _compact(value: Any) -> str:
    """Strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, separators=(", ", ": "))


def _shorten(text: str) -> str:
    """``text`` cut with an ellipsis so that a labelled line fits :data:`LINE_WIDTH`."""
    room = LINE_WIDTH - _LABEL_WIDTH
    return text if len(text) <= room else text[: room - 3] + "..."


def _section(title: str, lines: list[str]) -> str:
    """A titled block: the title in a fixed-width column, continuation lines indented."""
    pad = " " * _LABEL_WIDTH
    first, *rest = lines
    return "\n".join([f"{title:<{_LABEL_WIDTH}}{first}", *(pad + line for line in rest)])
