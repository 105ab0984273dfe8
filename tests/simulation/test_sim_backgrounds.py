"""Galaxies drawn into real sky cutouts (``--backgrounds``), on skies the tests make: the
cutout is the sky crop plus the galaxy, the truth is unchanged, the crop's noise is
measured, and unusable skies are refused by name."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from gampen.cli import main
from gampen.errors import ConfigError
from gampen.simulation.backgrounds import Backgrounds
from gampen.simulation.presets import load_config
from gampen.simulation.priors import draw_galaxy
from gampen.simulation.render import draw_noiseless
from gampen.simulation.runner import simulate
from gampen.simulation.truth import BACKGROUND_COLUMNS, TRUTH_COLUMNS

SIGMA = (0.05, 0.09)


def _skies(folder, *, size=140, scale=0.168, n=2):
    """``n`` sky cutouts of white noise (sigma 0.05, 0.09) with a bright 'star' each."""
    folder.mkdir()
    for i in range(n):
        sky = np.random.default_rng(i).normal(0.0, SIGMA[i], (size, size))
        sky[30, 40 + i] += 500.0
        fits.PrimaryHDU(sky.astype(np.float32), header=fits.Header({"PIXSCALE": scale})).writeto(
            folder / f"sky{i}.fits"
        )
    return folder


def test_galaxies_are_drawn_into_crops_of_the_skies(tmp_path):
    hsc = load_config("hsc", {"neighbours": {"probability": 0.0}})
    skies = Backgrounds.scan(_skies(tmp_path / "skies"), 0.168, 96)
    summary = simulate(hsc, tmp_path / "out", n=12, seed=3, backgrounds=skies, progress=False)
    table = Table.read(summary.catalog, format="ascii.csv")
    assert tuple(table.colnames) == TRUTH_COLUMNS + BACKGROUND_COLUMNS
    for row in table:
        galaxy = draw_galaxy(hsc, 3, int(row["object_id"]))
        # the truth of the galaxy is the simulator's, whatever sky it lies on
        assert row["mag"] == pytest.approx(galaxy.mag) and row["bt"] == pytest.approx(galaxy.bt)
        index = int(row["background"][3])
        assert row["sky_sigma"] == pytest.approx(SIGMA[index], rel=0.08)  # the crop's noise
        sky = fits.getdata(tmp_path / "skies" / row["background"]).astype(np.float64)
        x0, y0 = int(row["background_x"]), int(row["background_y"])
        crop = sky[y0 : y0 + 96, x0 : x0 + 96]
        cutout = fits.getdata(tmp_path / "out" / row["file_name"]).astype(np.float64)
        galaxy_pixels = cutout - crop
        expected = draw_noiseless(dataclasses.replace(galaxy, sky_sigma=row["sky_sigma"]), hsc)
        # what is left is the galaxy with its own shot noise: the flux, and no sky noise
        assert galaxy_pixels.sum() == pytest.approx(expected.array.sum(), rel=0.02, abs=1.0)
        shot = galaxy_pixels - expected.array
        border = np.ones((96, 96), bool)
        border[6:-6, 6:-6] = False  # far from the galaxy: its shot noise only, no sky noise
        assert shot[border].std() < 0.1 * row["sky_sigma"]
    # the same set whatever the workers, and a resumed run refuses other skies
    again = simulate(
        hsc, tmp_path / "two", n=12, seed=3, backgrounds=skies, workers=2, progress=False
    )
    assert again.catalog.read_bytes() == summary.catalog.read_bytes()
    other = Backgrounds.scan(_skies(tmp_path / "other", n=1), 0.168, 96)
    with pytest.raises(ConfigError, match="different settings"):
        simulate(hsc, tmp_path / "out", n=12, seed=3, backgrounds=other, progress=False)


def test_unusable_skies_are_refused_by_name(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"sky0\.fits has 0\.2 arcsec pixels"):
        Backgrounds.scan(_skies(tmp_path / "coarse", scale=0.2), 0.168, 96)
    with pytest.raises(ConfigError, match=r"sky0\.fits is 80x80 pixels"):
        Backgrounds.scan(_skies(tmp_path / "small", size=80), 0.168, 96)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no FITS images"):
        Backgrounds.scan(tmp_path / "empty", 0.168, 96)
    args = ["simulate", "--n", "2", "--out", str(tmp_path / "o"), "--backgrounds"]
    assert main([*args, str(tmp_path / "small"), "--no-progress"]) == 2
    assert "80x80 pixels" in capsys.readouterr().err
