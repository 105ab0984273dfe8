"""Run a calibration: sample held-out galaxies, fit spread factors, check, store in a bundle.

The samples are drawn exactly as ``gampen predict`` draws them (same passes, samples and
per-galaxy random streams for the same ``--seed``), without any calibration, in the
network's standardised label space, where the truth is transformed the same way.  The
fit (:mod:`gampen.calibration.fit`) is refitted on bootstrap resamples of the fitting
part, and the spread of every number, and of the check part's coverage, is stored beside
the numbers (``calibration.fit.numbers`` and ``.bootstrap``).

This module draws samples through the network (:mod:`gampen.infer`), so it sits above
inference, with the command line, while the maps and their fit sit below the model.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from gampen.calibration.command import BOOTSTRAP
from gampen.calibration.fit import (
    CROWDED,
    FIT_LEVELS,
    KEEP_SPREADS,
    MIN_CLASS,
    MIN_GROUP,
    CalibrationFit,
    Galaxies,
    Split,
    coverage_from_pit,
    fit_calibration,
    is_below,
    joint_coverage,
    pit,
    refit,
)
from gampen.calibration.maps import FIELDS, KNEE, Maps, Recalibration, SpreadMap
from gampen.checks import check_float, check_int
from gampen.checksum import file_sha256
from gampen.data.catalog import Catalog, table_format
from gampen.data.contract import range_lists, training_ranges
from gampen.data.dataset import CutoutDataset
from gampen.data.labels import LabelTransform
from gampen.data.provenance import training_overlap
from gampen.errors import CatalogError, ConfigError
from gampen.flags import is_fatal
from gampen.infer.options import PredictOptions
from gampen.infer.predict import bundle_catalog, bundle_dataset
from gampen.infer.sampling import galaxy_keys, posterior_samples
from gampen.infer.summary import LEVELS
from gampen.model.bundle import Bundle, load_bundle, save_bundle
from gampen.model.ood import QUANTILE, OodModel

log = logging.getLogger(__name__)
WHERE = "calibration option"
#: The check part should measure 68.27 % coverage to this precision (1 sigma, binomial).
CHECK_PRECISION = 0.01


def binomial_sd(level: float, n: int) -> float:
    """How far chance alone moves the coverage of ``n`` calibrated galaxies at ``level``
    (one binomial standard deviation)."""
    return math.sqrt(level * (1 - level) / n)


def needed_galaxies(level: float, precision: float) -> int:
    """Galaxies needed to measure coverage ``level`` to ``precision`` (one binomial
    standard deviation, ``sqrt(level (1 - level) / n)``)."""
    return math.ceil(level * (1 - level) / precision**2)


def fitting_galaxies(n_fit: int, spread: float, precision: float) -> int:
    """Fitting galaxies that would bring a bootstrap spread ``spread``, measured with
    ``n_fit`` of them, down to ``precision`` (a spread falls as ``1 / sqrt(n)``)."""
    return math.ceil(n_fit * (spread / precision) ** 2)


@dataclass
class CalibrationResult:
    """The bundle and its new ``calibration`` field (factors, fit and check)."""

    bundle: Bundle
    calibration: dict[str, Any]
    #: ``mag`` / ``r_e`` ranges of the calibration galaxies: the contract's
    #: ``calibrated_ranges``, where ``PARAM_RANGE`` asks for the whole 68 % interval.
    calibrated_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def worst_deviation(self, when: str) -> float:
        """The largest marginal coverage deviation, over parameters and levels, of the
        check part ``before`` or ``after`` the calibration."""
        return max(
            report["max_abs_deviation"] for report in self.calibration["check"][when].values()
        )

    @property
    def worse_than_none(self) -> bool:
        """True when the check part's coverage deviates more after than before."""
        return self.worst_deviation("after") > self.worst_deviation("before")

    def precision_note(self) -> str:
        """How precisely the check part measures coverage, what ``CHECK_PRECISION`` would
        need, and how much the fit's own noise (the bootstrap spread) adds."""
        n = self.calibration["check"]["n"]
        level = LEVELS["ci68"]
        sd = binomial_sd(level, n)
        need = needed_galaxies(level, CHECK_PRECISION)
        note = (
            f"{n} check galaxies measure 68.27 % coverage to +-{100 * sd:.1f} points (1 sigma); "
            f"+-{100 * CHECK_PRECISION:.0f} point needs {need:,}"
        )
        spread = self.calibration["fit"].get("bootstrap", {}).get("check_sd")
        if not spread:
            return note
        fit_sd = max(report["ci68"] for report in spread.values())
        n_fit = self.calibration["fit"]["n"]
        return note + (
            f". The fit's own noise moves it by up to +-{100 * fit_sd:.1f} points (bootstrap "
            f"sd; it falls as 1 / sqrt(fitting galaxies): +-{100 * CHECK_PRECISION:.0f} point "
            f"needs about {fitting_galaxies(n_fit, fit_sd, CHECK_PRECISION):,})"
        )

    def table(self) -> str:
        """The fitted numbers (with their bootstrap spread), the held-out evidence for the
        class split, then coverage before and after on the check part."""
        cal, fit = self.calibration, self.calibration["fit"]
        lines = self._numbers_lines(fit) + self._split_lines(fit)
        levels = [*LEVELS, "max_abs_deviation"]
        check = cal["check"]
        spread = fit.get("bootstrap", {}).get("check_sd", {})
        lines.append(
            f"coverage on {check['n']} held-out galaxies (before -> after calibration"
            + (", +- bootstrap sd of after)" if spread else ")")
        )
        lines.append(f"{'param':<8}" + "".join(f"{name:>26}" for name in levels))
        for name in cal["scale"]:
            before, after = check["before"][name], check["after"][name]
            sd = spread.get(name, {})
            cells = [
                f"{before[c]:.3f} -> {after[c]:.3f}" + (f" +-{sd[c]:.3f}" if c in sd else "")
                for c in levels
            ]
            lines.append(f"{name:<8}" + "".join(f"{cell:>26}" for cell in cells))
        if "joint_before" in check:
            before, after = check["joint_before"], check["joint_after"]
            cells = ", ".join(f"{c} {before[c]:.3f} -> {after[c]:.3f}" for c in before)
            lines.append(f"joint regions of all parameters: {cells}")
        if "ood_flagged" in check:
            lines.append(
                f"flagged out of distribution: {check['ood_flagged']:.1%} of the check part "
                f"(the threshold keeps {QUANTILE:.1%} of the fitting part)"
            )
        groups = {**check.get("after_by_crowding", {}), **check.get("after_by_split", {})}
        for group, report in groups.items():
            cells = ", ".join(f"{n} {report[n]['ci68']:.3f}" for n in cal["scale"])
            lines.append(f"after, {group} galaxies: 68 % coverage {cells}")
        lines.append(self.precision_note())
        return "\n".join(lines)

    def _numbers_lines(self, fit: dict[str, Any]) -> list[str]:
        """The fitted numbers, +- their bootstrap spread, one row per kind and class."""
        numbers, boot = fit["numbers"], fit.get("bootstrap", {})
        sd = boot.get("numbers_sd")
        names = list(numbers["tail"])
        head = f"calibration: {fit['fitted_numbers']} fitted numbers, knee fixed at {KNEE:g} sd"
        lines = [head + (f"; +- bootstrap sd over {boot['resamples']} refits" if sd else "")]
        lines.append(f"{'':<26}" + "".join(f"{name:>18}" for name in names))
        sd = sd or {}
        rows = [
            (f"core, {c}", numbers["scale"][c], sd.get("scale", {}).get(c))
            for c in numbers["scale"]
        ]
        rows += [
            ("tail beyond the knee", numbers["tail"], sd.get("tail")),
            ("width power", numbers["power"], sd.get("power")),
        ]
        for title, values, spreads in rows:
            cells = "".join(
                f"{values[n]:>10.3f}" + (f" +-{spreads[n]:.3f}" if spreads else " " * 8)
                for n in names
            )
            lines.append(f"{title:<26}{cells}".rstrip())
        shrink = f"{numbers['shrink']:.4f}" + (f" +- {sd['shrink']:.4f}" if sd else "")
        lines.append(f"correlations shrunk by {shrink}")
        if "faint" in self.calibration or "faint" in self.calibration.get("crowded", {}):
            faint = self.calibration.get("faint") or self.calibration["crowded"]["faint"]
            lines.append(
                f"lower {faint['param']}: predicted {faint['param']} < {self._limit(faint)}"
            )
        if "crowded" in self.calibration:
            lines.append(f"crowded: crowding index > {self.calibration['crowded']['above']:g}")
        return lines

    @staticmethod
    def _split_lines(fit: dict[str, Any]) -> list[str]:
        """How the held-out halves judged each class split tried."""
        steps = fit["selection"]["steps"]
        if not steps:
            return [f"classes: none tried (a class needs {MIN_CLASS} fitting galaxies)"]
        lines = [
            "classes judged on held-out halves (gain in coverage loss; kept if < "
            f"-{KEEP_SPREADS:g} x spread):"
        ]
        for step in steps:
            verdict = "kept" if step["kept"] else "not kept"
            lines.append(
                f"  {step['from']} -> {step['to']}: gain {step['gain']:.5f} "
                f"+- {step['spread']:.5f}, {verdict}"
            )
        return lines

    def _limit(self, faint: dict[str, Any]) -> str:
        """A split's limit (stored standardised) in its parameter's physical
        unit; a flux also as a magnitude (the bundle's zero point)."""
        labels = LabelTransform.from_dict(self.bundle.preprocessing["labels"])
        z = np.zeros((1, len(labels.names)))
        j = labels.names.index(faint["param"])
        z[0, j] = faint["below"]
        value = float(labels.inverse(z)[0, j])
        if faint["param"] != "flux":
            return f"{value:.4g}"
        return f"{value:.4g} ADU (mag {self.bundle.zero_point - 2.5 * np.log10(value):.2f})"

    def save(self, out: str | Path) -> Path:
        """Write the bundle with the new calibration (weights unchanged)."""
        b = self.bundle
        return save_bundle(
            out,
            b.net,
            param_names=b.param_names,
            bands=b.bands,
            pixel_scale=b.pixel_scale,
            zero_point=b.zero_point,
            preprocessing=b.preprocessing,
            calibration=self.calibration,
            provenance=b.provenance,
            metrics=b.metrics,
            contract=self.contract(),
        )

    def contract(self) -> dict[str, Any] | None:
        """The bundle's ``contract`` field with the calibration's ``calibrated_ranges``."""
        contract = self.bundle.metadata.get("contract")
        if contract is None or not self.calibrated_ranges:
            return contract
        return {**contract, "calibrated_ranges": range_lists(self.calibrated_ranges)}


