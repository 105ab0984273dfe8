"""Where a catalog's galaxies come from, so a model is never calibrated on what it trained on.

Two marks travel in a bundle's ``provenance`` and are compared with a calibration catalog:

* ``training_rows``: a fixed eighth of the training galaxies, each as a 32-bit hash of its
  exact label values (and of its ``object_id``, unless the ids are consecutive integers,
  i.e. row numbers that any other catalog may reuse, as simulations' are).
  The same galaxies in another file, another format, a subset or re-simulated from the
  same seed hash the same; galaxies drawn anew never do (labels are continuous).  A
  catalog sharing even one sampled hash shares training galaxies: with one eighth sampled,
  a subset of 40 training galaxies is caught with probability 1 - (7/8)^40 > 99.5 %.
* ``simulation``: the seed and the configuration of the ``gampen simulate`` run that made
  the training catalog (its ``simulate.json``); a calibration catalog from the same seed
  and configuration holds the training galaxies again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

#: One in this many training galaxies is kept in the fingerprint.
SAMPLE_EVERY = 8
#: The file ``gampen simulate`` writes beside its ``info.csv``.
SIMULATION_FILE = "simulate.json"


def row_hashes(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash (uint64) of each row of a float64 (n, k) array, from its exact bytes."""
    rows = np.ascontiguousarray(np.asarray(values, dtype="<f8"))
    out = np.empty(len(rows), dtype=np.uint64)
    for i, row in enumerate(rows):
        out[i] = int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
    return out


def id_hashes(ids: np.ndarray) -> np.ndarray:
    """A 64-bit hash (uint64) of each ``object_id``, from its text (so 7 and "7" agree)."""
    out = np.empty(len(ids), dtype=np.uint64)
    for i, value in enumerate(np.asarray(ids).tolist()):
        text = value.decode() if isinstance(value, bytes) else str(value)
        out[i] = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return out


def fingerprint(hashes: np.ndarray) -> str:
    """The sampled eighth of ``hashes`` (those divisible by :data:`SAMPLE_EVERY`), cut to
    32 bits, sorted and base64-encoded: about 2.7 bytes per training galaxy."""
    kept = np.unique((hashes[hashes % SAMPLE_EVERY == 0] >> np.uint64(32)).astype("<u4"))
    return base64.b64encode(kept.tobytes()).decode("ascii")


def shared(fingerprint_text: str, hashes: np.ndarray) -> int:
    """How many of ``hashes`` fall in a :func:`fingerprint` (each one a shared galaxy)."""
    kept = np.frombuffer(base64.b64decode(fingerprint_text), dtype="<u4")
    candidates = hashes[hashes % SAMPLE_EVERY == 0] >> np.uint64(32)
    return int(np.isin(candidates.astype("<u4"), kept).sum())


def training_marks(
    labels: np.ndarray, ids: np.ndarray | None, catalog: str | os.PathLike[str] | None
) -> dict[str, Any]:
    """The ``provenance`` entries that identify a training catalog: ``training_rows``
    (label hashes, and hashes of the ``object_id`` values ``ids`` unless the catalog has
    none or they are row numbers) and ``simulation`` (seed and configuration of its
    ``gampen simulate`` run)."""
    simulation = simulation_of(catalog)
    rows: dict[str, Any] = {"every": SAMPLE_EVERY, "labels": fingerprint(row_hashes(labels))}
    if ids is not None and not _row_numbers(ids):
        rows["object_ids"] = fingerprint(id_hashes(ids))
    marks: dict[str, Any] = {"training_rows": rows}
    if simulation is not None:
        marks["simulation"] = simulation
    return marks


def earlier_marks(provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """The training marks of a bundle a model was fine-tuned from, with its own earlier
    ones: a list, one entry per training stage, newest first."""
    marks = {key: provenance[key] for key in ("training_rows", "simulation") if key in provenance}
    return [marks] * bool(marks) + list(provenance.get("earlier", []))


def _row_numbers(ids: np.ndarray) -> bool:
    """True for integer ids that are consecutive (0..n-1 or any shifted run): row
    numbers, which say nothing about which galaxy a row is."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu" or ids.size == 0:
        return False
    return int(ids.max()) - int(ids.min()) + 1 == ids.size


def simulation_of(catalog: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """Seed, preset name and configuration digest of the ``gampen simulate`` run that
    wrote ``catalog`` (its folder's ``simulate.json``), or ``None``."""
    if catalog is None:
        return None
    path = Path(catalog)
    settings = (path if path.is_dir() else path.parent) / SIMULATION_FILE
    try:
        data = json.loads(settings.read_text())
        config = data["config"]
        text = json.dumps(config, sort_keys=True, separators=(",", ":"))
        return {
            "seed": int(data["seed"]),
            "preset": str(config.get("name", "")),
            "config_sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def training_overlap(
    provenance: dict[str, Any],
    labels: np.ndarray | None,
    ids: np.ndarray | None,
    catalog: str | os.PathLike[str] | None,
) -> str:
    """Why a catalog (its ``labels``, its ``object_id`` values ``ids`` (None: it has no
    such column), its file ``catalog``) holds galaxies the model was trained on ('' when
    nothing shows it): the same simulation run, or shared sampled label or id hashes, in
    its last training stage or an earlier one it was fine-tuned from."""
    for stage in (provenance, *provenance.get("earlier", [])):
        why = _stage_overlap(stage, labels, ids, catalog)
        if why:
            return why
    return ""


def _stage_overlap(
    provenance: dict[str, Any],
    labels: np.ndarray | None,
    ids: np.ndarray | None,
    catalog: str | os.PathLike[str] | None,
) -> str:
    """:func:`training_overlap` for one training stage's marks."""
    ours, theirs = simulation_of(catalog), provenance.get("simulation")
    if ours is not None and theirs is not None:
        same = ours["seed"] == theirs["seed"] and ours["config_sha256"] == theirs["config_sha256"]
        if same:
            return (
                f"it was simulated with the training set's seed ({ours['seed']}) and "
                f"configuration (preset {ours['preset']!r}), so it repeats its galaxies"
            )
    rows = provenance.get("training_rows") or {}
    reasons = []
    if labels is not None and "labels" in rows:
        n = shared(rows["labels"], row_hashes(labels))
        if n:
            reasons.append(f"{n} of its sampled rows have exactly the labels of training galaxies")
    if "object_ids" in rows and ids is not None:
        n = shared(rows["object_ids"], id_hashes(ids))
        if n:
            reasons.append(f"{n} of its sampled object_ids are training galaxies'")
    return "; ".join(reasons)
