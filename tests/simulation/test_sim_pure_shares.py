"""Pure disks (bt = 0) and pure bulges (bt = 1) drawn as shares of a preset's galaxies.

Oracles: binomial tests (scipy) of the shares, the same galaxy drawn with the shares off
(the share is drawn last, so every other parameter must be that galaxy's), a configuration
digest pinned from the code before the shares existed, the light of a GalSim profile built
here integrated over the truth's half-light circle, and the analytic radius of a round
single component.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
from importlib import resources
from pathlib import Path

import galsim
import numpy as np
import pytest
import yaml
from scipy import integrate, stats

from gampen.cli import main
from gampen.errors import ConfigError
from gampen.simulation.config import SimulationConfig
from gampen.simulation.presets import load_config
from gampen.simulation.priors import Galaxy, draw_galaxy
from gampen.simulation.render import draw_noiseless, psf_profile
from gampen.simulation.truth import TRUTH_COLUMNS, truth_columns, truth_row

DRAWS = 2000
P_MIN = 1e-3
SEED = 2024
#: sha256 of the hsc preset's canonical JSON, computed with the code before the shares
#: (commit f5a159d): a preset without them must describe and hash as it always did.
HSC_CONFIG_SHA256 = "0e6da20f4f4bed570b72220a30fcbee2ef5b06c87ec5912da117ec9c95d94467"

NO_SHARES = {"central": {"pure_disk_fraction": 0.0, "pure_bulge_fraction": 0.0}}


def _shares(preset: str, disk: float, bulge: float) -> SimulationConfig:
    """``preset`` with the given shares of pure disks and pure bulges."""
    return load_config(
        preset, {"central": {"pure_disk_fraction": disk, "pure_bulge_fraction": bulge}}
    )


def _pairs(config: SimulationConfig, clean: SimulationConfig) -> list[tuple[Galaxy, Galaxy]]:
    """(galaxy with the shares, the same galaxy without them) for DRAWS object ids."""
    return [(draw_galaxy(config, SEED, i), draw_galaxy(clean, SEED, i)) for i in range(DRAWS)]


@pytest.fixture(
    scope="module",
    params=[("hsc-real", 0.15, 0.10), ("hsc", 0.3, 0.45)],
    ids=["hsc-real", "hsc-with-shares"],
)
def drawn(request) -> tuple[SimulationConfig, list[tuple[Galaxy, Galaxy]]]:
    """The shipped hsc-real preset (its own shares, with the nuisances) and hsc with other
    shares (without them): the config and DRAWS pairs of galaxies."""
    preset, disk, bulge = request.param
    config = load_config(preset) if preset == "hsc-real" else _shares(preset, disk, bulge)
    assert (config.central.pure_disk_fraction, config.central.pure_bulge_fraction) == (disk, bulge)
    return config, _pairs(config, load_config(preset, NO_SHARES))


def test_shares_match_the_configured_fractions(drawn) -> None:
    config, pairs = drawn
    disk, bulge = config.central.pure_disk_fraction, config.central.pure_bulge_fraction
    bt = np.array([g.bt for g, _ in pairs])
    n_disk, n_bulge = int((bt == 0.0).sum()), int((bt == 1.0).sum())
    assert stats.binomtest(n_disk, DRAWS, disk).pvalue > P_MIN
    assert stats.binomtest(n_bulge, DRAWS, bulge).pvalue > P_MIN
    # must fail: the fractions swapped are rejected at the level the right ones pass
    assert stats.binomtest(n_disk, DRAWS, bulge).pvalue < P_MIN
    assert stats.binomtest(n_bulge, DRAWS, disk).pvalue < P_MIN
    # the continuous prior never gives exactly 0 or 1: every such bt is a drawn share
    assert not any(c.bt in (0.0, 1.0) for _, c in pairs)


def test_only_bt_and_the_pure_bulges_size_change(drawn) -> None:
    """The share is drawn last: each galaxy is the one drawn without shares, except bt and,
    for a pure bulge, r_bulge, which is that galaxy's disk-size draw, and its clumps (it
    has no disk to hold them)."""
    _, pairs = drawn
    no_clumps = {"clump_fraction": 0.0, "clump_count": 0, "clump_seed": 0}
    for galaxy, clean in pairs:
        if galaxy.bt == 1.0:
            expected = dataclasses.replace(clean, bt=1.0, r_bulge=clean.r_disk, **no_clumps)
        elif galaxy.bt == 0.0:
            expected = dataclasses.replace(clean, bt=0.0)
        else:
            expected = clean
        assert repr(galaxy) == repr(expected)  # repr: NaN fields compare equal


def test_pure_bulges_are_sized_like_galaxies(drawn) -> None:
    """A pure bulge's radius follows the disks' log-uniform prior, not bulge_size_ratio x it."""
    config, pairs = drawn
    lo, hi = (math.log(v) for v in config.central.r_disk)
    pure = np.log([g.r_bulge for g, _ in pairs if g.bt == 1.0])
    others = np.log([g.r_bulge for g, _ in pairs if 0.0 < g.bt < 1.0])
    uniform = stats.uniform(lo, hi - lo).cdf
    assert len(pure) > 150 and stats.kstest(pure, uniform).pvalue > P_MIN
    assert stats.kstest(others, uniform).pvalue < 1e-6  # must fail: bulges inside disks


def test_presets_without_shares_draw_and_hash_as_before(hsc: SimulationConfig) -> None:
    explicit = load_config("hsc", NO_SHARES)
    assert explicit == hsc and explicit.to_dict() == hsc.to_dict()
    for i in range(300):
        assert draw_galaxy(explicit, 7, i) == draw_galaxy(hsc, 7, i)
    text = json.dumps(hsc.to_dict(), sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(text.encode()).hexdigest() == HSC_CONFIG_SHA256
    preset = resources.files("gampen.simulation") / "presets" / "hsc.yaml"
    assert set(hsc.to_dict()["central"]) == set(yaml.safe_load(preset.read_text())["central"])
    # the shares shape the prior, not the images: no nuisance columns for them alone
    shared = _shares("hsc", 0.2, 0.2)
    assert "pure_disk_fraction" in shared.to_dict()["central"]
    assert not shared.has_nuisances and truth_columns(shared) == TRUTH_COLUMNS
    assert shared.to_dict() != hsc.to_dict()  # must fail: the shares are part of the config


def test_shares_are_validated() -> None:
    with pytest.raises(
        ConfigError,
        match=r"central\.pure_disk_fraction \+ central\.pure_bulge_fraction exceeds 1",
    ):
        _shares("hsc", 0.6, 0.5)
    with pytest.raises(ConfigError, match=r"central\.pure_bulge_fraction: out of range"):
        _shares("hsc", 0.0, 1.2)
    with pytest.raises(ConfigError, match=r"central\.pure_disk_fraction: out of range"):
        _shares("hsc", -0.1, 0.0)
    everything = _shares("hsc", 0.6, 0.4)  # a sum of exactly 1 is allowed: all pure
    assert {draw_galaxy(everything, 1, i).bt for i in range(200)} == {0.0, 1.0}


def _first(config: SimulationConfig, bt: float) -> Galaxy:
    """The first galaxy of ``config`` (seed 1) with this bt and no clumps."""
    for i in range(1000):
        galaxy = draw_galaxy(config, 1, i)
        if galaxy.bt == bt and not galaxy.clump_count:
            return galaxy
    raise AssertionError(f"no galaxy with bt = {bt}")


def _single_sersic(n: float, radius: float, q: float, pa: float, flux: float) -> galsim.GSObject:
    """The one component of a pure galaxy, built with GalSim here."""
    profile = galsim.Sersic(n=n, half_light_radius=radius, flux=flux)
    return profile.shear(q=q, beta=pa * galsim.degrees)


def _enclosed_fraction(profile: galsim.GSObject, radius: float) -> float:
    """The share of ``profile``'s light inside the centred circle of ``radius``: GalSim's
    own surface brightness integrated over the circle by scipy (polar, so a steep bulge's
    cusp is harmless; no pixels, no FFT)."""

    def brightness(rho: float, phi: float) -> float:
        return profile.xValue(rho * math.cos(phi), rho * math.sin(phi)) * rho

    inside, _ = integrate.dblquad(brightness, 0.0, 2 * math.pi, 0.0, radius, epsrel=1e-8)
    return inside / profile.flux


@pytest.mark.parametrize("bt", [0.0, 1.0], ids=["pure-disk", "pure-bulge"])
def test_truth_of_a_pure_galaxy_is_its_single_component(bt: float) -> None:
    real = load_config("hsc-real")
    galaxy = _first(real, bt)
    row = dict(zip(truth_columns(real), truth_row(galaxy, real), strict=True))
    flux = 10 ** (-0.4 * (galaxy.mag - real.survey.zero_point))
    assert row["bt"] == bt and row["flux"] == pytest.approx(flux, rel=1e-12)
    if bt == 1.0:
        assert row["r_bulge"] == row["r_disk"]
        n, radius, q = galaxy.bulge_n, galaxy.r_disk, galaxy.q_bulge
    else:
        n, radius, q = galaxy.disk_n, galaxy.r_disk, galaxy.q_disk
    component = _single_sersic(n, radius, q, galaxy.pa, flux)
    assert _enclosed_fraction(component, row["r_e"]) == pytest.approx(0.5, abs=1e-6)
    # round, the circular half-light radius is the component's own radius exactly
    round_galaxy = dataclasses.replace(galaxy, q_disk=1.0, q_bulge=1.0)
    assert truth_row(round_galaxy, real)[3] == pytest.approx(radius, rel=1e-10)
    # the cutout holds that one component: the noiseless render is GalSim's drawing of it
    image = draw_noiseless(galaxy, real, neighbours=False)
    expected = galsim.Convolve(component, psf_profile(galaxy, real)).drawImage(
        image=image.copy(), center=image.true_center + galsim.PositionD(galaxy.dx, galaxy.dy)
    )
    # the renderer draws a profile within its GalSim drawing area: there the pixels agree;
    # beyond it, what is left out is a negligible share of the light
    drawn = image.array != 0
    difference = np.abs(image.array - expected.array)
    assert difference[drawn].max() < 1e-6 * expected.array.max()
    assert expected.array[~drawn].sum() < 1e-3 * expected.array.sum()


def test_must_fail_a_pure_bulge_sized_like_a_bulge_has_another_r_e() -> None:
    real = load_config("hsc-real")
    galaxy = _first(real, 1.0)
    clean = draw_galaxy(load_config("hsc-real", NO_SHARES), 1, galaxy.object_id)
    wrong = dataclasses.replace(galaxy, r_bulge=clean.r_bulge)  # the bulge-in-disk draw
    flux = 10 ** (-0.4 * (galaxy.mag - real.survey.zero_point))
    component = _single_sersic(galaxy.bulge_n, galaxy.r_disk, galaxy.q_bulge, galaxy.pa, flux)
    assert abs(_enclosed_fraction(component, truth_row(wrong, real)[3]) - 0.5) > 0.1


def test_cli_hsc_real_writes_pure_disks_and_bulges(tmp_path: Path) -> None:
    """The CLI writes the pure disks and bulges the prior draws (seed 2's first 20)."""
    out = tmp_path / "set"
    argv = ["simulate", "--preset", "hsc-real", "--n", "20", "--seed", "2", "--out", str(out)]
    assert main([*argv, "--workers", "1", "--no-progress"]) == 0
    with (out / "info.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    bt = [float(row["bt"]) for row in rows]
    drawn = [draw_galaxy(load_config("hsc-real"), 2, i).bt for i in range(20)]
    assert (bt.count(0.0), bt.count(1.0)) == (drawn.count(0.0), drawn.count(1.0))
    assert bt.count(0.0) > 0 and bt.count(1.0) > 0
    for row in rows:
        if float(row["bt"]) == 1.0:
            assert row["r_bulge"] == row["r_disk"]
