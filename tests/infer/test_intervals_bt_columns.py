"""The bt class columns in the output table: listed, placed and described like the others."""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.table import Table

from gampen.data.catalog import write_table
from gampen.infer.output import finish_table, output_names
from gampen.infer.summary import STATISTICS, summarise


def test_class_columns_follow_the_bt_columns_only_with_bt():
    names = output_names(["bt", "r_e", "flux"])
    assert names.index("p_disk") == names.index("bt_ci99_hi") + 1
    assert names.index("p_bulge") == names.index("p_disk") + 1 == names.index("r_e_mean") - 1
    assert names[-len(STATISTICS) :] == [f"mag_{s}" for s in STATISTICS]
    assert not {"p_disk", "p_bulge"} & set(output_names(["r_e", "flux"]))


def test_class_columns_are_described_and_kept_in_fits(tmp_path):
    """gampen's FITS writer keeps each description whole as its TTYPE comment."""
    bt = np.random.default_rng(0).uniform(size=(3, 50, 1)).astype(np.float32)
    result = Table({"object_id": [1, 2, 3], **summarise(bt, ["bt"])})
    table = finish_table(result, Table({"object_id": [1, 2, 3]}), [], {})
    disk = "posterior probability that bt < 0.1 (disk)"
    bulge = "posterior probability that bt > 0.9 (bulge)"
    assert table["p_disk"].description == disk and table["p_disk"].unit is None
    assert table["p_bulge"].description == bulge
    assert table["bt_median"].description == "bulge-to-total ratio, posterior median"
    write_table(table, tmp_path / "p.fits")
    header = fits.getheader(tmp_path / "p.fits", 1)
    comments = {header[k]: header.comments[k] for k in header if k.startswith("TTYPE")}
    assert comments["p_disk"] == disk and comments["p_bulge"] == bulge
    np.testing.assert_array_equal(Table.read(tmp_path / "p.fits")["p_bulge"], table["p_bulge"])