@dataclass
class Part:
    """Standardised samples (N, S, k), truths (N, k) and crowding indices (N,) of one part
    of the calibration set."""

    z: np.ndarray
    truth: np.ndarray
    crowding: np.ndarray


def calibrate(
    bundle_path: str | Path,
    catalog: str | Path,
    *,
    options: PredictOptions | None = None,
    check_fraction: float = 0.5,
    bootstrap: int = BOOTSTRAP,
    allow_training_galaxies: bool = False,
) -> CalibrationResult:
    """Fit the map on part of ``catalog`` and check it on the rest; refit it on
    ``bootstrap`` resamples of the fitting part (0: none) for the spread of every number.

    ``options`` say how to sample, as for ``gampen predict`` (its ``seed`` also splits).
    A catalog holding the model's training galaxies is refused unless
    ``allow_training_galaxies``; then the reason is recorded as
    ``calibration.fit.training_overlap``.
    """
    options = options or PredictOptions()
    check_float(
        WHERE, "check_fraction", check_fraction, low=0.0, high=1.0, low_open=True, high_open=True
    )
    check_int(WHERE, "bootstrap", bootstrap, 0, 10_000)
    if bootstrap == 1:
        raise ConfigError(f"{WHERE} field 'bootstrap' is invalid", value=1, allowed="0, or >= 2")
    bundle = load_bundle(bundle_path)
    table_format(catalog)  # a catalog file (not a folder or a pack)
    # A missing or unreadable catalog fails clearly here.
    loaded = bundle_catalog(
        bundle, catalog, image_dir=options.image_dir, targets=bundle.param_names
    )
    catalog_sha256 = file_sha256(catalog)
    overlap = refuse_training_catalog(
        catalog, catalog_sha256, bundle, loaded, allow=allow_training_galaxies
    )
    z, truth, crowding, features = standardised_samples(bundle, loaded, options)
    fit_rows, check_rows = split_rows(len(z), check_fraction, options.seed)
    warn_if_small(len(fit_rows), len(check_rows))
    fields = fit_and_check(
        Part(z[fit_rows], truth[fit_rows], crowding[fit_rows]),
        Part(z[check_rows], truth[check_rows], crowding[check_rows]),
        bundle.param_names,
        seed=options.seed,
        bootstrap=bootstrap,
        progress=options.progress,
    )
    ood = OodModel.fit(features[fit_rows]).to_dict()
    stored_ood = OodModel.from_dict(ood)  # checked as stored (rounded), as predict applies it
    check = fields.pop("check")
    check["ood_flagged"] = round(float(np.mean(stored_ood.score(features[check_rows]) > 1)), 4)
    record = {
        "catalog": Path(catalog).name,
        "catalog_sha256": catalog_sha256,
        **({"training_overlap": overlap} if overlap else {}),
        "n": len(fit_rows),
        "seed": options.seed,
        "n_passes": options.n_passes,
        "n_samples": options.n_samples,
        **fields.pop("fit"),
    }
    calibration = {"method": "spread", **fields, "ood": ood, "fit": record, "check": check}
    # the catalog's physical truths (``truth`` is standardised)
    ranges = training_ranges(bundle.param_names, loaded.labels, bundle.zero_point, {})
    claimed = {name: ranges[name] for name in ("mag", "r_e") if name in ranges}
    return CalibrationResult(bundle, calibration, claimed)


