"""Catalog reading and writing: every format by extension, and the bad-catalog errors."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from gampen.data.catalog import (
    band_columns,
    catalog_from_directory,
    label_array,
    object_ids,
    read_catalog,
    resolve_image_dir,
    write_table,
)
from gampen.errors import CatalogError

from .fixtures import galaxy, write_fits


def _table() -> Table:
    return Table(
        {
            "object_id": np.array([10, 11, 12]),
            "file_name": ["a.fits", "b.fits", "c.fits"],
            "bt": [0.1, 0.5, 0.9],
            "r_e": [0.5, 1.0, 2.0],
            "flux": [100.0, 200.0, 300.0],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".ecsv", ".fits", ".parquet"])
def test_round_trip_every_format(tmp_path, suffix):
    path = write_table(_table(), tmp_path / f"cat{suffix}")
    back = read_catalog(path)
    assert list(back["file_name"]) == ["a.fits", "b.fits", "c.fits"]
    np.testing.assert_array_equal(back["object_id"], [10, 11, 12])
    np.testing.assert_allclose(back["r_e"], [0.5, 1.0, 2.0])
    assert back.meta["gampen_source"] == str(path)
    assert not list(tmp_path.glob(".cat*"))  # no temporary file left behind


def test_unknown_extension_is_an_error_not_csv(tmp_path):
    path = tmp_path / "cat.txt"
    path.write_text("file_name\na.fits\n")
    with pytest.raises(CatalogError, match=r"cat\.txt.*'\.txt'.*\.csv"):
        read_catalog(path)
    with pytest.raises(CatalogError, match="extension"):
        write_table(_table(), tmp_path / "out.dat")


def test_missing_catalog_file(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        read_catalog(tmp_path / "nope.csv")


def test_catalog_without_file_name(tmp_path):
    table = _table()
    table.remove_column("file_name")
    path = write_table(table, tmp_path / "cat.csv")
    with pytest.raises(CatalogError, match=r"cat\.csv: no image column.*'file_name'"):
        band_columns(read_catalog(path), None)


def test_a_multi_band_catalog_for_a_one_band_model_names_both(tmp_path):
    table = Table({"file_name_g": ["a"], "file_name_r": ["b"], "file_name_i": ["c"]})
    table.meta["gampen_source"] = "gri.fits"
    pattern = r"gri\.fits: no image column for one band; .* bands \['g', 'r', 'i'\]"
    with pytest.raises(CatalogError, match=pattern):
        band_columns(table, None)
    with pytest.raises(CatalogError, match=r"for the bands \['g', 'z'\]; .*\['g', 'r', 'i'\]"):
        band_columns(table, ["g", "z"])


def test_band_columns_prefers_per_band_files():
    table = Table({"file_name_g": ["a"], "file_name_r": ["b"], "file_name": ["c"]})
    assert band_columns(table, ["g", "r"]) == ["file_name_g", "file_name_r"]
    assert band_columns(table, None) == ["file_name"]


def test_duplicate_object_id_named(tmp_path):
    table = _table()
    table["object_id"][2] = 10
    path = write_table(table, tmp_path / "cat.ecsv")
    with pytest.raises(CatalogError, match=r"cat\.ecsv.*1 duplicate.*\[10\]"):
        object_ids(read_catalog(path))


def test_object_id_defaults_to_row_number():
    table = _table()
    table.remove_column("object_id")
    np.testing.assert_array_equal(object_ids(table), [0, 1, 2])


def test_label_missing_or_non_finite(tmp_path):
    table = _table()
    with pytest.raises(CatalogError, match=r"\['mass'\] not found"):
        label_array(table, ["bt", "mass"])
    table["r_e"][1] = np.nan
    with pytest.raises(CatalogError, match=r"'r_e' has 1 missing or non-finite.*object_id \[11\]"):
        label_array(table, ["bt", "r_e"])
    np.testing.assert_allclose(label_array(table, ["bt"])[:, 0], [0.1, 0.5, 0.9])


def test_masked_label_is_missing(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text("file_name,bt\na.fits,0.2\nb.fits,\n")
    with pytest.raises(CatalogError, match="'bt' has 1 missing"):
        label_array(read_catalog(path), ["bt"])


def test_image_dir_resolution(tmp_path):
    table = _table()
    cat = write_table(table, tmp_path / "cat.csv")
    assert resolve_image_dir(table, cat) == tmp_path  # nothing exists: the catalog folder
    write_fits(tmp_path / "cutouts" / "a.fits", galaxy())
    assert resolve_image_dir(table, cat) == tmp_path / "cutouts"
    assert resolve_image_dir(table, cat, tmp_path) == tmp_path  # explicit wins
    with pytest.raises(CatalogError, match="image directory not found"):
        resolve_image_dir(table, cat, tmp_path / "nowhere")


def test_catalog_from_directory(tmp_path):
    for name in ["b.fits", "a.fits"]:
        write_fits(tmp_path / name, galaxy())
    (tmp_path / "notes.txt").write_text("x")
    table = catalog_from_directory(tmp_path)
    assert list(table["file_name"]) == ["a.fits", "b.fits"]
    assert list(table["object_id"]) == ["a", "b"]
    with pytest.raises(CatalogError, match="no FITS images"):
        catalog_from_directory(_empty(tmp_path))


def _empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder
