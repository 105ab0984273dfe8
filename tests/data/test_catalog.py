"""Catalog reading and writing: every format by extension, and ``load_catalog``: what it
returns (ids, image paths, conditions, labels, kept columns, digest) and the bad-catalog
errors it raises, each naming the file, the column and the value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from gampen.data.catalog import IN_MEMORY, Catalog, load_catalog, read_catalog, write_table
from gampen.data.contract import InputContract
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


#: A model's contract: PSF FWHM in arcsec, 0.2 arcsec pixels.
CONTRACT = InputContract(
    pixel_scale=0.2, zero_point=27.0, input_size=32, condition_units={"psf_fwhm": "arcsec"}
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
        load_catalog(path)
    with pytest.raises(CatalogError, match="extension"):
        write_table(_table(), tmp_path / "out.dat")


def test_missing_catalog_file(tmp_path):
    with pytest.raises(CatalogError, match=r"not found: .*nope\.csv"):
        load_catalog(tmp_path / "nope.csv")


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".parquet"])
def test_a_catalog_file_gives_the_ids_paths_labels_and_columns_written(tmp_path, suffix):
    table = _table()
    table["ra"] = [150.0, 150.1, 150.2]
    table["note"] = ["x", "y", "z"]
    path = write_table(table, tmp_path / f"cat{suffix}")
    catalog = load_catalog(path, targets=("r_e", "bt"))
    assert isinstance(catalog, Catalog) and len(catalog) == 3
    assert catalog.source == str(path)
    assert catalog.column_names == ("object_id", "file_name", "bt", "r_e", "flux", "ra", "note")
    assert catalog.object_ids.tolist() == [10, 11, 12]
    assert catalog.object_ids.dtype.isnative and catalog.given_ids is catalog.object_ids
    assert catalog.image_dir == tmp_path
    assert catalog.paths(1) == [tmp_path / "b.fits"]
    np.testing.assert_array_equal(catalog.labels, [[0.5, 0.1], [1.0, 0.5], [2.0, 0.9]])
    assert catalog.labels.dtype == np.float64
    assert catalog.kept.colnames == ["file_name", "ra"]  # file_name and RA always travel
    np.testing.assert_array_equal(catalog.kept["ra"], [150.0, 150.1, 150.2])
    assert catalog.conditions.shape == (3, 0) and catalog.header_keys == {}


def test_a_catalog_is_frozen_and_its_arrays_read_only(tmp_path):
    catalog = load_catalog(_table(), targets=("bt",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.source = "other"  # type: ignore[misc]
    for array in (catalog.object_ids, catalog.files, catalog.labels, catalog.conditions):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = array[1]


def test_a_table_in_memory_is_named_by_where_it_was_read_from(tmp_path):
    assert load_catalog(_table()).source == IN_MEMORY
    table = _table()
    table.meta["gampen_source"] = "survey/cat.fits"
    catalog = load_catalog(table)
    assert catalog.source == "survey/cat.fits" and catalog.image_dir.as_posix() == "survey"


def test_catalog_without_file_name(tmp_path):
    table = _table()
    table.remove_column("file_name")
    path = write_table(table, tmp_path / "cat.csv")
    with pytest.raises(CatalogError, match=r"cat\.csv: no image column.*'file_name'"):
        load_catalog(path)
    assert load_catalog(path, images=False).files is None  # a truth catalog needs none


def test_a_multi_band_catalog_for_a_one_band_model_names_both(tmp_path):
    table = Table({"file_name_g": ["a"], "file_name_r": ["b"], "file_name_i": ["c"]})
    table.meta["gampen_source"] = "gri.fits"
    pattern = r"gri\.fits: no image column for one band; .* bands \['g', 'r', 'i'\]"
    with pytest.raises(CatalogError, match=pattern):
        load_catalog(table)
    with pytest.raises(CatalogError, match=r"for the bands \['g', 'z'\]; .*\['g', 'r', 'i'\]"):
        load_catalog(table, bands=["g", "z"])


def test_per_band_files_are_preferred(tmp_path):
    table = Table({"file_name_g": ["a_g"], "file_name_r": ["a_r"], "file_name": ["c"]})
    per_band = load_catalog(table, image_dir=tmp_path, bands=["g", "r"])
    assert per_band.paths(0) == [tmp_path / "a_g", tmp_path / "a_r"]
    assert per_band.kept["file_name"][0] == "c"  # the output's file_name, as in the catalog
    assert load_catalog(table, image_dir=tmp_path).paths(0) == [tmp_path / "c"]


def test_non_ascii_file_names_survive(tmp_path):
    table = Table({"object_id": [1], "file_name": ["galaxie-é.fits"]})
    assert load_catalog(table, image_dir=tmp_path).paths(0) == [tmp_path / "galaxie-é.fits"]


def test_duplicate_object_id_named(tmp_path):
    table = _table()
    table["object_id"][2] = 10
    path = write_table(table, tmp_path / "cat.ecsv")
    pattern = r"cat\.ecsv: column 'object_id' has 1 duplicate.*\[10\]"
    with pytest.raises(CatalogError, match=pattern):
        load_catalog(path)


def test_empty_object_ids_are_refused(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text("object_id,file_name\n1,a.fits\n,b.fits\n")
    with pytest.raises(CatalogError, match=r"cat\.csv: column 'object_id' has empty values"):
        load_catalog(path)


def test_big_endian_fits_ids_come_back_native(tmp_path):
    table = _table()
    table["object_id"] = np.array([7, 8, 9], dtype=">i8")
    catalog = load_catalog(write_table(table, tmp_path / "cat.fits"))
    assert catalog.object_ids.dtype == np.dtype("<i8") and catalog.object_ids.tolist() == [7, 8, 9]


def test_object_id_defaults_to_row_number():
    table = _table()
    table.remove_column("object_id")
    catalog = load_catalog(table)
    np.testing.assert_array_equal(catalog.object_ids, [0, 1, 2])
    assert catalog.given_ids is None


def test_labels_missing_or_non_finite(tmp_path):
    table = _table()
    assert load_catalog(table, targets=("bt", "mass")).labels is None  # the caller says why
    table["r_e"][1] = np.nan
    table.meta["gampen_source"] = "cat.fits"
    pattern = r"cat\.fits: label column 'r_e' has 1 missing or non-finite.*object_id \[11\]"
    with pytest.raises(CatalogError, match=pattern):
        load_catalog(table, targets=("bt", "r_e"))
    np.testing.assert_allclose(load_catalog(table, targets=("bt",)).labels[:, 0], [0.1, 0.5, 0.9])


def test_masked_label_is_missing(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text("file_name,bt\na.fits,0.2\nb.fits,\n")
    with pytest.raises(CatalogError, match=r"cat\.csv: label column 'bt' has 1 missing.*\[1\]"):
        load_catalog(path, targets=("bt",))


def test_image_dir_resolution(tmp_path):
    cat = write_table(_table(), tmp_path / "cat.csv")
    assert load_catalog(cat).image_dir == tmp_path  # nothing exists: the catalog folder
    write_fits(tmp_path / "cutouts" / "a.fits", galaxy())
    assert load_catalog(cat).image_dir == tmp_path / "cutouts"
    assert load_catalog(cat).paths(2) == [tmp_path / "cutouts" / "c.fits"]
    assert load_catalog(cat, image_dir=tmp_path).image_dir == tmp_path  # explicit wins
    with pytest.raises(CatalogError, match=r"image directory not found: .*nowhere"):
        load_catalog(cat, image_dir=tmp_path / "nowhere")


def test_a_folder_of_fits_files_is_a_catalog(tmp_path):
    for name in ["b.fits", "a.fits"]:
        write_fits(tmp_path / name, galaxy())
    (tmp_path / "notes.txt").write_text("x")
    catalog = load_catalog(tmp_path)
    assert catalog.object_ids.tolist() == ["a", "b"]
    assert catalog.paths(0) == [tmp_path / "a.fits"] and catalog.image_dir == tmp_path
    assert list(catalog.kept["file_name"]) == ["a.fits", "b.fits"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CatalogError, match=r"empty: no FITS images"):
        load_catalog(empty)


def test_conditions_come_from_columns_in_the_contracts_units_else_from_headers(tmp_path):
    table = _table()
    table["seeing"] = [700.0, 800.0, np.nan] * u.mas
    table["sky"] = [1.0, 2.0, 3.0]
    conditions = ("psf_fwhm", "sky", "depth")
    catalog = load_catalog(
        table,
        conditions=conditions,
        condition_columns={"psf_fwhm": "seeing"},
        contract=CONTRACT,
    )
    assert catalog.conditions.dtype == np.float32
    np.testing.assert_allclose(catalog.conditions[:, 0], [0.7, 0.8, np.nan], rtol=1e-6)
    np.testing.assert_array_equal(catalog.conditions[:, 1], [1.0, 2.0, 3.0])
    assert np.isnan(catalog.conditions[:, 2]).all()
    assert catalog.header_keys == {2: "DEPTH"}  # no column: each cutout's header gives it
    assert catalog.condition_sources == {
        "psf_fwhm": "catalog column seeing [mas] converted to arcsec",
        "sky": "catalog column sky",
        "depth": "header keyword DEPTH",
    }


def test_a_column_in_pixels_is_converted_with_the_models_pixel_scale():
    table = _table()
    table["psf_fwhm"] = [3.0, 4.0, 5.0] * u.pix
    catalog = load_catalog(table, conditions=("psf_fwhm",), contract=CONTRACT)
    np.testing.assert_allclose(catalog.conditions[:, 0], [0.6, 0.8, 1.0], rtol=1e-6)
    without = load_catalog(table, conditions=("psf_fwhm",))  # training: taken as given
    np.testing.assert_array_equal(without.conditions[:, 0], [3.0, 4.0, 5.0])


def test_bad_condition_columns_are_refused_naming_the_column_and_value(tmp_path):
    table = _table()
    table.meta["gampen_source"] = "cat.fits"
    table["psf_fwhm"] = [1.0, 2.0, 3.0] * u.m
    with pytest.raises(CatalogError, match=r"cat\.fits: column 'psf_fwhm'.*unit 'm' cannot be"):
        load_catalog(table, conditions=("psf_fwhm",), contract=CONTRACT)
    table["psf_fwhm"] = ["good", "bad", "ugly"]
    with pytest.raises(CatalogError, match=r"cat\.fits: condition column 'psf_fwhm' is not num"):
        load_catalog(table, conditions=("psf_fwhm",))
    with pytest.raises(CatalogError, match=r"cat\.fits: --conditions names.*\['seeing'\]"):
        load_catalog(table, conditions=("psf_fwhm",), condition_columns={"seeing": "x"})
    with pytest.raises(CatalogError, match=r"cat\.fits: the model needs the condition column"):
        load_catalog(table, images=False, conditions=("depth",))  # no cutouts to read it from


def test_kept_columns_are_those_asked_for_in_catalog_order():
    table = _table()
    table["DEC"] = [1.0, 2.0, 3.0]
    assert load_catalog(table, keep_columns=("flux", "bt", "nope")).kept.colnames == [
        "file_name",
        "bt",
        "flux",
        "DEC",
    ]
    everything = load_catalog(table, keep_columns="all").kept
    assert everything.colnames == table.colnames
    table["flux"].unit = "adu"
    table["flux"].description = "total flux"
    column = load_catalog(table, keep_columns=("flux",)).kept["flux"]
    assert column.unit == u.adu and column.description == "total flux"


def test_the_digest_follows_the_values_not_the_metadata():
    table = _table()
    digest = load_catalog(table).digest
    table.meta["comment"] = "re-read"
    assert load_catalog(table).digest == digest
    table["flux"][0] = 101.0
    assert load_catalog(table).digest != digest


def test_a_pack_is_read_as_a_catalog_without_image_files(tmp_path):
    from gampen.data.packfile import write_pack

    for name in ("a", "b", "c"):
        write_fits(tmp_path / f"{name}.fits", galaxy(), header=fits.Header({"X": 1}))
    table = _table()
    table["psf_fwhm"] = [0.5, 0.6, 0.7]
    catalog = load_catalog(table, image_dir=tmp_path, keep_columns="all")
    write_pack(catalog, tmp_path / "p.h5", input_size=32, progress=False)
    pack = load_catalog(tmp_path / "p.h5", images=False, conditions=("psf_fwhm",), targets=["bt"])
    assert pack.files is None and pack.object_ids.tolist() == [10, 11, 12]
    np.testing.assert_allclose(pack.conditions[:, 0], [0.5, 0.6, 0.7])
    np.testing.assert_array_equal(pack.labels[:, 0], [0.1, 0.5, 0.9])
    with pytest.raises(CatalogError, match=r"p\.h5: cannot tell the table format"):
        load_catalog(tmp_path / "p.h5")  # a pack names no cutout files