def fit_and_check(
    part: Part, held: Part, names: list[str], *, seed: int, bootstrap: int, progress: bool
) -> dict[str, Any]:
    """The calibration fitted on ``part`` and checked on ``held`` (standardised samples):
    the stored maps' fields, ``fit`` (the numbers, how the classes were chosen, the
    bootstrap spreads) and ``check`` (coverage before and after)."""
    params = {name: j for j, name in enumerate(names)}
    fit, selection = fit_calibration(part.z, part.truth, part.crowding, params, seed=seed)
    factors = stored_factors(fit, names)
    # Checked as stored (rounded), i.e. as ``gampen predict`` will apply it.
    stored = Recalibration.from_calibration(factors, names)
    after_z = held.z if stored is None else _apply(stored, held.z, held.crowding)
    record: dict[str, Any] = {
        "classes": fit.split.name,
        "fitted_numbers": fit.n_fitted,
        "numbers": _rounded(fit.numbers(names)),
        "selection": selection,
    }
    if bootstrap:
        record["bootstrap"] = _bootstrap(fit, part, held, names, bootstrap, seed, progress)
    return {**factors, "fit": record, "check": _check_report(held, after_z, names, fit)}


def _check_report(
    held: Part, after_z: np.ndarray, names: list[str], fit: CalibrationFit
) -> dict[str, Any]:
    """Coverage of the check part before and after calibration: per parameter, jointly,
    and after in each crowding class and each half of the split by a parameter (where
    each has a few galaxies)."""
    check: dict[str, Any] = {
        "n": len(held.z),
        "before": _coverage_report(held.z, held.truth, names),
        "after": _coverage_report(after_z, held.truth, names),
        "joint_before": _joint_report(held.z, held.truth),
        "joint_after": _joint_report(after_z, held.truth),
    }
    classes = {"after_by_crowding": (held.crowding > CROWDED, ("clean", "crowded"))}
    if fit.split.by is not None:
        higher, lower = Split(by=fit.split.by).class_names
        classes["after_by_split"] = (is_below(held.z, fit.limit), (higher, lower))
    for key, (mask, groups) in classes.items():
        if min(mask.sum(), (~mask).sum()) >= MIN_GROUP:
            check[key] = _split_report(after_z, held.truth, names, mask, groups)
    return check


