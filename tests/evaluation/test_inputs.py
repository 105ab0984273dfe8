"""Matching predictions, truth and samples by object_id; what is left out, and bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from astropy.table import Table

from gampen.errors import CatalogError
from gampen.evaluation.inputs import load_inputs, sample_blocks, samples_of

LEVEL_COLUMNS = [f"ci{n}_{end}" for n in (68, 95, 99) for end in ("lo", "hi")]


def _predictions(ids, values):
    """A predictions table for params r_e and bt (and the derived mag) with given medians."""
    table = Table({"object_id": ids, "flags": np.zeros(len(ids), dtype=np.int64)})
    for p in ("r_e", "bt", "mag"):
        table[f"{p}_median"] = np.asarray(values, dtype=float)
        for c in LEVEL_COLUMNS:
            table[f"{p}_{c}"] = np.asarray(values, dtype=float)
    return table


def _samples_file(path, ids, names=("bt", "r_e")):
    """Samples whose every value is 1000 * column + object_id, rows in the order of ``ids``."""
    ids = np.asarray(ids)
    values = np.stack([1000 * j + ids for j in range(len(names))], -1)[:, None, :]
    with h5py.File(path, "w") as h5:
        h5["samples"] = np.repeat(values, 4, axis=1).astype(np.float32)
        h5["object_id"] = ids
        h5.create_dataset("param_names", data=list(names), dtype=h5py.string_dtype())
    return path


@pytest.fixture
def tables():
    ids = np.arange(10)
    predictions = _predictions(ids[::-1].copy(), np.arange(10.0))
    truth = Table({"object_id": ids, "bt": np.full(10, 0.5), "r_e": np.full(10, 1.0)})
    return predictions, truth


def test_rows_match_by_id_and_samples_follow_in_matched_order(tmp_path, tables):
    predictions, truth = tables
    order = [3, 9, 0, 1, 2, 8, 4, 5, 6, 7]
    path = _samples_file(tmp_path / "s.h5", order, names=("flux", "r_e", "bt"))
    m = load_inputs(predictions, truth, samples=path)
    assert m.params == ["r_e", "bt"]  # sampled and true; flux has no truth, mag is derived
    assert m.sample_columns == [1, 2]
    np.testing.assert_array_equal(m.truth["object_id"], m.predictions["object_id"])
    blocks = list(sample_blocks(m, block=3))
    assert [b[0] for b in blocks][:2] == [slice(0, 3), slice(3, 6)]
    samples = np.concatenate([b[1] for b in blocks])
    ids = np.asarray(m.predictions["object_id"])
    np.testing.assert_array_equal(samples[:, 0, 0], 1000 + ids)
    np.testing.assert_array_equal(samples[:, 0, 1], 2000 + ids)
    np.testing.assert_array_equal(samples_of(m, np.array([4, 1]))[:, 0, 1], 2000 + ids[[4, 1]])


def test_unusable_rows_are_left_out_and_counted_by_reason(tmp_path, tables):
    predictions, truth = tables
    predictions["object_id"][0] = 99  # not in the truth
    predictions["flags"][1] = 1  # unreadable: fatal
    predictions["flags"][2] = 2  # NaN pixels replaced: not fatal
    predictions["r_e_median"][3] = np.nan
    truth["bt"][predictions["object_id"][4]] = np.nan
    path = _samples_file(
        tmp_path / "s.h5", [i for i in range(10) if i != predictions["object_id"][5]]
    )
    m = load_inputs(predictions, truth, samples=path)
    assert m.dropped == {
        "not_in_truth": 1,
        "fatal_flag": 1,
        "nan_estimate": 1,
        "nan_truth": 1,
        "not_in_samples": 1,
    }
    assert len(m) == 5 and len(m.sample_rows) == 5


def test_string_and_integer_ids_match(tables):
    predictions, truth = tables
    truth["object_id"] = np.array([f" {i}" for i in range(10)])
    assert len(load_inputs(predictions, truth)) == 10


def test_bad_inputs_raise_clear_errors(tmp_path, tables):
    predictions, truth = tables
    with pytest.raises(CatalogError, match="no 'object_id' column"):
        load_inputs(predictions[["flags", "r_e_median"]], truth)
    duplicated = truth.copy()
    duplicated["object_id"][1] = 0
    with pytest.raises(CatalogError, match="duplicate"):
        load_inputs(predictions, duplicated)
    spaced = Table({"object_id": ["7", " 7"], "bt": [0.1, 0.2], "r_e": [1.0, 2.0]})
    with pytest.raises(CatalogError, match=r"given astropy Table: column 'object_id' has 1 dup"):
        load_inputs(predictions, spaced)  # equal once compared as text
    with pytest.raises(CatalogError, match="share no parameter"):
        load_inputs(predictions, truth[["object_id"]])
    with pytest.raises(CatalogError, match="no galaxy is left"):
        load_inputs(predictions, Table({"object_id": [100], "bt": [0.1], "r_e": [1.0]}))
    with pytest.raises(CatalogError, match="samples file not found"):
        load_inputs(predictions, truth, samples=tmp_path / "missing.h5")


def test_bad_samples_files_are_refused(tmp_path, tables):
    predictions, truth = tables
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        h5["samples"] = np.zeros((10, 4, 2))
    with pytest.raises(CatalogError, match=r"lacks dataset\(s\) \['object_id', 'param_names'\]"):
        load_inputs(predictions, truth, samples=tmp_path / "a.h5")
    path = _samples_file(tmp_path / "b.h5", np.arange(10))
    with h5py.File(path, "a") as h5:
        del h5["param_names"]
        h5.create_dataset("param_names", data=["bt", "r_e", "flux"], dtype=h5py.string_dtype())
    with pytest.raises(CatalogError, match="wrong shape"):
        load_inputs(predictions, truth, samples=path)
    (tmp_path / "c.h5").write_text("not hdf5")
    with pytest.raises(CatalogError, match="cannot be read as HDF5"):
        load_inputs(predictions, truth, samples=tmp_path / "c.h5")
    plain = load_inputs(predictions, truth)
    with pytest.raises(CatalogError, match="no samples file"):
        next(sample_blocks(plain))


def test_load_inputs_reads_files_in_any_table_format(tmp_path, tables):
    predictions, truth = tables
    predictions.write(tmp_path / "p.fits")
    truth.write(tmp_path / "t.ecsv")
    m = load_inputs(tmp_path / "p.fits", tmp_path / "t.ecsv")
    assert len(m) == 10 and m.samples_path is None
    np.testing.assert_array_equal(m.true_values()[:, 0], 1.0)
    assert m.truth_source == str(tmp_path / "t.ecsv")
    np.testing.assert_array_equal(m.truth_ids, m.predictions["object_id"])
