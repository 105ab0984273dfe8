"""Per-galaxy calibration evidence, computed once and summarised for any subset of galaxies.

Every coverage number of ``gampen evaluate`` derives from four per-galaxy quantities:
whether the truth lies in each of the table's intervals, the marginal PIT of each
parameter, and the joint Mahalanobis and TARP rank fractions (the last three need
samples).  Collecting them streams the samples once; summarising a subset is a mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from gampen.calibration import ranks
from gampen.data.labels import LOGIT_EPS
from gampen.evaluation import joint, marginal
from gampen.evaluation.inputs import Matched, sample_blocks
from gampen.infer.summary import LEVELS

#: Fewest samples per galaxy for the joint tests (a k x k covariance needs more than k).
MIN_JOINT_SAMPLES = 10


@dataclass
class Evidence:
    """What each galaxy says about calibration; arrays are row for row with the matched table."""

    params: list[str]
    #: ``{param: {ci68: bool (n,), ci95: ..., ci99: ...}}``: truth inside the table's intervals.
    hits: dict[str, dict[str, np.ndarray]]
    #: Randomised PIT (n, k), or None without samples.
    pit: np.ndarray | None = None
    #: Mahalanobis rank fraction (n,), or None.
    mahalanobis: np.ndarray | None = None
    #: TARP rank fraction (n,), or None.
    tarp: np.ndarray | None = None

    def __len__(self) -> int:
        return len(next(iter(next(iter(self.hits.values())).values())))

    def subset(self, mask: np.ndarray) -> Evidence:
        """The evidence of the galaxies where ``mask`` is true."""
        return Evidence(
            params=self.params,
            hits={p: {name: h[mask] for name, h in lv.items()} for p, lv in self.hits.items()},
            pit=None if self.pit is None else self.pit[mask],
            mahalanobis=None if self.mahalanobis is None else self.mahalanobis[mask],
            tarp=None if self.tarp is None else self.tarp[mask],
        )

    def marginal_curve(self, param: str) -> marginal.CoverageCurve:
        """The coverage curve of one parameter: from the PIT if known, else the table."""
        if self.pit is not None:
            return marginal.curve_from_pit(self.pit[:, self.params.index(param)])
        return marginal.curve_from_hits(self.hits[param])


def collect(
    matched: Matched,
    *,
    rng: np.random.Generator,
    progress: bool = True,
    block: int = 256,
    eps: float = LOGIT_EPS,
) -> Evidence:
    """Interval hits from the table and, with samples, the PIT and joint rank fractions
    (in the joint space whose bt logit has epsilon ``eps``, the model's own)."""
    truth = matched.true_values()
    hits = {
        p: marginal.interval_hits(matched.predictions, truth[:, j], p)
        for j, p in enumerate(matched.params)
    }
    evidence = Evidence(params=list(matched.params), hits=hits)
    if matched.samples_path is None:
        return evidence
    n, k = truth.shape
    evidence.pit = np.full((n, k), np.nan)
    evidence.mahalanobis = np.full(n, np.nan)
    evidence.tarp = np.full(n, np.nan)
    unbounded_truth = joint.to_unbounded(truth, matched.params, eps=eps)
    frame = joint.TarpFrame.draw(unbounded_truth, rng=rng)
    bar = tqdm(total=n, unit="gal", desc="calibration", disable=not progress)
    for rows, samples in sample_blocks(matched, block=block):
        evidence.pit[rows] = ranks.randomised_pit(samples, truth[rows], rng=rng)
        if samples.shape[1] >= MIN_JOINT_SAMPLES:
            x = joint.to_unbounded(samples, matched.params, eps=eps)
            t = unbounded_truth[rows]
            evidence.mahalanobis[rows] = ranks.mahalanobis_fraction(x, t, rng=rng)
            evidence.tarp[rows] = joint.tarp_fraction(x, t, frame.rows(rows), rng=rng)
        bar.update(len(samples))
    bar.close()
    return evidence


def summarise(evidence: Evidence, *, curves: bool) -> dict[str, Any]:
    """Coverage numbers of a set of galaxies; full curves only when ``curves``."""
    out: dict[str, Any] = {"n": len(evidence), "params": {}}
    for p in evidence.params:
        curve = evidence.marginal_curve(p)
        entry: dict[str, Any] = {
            "intervals": _intervals(evidence.hits[p]),
            "max_abs_deviation": curve.max_abs_deviation,
            "curve_source": "samples" if evidence.pit is not None else "table intervals",
        }
        if evidence.pit is not None:
            entry["pit_intervals"] = _pit_intervals(evidence.pit[:, evidence.params.index(p)])
        if curves:
            entry["curve"] = curve.to_dict()
        out["params"][p] = entry
    if evidence.mahalanobis is not None and np.isfinite(evidence.mahalanobis).any():
        out["joint"] = _joint(evidence, curves=curves)
    return out


def _intervals(hits: dict[str, np.ndarray]) -> dict[str, Any]:
    """Coverage of the table's intervals with the band a calibrated model would meet."""
    n = len(next(iter(hits.values())))
    return {
        name: _cell(LEVELS[name], float(np.mean(h)) if n else float("nan"), n)
        for name, h in hits.items()
    }


def _pit_intervals(pit: np.ndarray) -> dict[str, Any]:
    """Coverage of the samples' central intervals at the table's levels, from the PIT."""
    n = int(np.isfinite(pit).sum())
    coverage = marginal.coverage_from_pit(pit, np.array(list(LEVELS.values())))
    return {
        name: _cell(level, float(value), n)
        for (name, level), value in zip(LEVELS.items(), coverage, strict=True)
    }


def _cell(level: float, empirical: float, n: int) -> dict[str, Any]:
    """One coverage of ``n`` galaxies, the 95 % binomial band of a calibrated model, and
    whether the coverage lies outside it (the defect to look at)."""
    lo, hi = marginal.binomial_band(np.array([level]), n)
    band = [float(lo[0]), float(hi[0])]
    outside = n > 0 and not band[0] <= empirical <= band[1]
    return {"nominal": level, "empirical": empirical, "band": band, "outside_band": outside}


def _joint(evidence: Evidence, *, curves: bool) -> dict[str, Any]:
    """Mahalanobis-region and TARP coverage (the named levels, the largest deviation)."""
    out: dict[str, Any] = {}
    for name, fraction in (("mahalanobis", evidence.mahalanobis), ("tarp", evidence.tarp)):
        curve = joint.curve_below(fraction)
        out[name] = {
            "n": curve.n,
            "coverage": joint.reported(curve),
            "max_abs_deviation": curve.max_abs_deviation,
        }
        if curves:
            out[name]["curve"] = curve.to_dict()
    return out