def _bootstrap(
    fit: CalibrationFit,
    part: Part,
    held: Part,
    names: list[str],
    resamples: int,
    seed: int,
    progress: bool,
) -> dict[str, Any]:
    """The spread (sd) of every fitted number, and of the check part's coverage at the
    catalog's levels, over refits on resamples (with replacement) of the fitting part."""
    lower = {fit.split.by: is_below(part.z, fit.limit)} if fit.split.by else {}
    galaxies = Galaxies.from_samples(part.z, part.truth, part.crowding > CROWDED, lower)
    rng = np.random.default_rng(seed)
    numbers, coverage = [], []
    bar = tqdm(range(resamples), unit="refit", desc="bootstrap", disable=not progress)
    for _ in bar:
        rows = rng.integers(0, len(part.z), len(part.z))
        again = refit(fit, galaxies.take(rows), part.z[rows], part.truth[rows], part.crowding[rows])
        numbers.append(again.numbers(names))
        after = _apply(again.maps(), held.z, held.crowding)
        coverage.append(_coverage_report(after, held.truth, names))
    return {
        "resamples": resamples,
        "numbers_sd": _spread(numbers),
        "check_sd": {
            name: {c: _spread([report[name][c] for report in coverage]) for c in LEVELS}
            for name in names
        },
    }


