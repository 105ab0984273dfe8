"""Accuracy of the point estimates (posterior median and mode) against the truth.

Bounded fractions such as bt are judged by absolute errors: the mean absolute error and
the bias (mean error).  Positive scales such as r_e and flux are judged by fractional
errors ``(estimate - truth) / truth``: the median absolute fractional error, the bias
(median fractional error) and the outlier fraction (|fractional error| > 0.5).  Both
also per subset (:mod:`gampen.evaluation.conditional`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gampen.evaluation.conditional import Subset, relative
from gampen.evaluation.inputs import Matched, floats

#: The point estimates judged.
ESTIMATORS: tuple[str, ...] = ("median", "mode")
#: |fractional error| above which an estimate counts as an outlier.
OUTLIER_THRESHOLD = 0.5


def errors(matched: Matched, param: str, estimator: str) -> np.ndarray:
    """Per-galaxy error of one estimate: fractional for log-scaled parameters, else absolute."""
    true = floats(matched.truth[param])
    estimate = matched.column(f"{param}_{estimator}")
    if relative(param):
        with np.errstate(invalid="ignore", divide="ignore"):
            return (estimate - true) / true
    return estimate - true


def error_metrics(error: np.ndarray, *, fractional: bool) -> dict[str, float]:
    """The summary numbers of a set of errors (NaN errors ignored; NaN when none)."""
    e = np.asarray(error, dtype=float)
    e = e[np.isfinite(e)]
    nan = float("nan")
    if fractional:
        return {
            "n": int(e.size),
            "median_abs_fractional_error": float(np.median(np.abs(e))) if e.size else nan,
            "bias": float(np.median(e)) if e.size else nan,
            "outlier_fraction": float(np.mean(np.abs(e) > OUTLIER_THRESHOLD)) if e.size else nan,
        }
    return {
        "n": int(e.size),
        "mean_abs_error": float(np.mean(np.abs(e))) if e.size else nan,
        "bias": float(np.mean(e)) if e.size else nan,
    }


def accuracy(matched: Matched) -> dict[str, dict[str, dict[str, float]]]:
    """``{param: {median: {...}, mode: {...}}}`` over every matched galaxy."""
    return {
        p: {
            est: error_metrics(errors(matched, p, est), fractional=relative(p))
            for est in _available(matched, p)
        }
        for p in matched.params
    }


def binned_accuracy(matched: Matched, parts: Sequence[Subset]) -> dict[str, list[dict[str, Any]]]:
    """The same numbers per subset: ``{split: [{label, n, params: {...}}, ...]}``."""
    all_errors = {
        p: {est: errors(matched, p, est) for est in _available(matched, p)} for p in matched.params
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        params = part.params or tuple(matched.params)
        entry = {
            "label": part.label,
            "n": int(part.mask.sum()),
            "params": {
                p: {
                    est: error_metrics(e[part.mask], fractional=relative(p))
                    for est, e in all_errors[p].items()
                }
                for p in params
            },
        }
        out.setdefault(part.split, []).append(entry)
    return out


def _available(matched: Matched, param: str) -> list[str]:
    """The estimators the predictions table holds for ``param``."""
    return [e for e in ESTIMATORS if f"{param}_{e}" in matched.predictions.colnames]
