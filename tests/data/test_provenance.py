"""Training-set marks: the same galaxies are recognised in any file, format or subset, and
galaxies drawn anew never are."""

from __future__ import annotations

import json

import numpy as np
from astropy.table import Table

from gampen.data.provenance import (
    SAMPLE_EVERY,
    earlier_marks,
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
    marks = training_marks(labels, np.asarray(table["object_id"]), None)
    rows = marks["training_rows"]
    # about one in SAMPLE_EVERY rows, 4 bytes each, base64
    assert 0.5 < len(rows["labels"]) * 3 / 4 / 4 / (4000 / SAMPLE_EVERY) < 1.5
    subset = table[1000:1250]
    subset.write(tmp_path / "subset.parquet")
    back = Table.read(tmp_path / "subset.parquet")
    back_labels = np.stack([np.asarray(back[c], dtype=float) for c in ("bt", "r_e", "flux")], 1)
    why = training_overlap(marks, back_labels, np.asarray(back["object_id"]), None)
    assert "labels of training galaxies" in why and "object_ids" in why
    fresh = _labels(1, 3000)
    assert training_overlap(marks, fresh, np.arange(10_000, 13_000), None) == ""
    # the probability that 40 training galaxies escape the sample is (7/8)^40 < 0.5 %
    caught = sum(
        shared(rows["labels"], row_hashes(labels[i : i + 40])) > 0 for i in range(0, 4000, 40)
    )
    assert caught >= 97


def test_row_numbers_are_not_taken_for_galaxy_ids():
    labels = _labels(0, 800)
    marks = training_marks(labels, np.arange(5, 805), None)
    assert "object_ids" not in marks["training_rows"]
    assert "object_ids" not in training_marks(labels, None, None)["training_rows"]  # no column
    other = _labels(2, 800)  # another set numbered the same way is not the training set
    assert training_overlap(marks, other, np.arange(5, 805), None) == ""


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
    marks = training_marks(np.zeros((0, 3)), None, tmp_path / "train" / "info.csv")
    assert marks["simulation"]["seed"] == 3 and marks["simulation"]["preset"] == "hsc"
    assert "object_ids" not in marks["training_rows"]
    empty = (None, None)
    assert "training set's seed (3)" in training_overlap(marks, *empty, tmp_path / "same" / "x.csv")
    assert training_overlap(marks, *empty, tmp_path / "other" / "x.csv") == ""
    assert simulation_of(tmp_path / "nowhere" / "info.csv") is None


def test_the_marks_are_pinned_to_their_definitions(tmp_path):
    """Bundles store these hashes: a change of definition would silently stop matching the
    training galaxies of every bundle already made."""
    import base64
    import hashlib

    row = np.array([[0.25, 1.5, 1000.0]])
    digest = hashlib.blake2b(np.asarray(row[0], dtype="<f8").tobytes(), digest_size=8).digest()
    assert row_hashes(row)[0] == int.from_bytes(digest, "little")
    assert row_hashes(row.astype(np.float32).astype(np.float64))[0] == row_hashes(row)[0]
    from gampen.data.provenance import id_hashes

    text_id = hashlib.blake2b(b"12345", digest_size=8).digest()
    assert id_hashes(np.array([12345]))[0] == int.from_bytes(text_id, "little")
    assert id_hashes(np.array([b"12345"]))[0] == id_hashes(np.array(["12345"]))[0]
    hashes = np.array([8 << 32, (9 << 32) + 8, 5], dtype=np.uint64)
    assert base64.b64decode(fingerprint(hashes)) == np.array([8, 9], dtype="<u4").tobytes()
    config = {"b": 1, "a": [1, 2]}
    (tmp_path / "simulate.json").write_text(json.dumps({"seed": 5, "config": config}))
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    found = simulation_of(tmp_path)  # the folder itself, or a file in it
    assert found == simulation_of(tmp_path / "info.csv")
    assert found == {
        "seed": 5,
        "preset": "",
        "config_sha256": hashlib.sha256(canonical).hexdigest(),
    }
    marks = training_marks(row, np.array([10, 30]), None)
    assert (
        marks["training_rows"]["every"] == SAMPLE_EVERY and "object_ids" in marks["training_rows"]
    )


def test_row_numbers_need_consecutive_integers():
    from gampen.data.provenance import _row_numbers

    assert _row_numbers(np.arange(3, 9)) and _row_numbers(np.array([7]))
    assert not _row_numbers(np.array([1, 3, 5]))
    assert not _row_numbers(np.array(["0", "1"])) and not _row_numbers(np.array([], dtype=int))


def test_overlap_needs_both_runs_and_reports_both_reasons():
    labels = _labels(3, 400)
    ids = 10**12 + np.arange(0, 800, 2)
    marks = training_marks(labels, ids, None)
    why = training_overlap(marks, labels, ids, None)
    assert why.count("; ") == 1 and why.startswith(
        f"{shared(marks['training_rows']['labels'], row_hashes(labels))} of"
    )
    assert training_overlap(marks, None, ids, None).endswith("training galaxies'")
    assert training_overlap({}, labels, ids, None) == ""
    # must fail to match by id: a catalog without an object_id column has none
    assert training_overlap(marks, None, None, None) == ""


def test_earlier_marks_keep_every_stage_and_nothing_else():
    first = {
        "training_rows": {"every": 8, "labels": "AAAA"},
        "simulation": {"seed": 3, "preset": "hsc", "config_sha256": "ab"},
        "data": "info.csv",
        "training_seconds": 12.0,
    }
    assert earlier_marks(first) == [
        {"training_rows": first["training_rows"], "simulation": first["simulation"]}
    ]
    second = {"training_rows": {"every": 8, "labels": "BBBB"}, "earlier": earlier_marks(first)}
    third_earlier = earlier_marks(second)  # newest stage first, then the ones before it
    assert third_earlier == [
        {"training_rows": {"every": 8, "labels": "BBBB"}},
        {"training_rows": first["training_rows"], "simulation": first["simulation"]},
    ]
    # a bundle without marks (older, or made by hand) adds no empty stage
    assert earlier_marks({"data": "x.csv"}) == []
    assert earlier_marks({"earlier": [{"training_rows": {"labels": ""}}]}) == [
        {"training_rows": {"labels": ""}}
    ]


def _stage(seed: int, n: int = 800) -> tuple[np.ndarray, np.ndarray, dict]:
    """A labelled catalog's labels and survey ids (not row numbers), and its training marks."""
    labels = _labels(seed, n)
    ids = 10**14 + seed * 10**6 + 3 * np.arange(n)
    return labels, ids, training_marks(labels, ids, None)


def test_overlap_is_found_in_every_earlier_stage(tmp_path):
    """A model fine-tuned twice refuses the galaxies of each stage; dropping ``earlier``
    (what the provenance held before) lets the first stages' galaxies through."""
    labels1, ids1, marks1 = _stage(11)
    labels2, ids2, marks2 = _stage(12)
    _, _, marks3 = _stage(13)
    second = {**marks2, "earlier": earlier_marks(marks1)}
    third = {**marks3, "earlier": earlier_marks(second)}
    part = slice(100, 300)  # a subset of the first stage's galaxies, in another table
    for model in (second, third):
        why = training_overlap(model, labels1[part], ids1[part], None)
        expected = shared(marks1["training_rows"]["labels"], row_hashes(labels1[part]))
        assert expected > 0 and why.startswith(f"{expected} of its sampled rows")
    assert training_overlap(third, labels2, ids2, None) != ""
    # must fail: without ``earlier`` only the last stage is seen
    last_only = {key: value for key, value in third.items() if key != "earlier"}
    assert training_overlap(last_only, labels1[part], ids1[part], None) == ""
    fresh_labels, fresh_ids, _ = _stage(14)
    assert training_overlap(third, fresh_labels, fresh_ids, None) == ""
    # an earlier stage's simulation run is recognised too
    config = {"name": "hsc", "survey": {"pixel_scale": 0.168}}
    for name, seed in (("train", 3), ("again", 3)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "simulate.json").write_text(json.dumps({"seed": seed, "config": config}))
    simulated = training_marks(np.zeros((0, 3)), None, tmp_path / "train")
    tuned = {**marks2, "earlier": earlier_marks(simulated)}
    empty = (None, None)
    assert "training set's seed (3)" in training_overlap(tuned, *empty, tmp_path / "again")
    assert training_overlap(marks2, *empty, tmp_path / "again") == ""