def _spread(values: list) -> Any:
    """The sd over bootstrap refits of a number, or of every number of a nested dict."""
    if isinstance(values[0], dict):
        return {key: _spread([v[key] for v in values]) for key in values[0]}
    return round(float(np.std(values, ddof=1)), 5)


def _rounded(numbers: Any) -> Any:
    """Numbers, or a nested dict of them, rounded for a readable JSON file."""
    if isinstance(numbers, dict):
        return {key: _rounded(value) for key, value in numbers.items()}
    return round(float(numbers), 5)


def write_calibrated(result: CalibrationResult, out: str | Path, *, force: bool = False) -> Path:
    """Write the calibrated bundle, unless the calibration makes the check part's coverage
    worse than none at all (then a :class:`CatalogError`, or a warning with ``force``)."""
    if result.worse_than_none:
        before, after = result.worst_deviation("before"), result.worst_deviation("after")
        message = (
            f"the calibration makes coverage worse on the check part (largest deviation "
            f"{before:.3f} before, {after:.3f} after): the calibration set is too small or "
            "unlike the data"
        )
        if not force:
            raise CatalogError(
                f"{message}; {out} was not written", allowed="more held-out galaxies, or --force"
            )
        log.warning("%s; written anyway (force)", message)
    return result.save(out)  # each file is replaced atomically: never half-written


def map_fields(spread: SpreadMap, names: list[str]) -> dict[str, Any]:
    """A map's factors as the bundle stores them: ``{key: {name: value}}``, rounded, and
    the correlation ``shrink``."""
    factors: dict[str, Any] = {key: _by_name(names, getattr(spread, key)) for key in FIELDS}
    return {**factors, "shrink": round(spread.shrink, 5)}


