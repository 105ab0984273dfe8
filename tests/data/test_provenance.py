"""Training-set marks: the same galaxies are recognised in any file, format or subset, and
galaxies drawn anew never are."""

from __future__ import annotations

import json

import numpy as np
from astropy.table import Table

from gampen.data.provenance import (
    SAMPLE_EVERY,
    fingerprint,
    row_hashes,
    shared,
    simulation_of,
    training_marks,
    training_overlap,
)


def _labels(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(0, 1, n), rng.lognormal(0, 1, n), rng.lognormal(6, 1, n)], 1)


def test_a_subset_in_another_format_is_recognised_and_fresh_galaxies_are_not(tmp_path):
    labels = _labels(0, 4000)
    ids = 10**15 + 7 * np.arange(4000)  # survey ids, not row numbers
    table = Table({"object_id": ids, "bt": labels[:, 0], "r_e": labels[:, 1]})
    table["flux"] = labels[:, 2]
    marks = training_marks(table, labels, np.asarray(table["object_id"]), None)
    rows = marks["training_rows"]
    # about one in SAMPLE_EVERY rows, 4 bytes each, base64
    assert 0.5 < len(rows["labels"]) * 3 / 4 / 4 / (4000 / SAMPLE_EVERY) < 1.5
    subset = table[1000:1250]
    subset.write(tmp_path / "subset.parquet")
    back = Table.read(tmp_path / "subset.parquet")
    back_labels = np.stack([np.asarray(back[c], dtype=float) for c in ("bt", "r_e", "flux")], 1)
    why = training_overlap(marks, back, back_labels, np.asarray(back["object_id"]), None)
    assert "labels of training galaxies" in why and "object_ids" in why
    fresh = _labels(1, 3000)
    fresh_table = Table({"object_id": np.arange(10_000, 13_000)})
    assert training_overlap(marks, fresh_table, fresh, np.arange(10_000, 13_000), None) == ""
    # the probability that 40 training galaxies escape the sample is (7/8)^40 < 0.5 %
    caught = sum(
        shared(rows["labels"], row_hashes(labels[i : i + 40])) > 0 for i in range(0, 4000, 40)
    )
    assert caught >= 97


def test_row_numbers_are_not_taken_for_galaxy_ids():
    labels = _labels(0, 800)
    table = Table({"object_id": np.arange(5, 805)})
    marks = training_marks(table, labels, np.arange(5, 805), None)
    assert "object_ids" not in marks["training_rows"]
    other = _labels(2, 800)  # another set numbered the same way is not the training set
    assert training_overlap(marks, table, other, np.arange(5, 805), None) == ""


def test_shared_counts_the_sampled_hashes_exactly():
    hashes = np.arange(0, 800, dtype=np.uint64) << np.uint64(32)  # low bits 0: all sampled
    text = fingerprint(hashes[:400])
    assert shared(text, hashes[200:600]) == 200
    assert shared(text, hashes[400:]) == 0


def test_a_simulation_with_the_training_seed_and_config_is_recognised(tmp_path):
    config = {"name": "hsc", "survey": {"pixel_scale": 0.168}}
    for name, seed in (("train", 3), ("same", 3), ("other", 4)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "simulate.json").write_text(json.dumps({"seed": seed, "config": config}))
    marks = training_marks(Table(), np.zeros((0, 3)), np.array([]), tmp_path / "train" / "info.csv")
    assert marks["simulation"]["seed"] == 3 and marks["simulation"]["preset"] == "hsc"
    assert "object_ids" not in marks["training_rows"]
    empty = (Table(), None, np.array([]))
    assert "training set's seed (3)" in training_overlap(marks, *empty, tmp_path / "same" / "x.csv")
    assert training_overlap(marks, *empty, tmp_path / "other" / "x.csv") == ""
    assert simulation_of(tmp_path / "nowhere" / "info.csv") is None
