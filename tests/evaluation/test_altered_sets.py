"""The scripts that make the survey-edge and bright-star sets behind docs/inputs.md's
figures: the strip they blank, the star they add, and the copy they make."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ..scripts import load_script

edge = load_script("survey_edge")
stars = load_script("bright_stars")
altered = load_script("altered_set")


@pytest.mark.parametrize("side", [0, 1, 2, 3])
def test_a_strip_of_the_given_width_along_one_edge_is_blanked(side):
    out = edge.damaged(np.ones((20, 20)), 4, side, np.nan, 0.5)
    lost = np.isnan(out)
    assert lost.sum() == 4 * 20
    edges = [lost[:, :4], lost[:, -4:], lost[:4, :], lost[-4:, :]]
    assert sum(part.all() for part in edges) == 1  # one whole edge strip, nothing else
    assert np.all(out[~lost] == 1.5)


def test_the_star_has_its_flux_and_sits_where_asked():
    image = stars.star_image((96, 96), 0.168, 0.6, 1000.0, 10.0, -5.0)
    assert image.sum() == pytest.approx(1000.0, rel=0.02)  # a Moffat's wings beyond 8"
    y, x = np.mgrid[:96, :96] - 47.5
    core = np.hypot(x - 10.0, y + 5.0) < 6
    assert (image[core] * x[core]).sum() / image[core].sum() == pytest.approx(10.0, abs=0.02)
    assert (image[core] * y[core]).sum() / image[core].sum() == pytest.approx(-5.0, abs=0.02)


def test_a_set_is_copied_with_every_cutout_changed(tmp_path):
    source = tmp_path / "set"
    (source / "cutouts").mkdir(parents=True)
    names = [f"cutouts/{i}.fits" for i in range(3)]
    for i, name in enumerate(names):
        fits.PrimaryHDU(np.full((8, 8), float(i), np.float32)).writeto(source / name)
    Table({"object_id": [0, 1, 2], "file_name": names}).write(source / "info.csv")

    def add_one(hdus, row):
        hdus[0].data = hdus[0].data + 1

    catalog = altered.alter_set(source, tmp_path / "out", add_one, "plus one")
    assert list(catalog["file_name"]) == names
    for i, name in enumerate(names):
        assert np.all(fits.getdata(tmp_path / "out" / name) == i + 1)
        assert np.all(fits.getdata(source / name) == i)  # the source is left alone