def stored_factors(fit: CalibrationFit, names: list[str]) -> dict[str, Any]:
    """``fit``'s maps in the bundle's format, which every earlier version reads: the clean
    (or only) class's map; the map of its galaxies whose predicted median of the split's
    parameter is below the limit under ``faint`` (named when only the flux could split);
    the crowded class under ``crowded`` (with its own ``faint``).  Shared numbers are
    written into every map."""
    maps = [map_fields(fit.spread(c), names) for c in range(fit.split.n_classes)]
    if fit.split.by is not None and fit.limit is not None:
        limit = {"param": fit.split.by, "below": round(fit.limit[1], 5)}
        maps = [
            {**bright, "faint": {**limit, **faint}}
            for bright, faint in zip(maps[::2], maps[1::2], strict=True)
        ]
    if fit.split.crowding:
        return {**maps[0], "crowded": {"above": CROWDED, **maps[1]}}
    return maps[0]


def _apply(maps: Maps, z: np.ndarray, crowding: np.ndarray) -> np.ndarray:
    """Samples recalibrated by one map or by the map each galaxy picks."""
    z = np.asarray(z, dtype=np.float64)
    return maps.apply(z) if isinstance(maps, SpreadMap) else maps.apply(z, crowding)


def standardised_samples(
    bundle: Bundle, catalog: Catalog, options: PredictOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Uncalibrated samples (N, S, k), truths (N, k), crowding indices (N,) and head
    inputs (N, d, for the OOD model) of the usable galaxies, standardised (``catalog``:
    :func:`~gampen.infer.predict.bundle_catalog` with the bundle's parameters as targets)."""
    labels = LabelTransform.from_dict(bundle.preprocessing["labels"])
    if catalog.labels is None:
        raise CatalogError(
            f"{catalog.source} lacks the true value column(s) needed for calibration",
            value=[n for n in labels.names if n not in catalog.column_names],
            allowed=list(labels.names),
        )
    dataset = bundle_dataset(bundle, catalog, hdu=options.hdu, label_transform=labels)
    return _sample_all(bundle, dataset, options)


@torch.inference_mode()
def _sample_all(
    bundle: Bundle, dataset: CutoutDataset, options: PredictOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw every usable galaxy's samples, batch by batch, with a progress bar."""
    loader = DataLoader(dataset, batch_size=options.batch_size, num_workers=options.num_workers)
    samples, truths, crowding, features = [], [], [], []
    bar = tqdm(total=len(dataset), unit="gal", desc="calibration set", disable=not options.progress)
    for batch in loader:
        usable = ~is_fatal(batch["flags"].numpy())
        rows = batch["index"].numpy()[usable]
        if len(rows):
            z, _ = posterior_samples(
                bundle.net,
                batch["image"][usable],
                galaxy_keys(options.seed, rows),
                n_passes=options.n_passes,
                n_samples=options.n_samples,
                scalars=batch["scalars"][usable],
                embeddings=features,
            )
            samples.append(z.numpy())
            truths.append(batch["target"][usable].numpy())
            crowding.append(batch["crowding"][usable].numpy().astype(np.float64))
        bar.update(len(usable))
    bar.close()
    if not samples:
        raise CatalogError("no usable galaxy in the calibration catalog (all flagged fatal)")
    embedded = torch.cat(features).numpy().astype(np.float64)
    return np.concatenate(samples), np.concatenate(truths), np.concatenate(crowding), embedded


def _coverage_report(
    z: np.ndarray, truth: np.ndarray, names: list[str]
) -> dict[str, dict[str, float]]:
    """Per parameter: coverage at the reported levels and the largest deviation on the grid."""
    report = {}
    for j, name in enumerate(names):
        values = pit(z[:, :, j], truth[:, j])
        headline = coverage_from_pit(values, np.array(list(LEVELS.values())))
        grid = coverage_from_pit(values, FIT_LEVELS)
        report[name] = {
            **{level: round(float(c), 4) for level, c in zip(LEVELS, headline, strict=True)},
            "max_abs_deviation": round(float(np.max(np.abs(grid - FIT_LEVELS))), 4),
        }
    return report


def _split_report(
    z: np.ndarray, truth: np.ndarray, names: list[str], mask: np.ndarray, groups: tuple[str, str]
) -> dict[str, dict[str, dict[str, float]]]:
    """Coverage reports of the galaxies outside ``mask`` and inside it, named ``groups``."""
    return {
        group: _coverage_report(z[members], truth[members], names)
        for group, members in zip(groups, (~mask, mask), strict=True)
    }


def _joint_report(z: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Coverage of the joint 68.27 / 95.45 % Mahalanobis regions of all parameters."""
    names = ("ci68", "ci95")
    covered = joint_coverage(z, truth, np.array([LEVELS[name] for name in names]))
    return {name: round(float(c), 4) for name, c in zip(names, covered, strict=True)}


def _by_name(names: list[str], values: np.ndarray) -> dict[str, float]:
    """``{name: value}`` rounded for a readable JSON file."""
    return dict(zip(names, np.round(values, 5).tolist(), strict=True))


def refuse_training_catalog(
    catalog: str | Path,
    catalog_sha256: str,
    bundle: Bundle,
    loaded: Catalog,
    *,
    allow: bool = False,
) -> str:
    """Refuse to calibrate on galaxies the model was trained on (``loaded``: the rows of
    the file ``catalog``): the same file, the same simulation run, or rows sharing the
    training galaxies' exact labels or object ids (:mod:`gampen.data.provenance`),
    whatever file or format they come in.  With ``allow``, warn instead; returns why the
    catalog holds training galaxies ('' when nothing shows it)."""
    same_file = catalog_sha256 == bundle.provenance.get("data_sha256")
    if same_file:
        why = "it is the catalog the model was trained on"
    else:
        why = training_overlap(bundle.provenance, loaded.labels, loaded.given_ids, catalog)
    if not why:
        return ""
    if allow:
        log.warning(
            "calibrating on galaxies the model was trained on (%s): the fit and the check "
            "describe galaxies it has seen, and may be too narrow for new ones",
            why,
        )
        return why
    allowed = (
        "a separate simulated or labelled set (e.g. gampen simulate --seed N), "
        "or --allow-training-galaxies to calibrate on it anyway"
    )
    if same_file:
        raise CatalogError(
            f"{catalog} is the catalog the model was trained on; calibration needs galaxies "
            "the model never saw",
            allowed=allowed,
        )
    raise CatalogError(
        f"{catalog} holds galaxies the model was trained on ({why}); calibration needs "
        "galaxies the model never saw",
        allowed=allowed,
    )


def warn_if_small(n_fit: int, n_check: int) -> None:
    """Warn when either part is too small to measure 68.27 % coverage to
    :data:`CHECK_PRECISION` (one binomial standard deviation)."""
    need = needed_galaxies(LEVELS["ci68"], CHECK_PRECISION)
    if min(n_fit, n_check) < need:
        log.warning(
            "calibration set small: %d galaxies to fit and %d to check, where measuring "
            "68.27 %% coverage to +-%g point needs %d in each part; the fitted tails and the "
            "check will be noisy (simulate more held-out galaxies)",
            n_fit,
            n_check,
            100 * CHECK_PRECISION,
            need,
        )


def split_rows(n_usable: int, check_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random fitting and checking positions among the usable galaxies."""
    n_check = round(check_fraction * n_usable)
    n_fit = n_usable - n_check
    if n_fit < 20 or n_check < 20:
        raise CatalogError(
            f"{n_usable} usable galaxies are too few to fit and check a calibration",
            value={"fit": n_fit, "check": n_check},
            allowed="at least 20 in each part (a few thousand give a good fit)",
        )
    order = np.random.default_rng(seed).permutation(n_usable)
    return np.sort(order[n_check:]), np.sort(order[:n_check])
