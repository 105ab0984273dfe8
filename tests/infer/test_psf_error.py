"""``gampen predict --psf-fwhm-error``: posteriors marginalised over a PSF model's size error.

Oracles: the normal distribution's moments (the size factors), a PSF drawn wider by GalSim
(the widened PSF features), the law of total variance (the calibrated draws), and the
mixture of separate predictions made with the catalog's FWHM scaled by hand (end to end).
"""

from __future__ import annotations

import json
import shutil

import galsim
import numpy as np
import pytest
import torch
from astropy.table import Table

from gampen.calibration.maps import SpreadMap
from gampen.data.psf_features import psf_features, size_factors, widened_features
from gampen.errors import CatalogError, ConfigError
from gampen.infer.predict import PredictOptions, predict
from gampen.infer.psf_error import NODES
from gampen.infer.sampling import _draw

from ..synthetic import tiny_bundle, write_labelled_set


@pytest.mark.parametrize("n", [2, 3, 10, 100])
def test_size_factors_are_equal_weight_lognormal_nodes_of_the_stated_sigma(n):
    logs = np.log(size_factors(0.07, n))
    assert abs(logs.mean()) < 1e-12
    assert np.sqrt(np.mean(logs**2)) == pytest.approx(0.07, rel=1e-12)
    assert np.all(np.diff(logs) > 0)
    assert size_factors(0.07, 1).tolist() == [1.0]
    assert np.all(size_factors(0.0, n) == 1.0)


def _moffat(fwhm: float, scale: float = 0.168, side: int = 41) -> np.ndarray:
    psf = galsim.Moffat(beta=3.0, fwhm=fwhm).shear(g1=0.03, g2=0.01)
    return psf.drawImage(nx=side, ny=side, scale=scale).array


def test_widened_features_are_those_of_a_psf_drawn_wider():
    narrow = _moffat(0.6)
    factors = np.array([0.8, 1.0, 1.25])
    got = widened_features(narrow, 0.168, factors)
    for factor, row in zip(factors, got, strict=True):
        drawn = psf_features(_moffat(0.6 * factor), 0.168)
        np.testing.assert_allclose(row[1:-1], drawn[1:-1], atol=2e-3)  # encircled energies
        assert row[0] == 1.0 and row[-1] == pytest.approx(got[1, -1])  # indicator, |e|
    # the must-fail case: the factor's inverse is not the same PSF
    inverse = widened_features(narrow, 0.168, 1.0 / factors)
    assert np.abs(inverse[2, 1:-1] - psf_features(_moffat(0.75), 0.168)[1:-1]).max() > 0.05


def test_calibration_reshapes_the_spread_within_each_psf_size_and_keeps_the_shifts():
    """Two PSF sizes, two passes each: node 1 sits ``shift`` above node 0 in every parameter.
    A core factor ``a`` must scale the within-size spread only: the variance is
    ``a^2 var_within + shift^2 / 4`` and the nodes stay ``shift`` apart."""
    shift, a, per_pass = 6.0, 0.5, 50_000
    within = np.array([[-1.0, 0.5, 0.0], [1.0, -0.5, 0.0]])  # about each node's centre
    means = np.array([within[0], within[0] + shift, within[1], within[1] + shift])
    node = torch.tensor([0, 1, 0, 1])  # pass j takes node j mod 2
    tril = torch.eye(3, dtype=torch.float64).repeat(4, 1, 1)
    rng = np.random.default_rng(3)
    spread = SpreadMap(scale=np.full(3, a))
    out = _draw(torch.tensor(means), tril, 4 * per_pass, rng, spread, None, node).numpy()
    var_within = 1.0 + np.mean(within**2, axis=0)  # unit Gaussians about the pass means
    expected = a**2 * var_within + shift**2 / 4
    sd_of_var = np.sqrt(2.0 / len(out)) * (var_within + shift**2 / 4)  # generous
    assert np.all(np.abs(out.var(axis=0) - expected) < 5 * sd_of_var)
    gap = out[(np.arange(len(out)) % 4) % 2 == 1].mean(0) - out[::2].mean(0)
    np.testing.assert_allclose(gap, shift, atol=0.05)
    plain = _draw(torch.tensor(means), tril, 4 * per_pass, rng, spread, None).numpy()
    assert np.all(np.abs(plain.var(axis=0) - expected) > 5 * sd_of_var)  # must-fail case


@pytest.fixture(scope="module")
def swinging(tmp_path_factory):
    """Sixteen galaxies and an untrained model whose output swings with psf_fwhm."""
    folder = tmp_path_factory.mktemp("psf-error")
    catalog = write_labelled_set(folder / "set", n=16)
    return catalog, tiny_bundle(folder, conditions=("psf_fwhm",), condition_std=0.1)


def test_predict_gives_the_mixture_over_psf_sizes(swinging):
    """The marginal posterior against NODES separate predictions, each with the catalog's
    psf_fwhm multiplied by one size factor: their equal mixture's mean and sd."""
    catalog, bundle = swinging
    options = {"progress": False, "num_workers": 0}
    sigma = 0.3
    marginal = predict(
        str(catalog), model=str(bundle), options=PredictOptions(psf_fwhm_error=sigma, **options)
    )
    exact = predict(str(catalog), model=str(bundle), options=PredictOptions(**options))
    table, means, variances = Table.read(catalog), [], []
    for i, factor in enumerate(size_factors(sigma, NODES)):
        scaled = table.copy()
        scaled["psf_fwhm"] = table["psf_fwhm"] * factor
        path = catalog.parent / f"scaled-{i}.csv"
        scaled.write(path, overwrite=True)
        one = predict(str(path), model=str(bundle), options=PredictOptions(**options))
        means.append(np.asarray(one["r_e_mean"]))
        variances.append(np.asarray(one["r_e_std"]) ** 2)
    means, variances = np.array(means), np.array(variances)
    mixture_sd = np.sqrt(variances.mean(0) + means.var(0))
    offset = (np.asarray(marginal["r_e_mean"]) - means.mean(0)) / mixture_sd
    assert np.abs(offset).max() < 0.1
    assert np.median(np.asarray(marginal["r_e_std"]) / mixture_sd) == pytest.approx(1.0, abs=0.06)
    # the must-fail case: the posterior with the PSF taken as exact is narrower
    assert np.median(np.asarray(exact["r_e_std"]) / mixture_sd) < 0.92
    assert marginal.meta["PSFERR"] == sigma and exact.meta["PSFERR"] == 0.0


def test_a_column_gives_each_galaxy_its_own_psf_error(swinging):
    """Galaxies with 0 in the column get exactly the exact-PSF posterior, those with 0.3
    exactly the posterior of --psf-fwhm-error 0.3: each galaxy's draws depend on its own
    key and PSF sizes only."""
    catalog, raw = swinging
    bundle = catalog.parent / "calibrated"  # the spread map must not see one PSF size as ten
    if not bundle.exists():
        shutil.copytree(raw, bundle)
        meta = json.loads((bundle / "gampen.json").read_text())
        meta["calibration"] = {"method": "spread", "scale": {"bt": 0.5, "r_e": 0.7, "flux": 0.6}}
        (bundle / "gampen.json").write_text(json.dumps(meta))
    table = Table.read(catalog)
    table["psf_err"] = np.where(np.arange(len(table)) % 2 == 0, 0.0, 0.3)
    path = catalog.parent / "with-errors.csv"
    table.write(path, overwrite=True)

    def run(source, error: float | str = 0.0):
        options = PredictOptions(psf_fwhm_error=error, progress=False, num_workers=0)
        return predict(str(source), model=str(bundle), options=options)

    mixed, exact, wide = run(path, "psf_err"), run(catalog), run(catalog, 0.3)
    even = np.arange(len(table)) % 2 == 0
    for name in ("r_e_median", "r_e_std", "bt_ci68_lo", "flux_ci95_hi"):
        np.testing.assert_array_equal(np.asarray(mixed[name])[even], np.asarray(exact[name])[even])
        np.testing.assert_array_equal(np.asarray(mixed[name])[~even], np.asarray(wide[name])[~even])
    assert not np.array_equal(
        np.asarray(exact["r_e_std"])[~even], np.asarray(wide["r_e_std"])[~even]
    )
    assert list(mixed["psf_err"]) == list(table["psf_err"]) and mixed.meta["PSFERR"] == "psf_err"
    table["psf_err"][3], table["psf_err"][5] = -0.1, 0.5  # 0.5: the largest accepted
    table.write(path, overwrite=True)
    expected = r"'psf_err' holds 1 PSF FWHM error.*object_id 3; got '-0.1'; expected \[0, 0.5\]"
    with pytest.raises(CatalogError, match=expected):
        run(path, "psf_err")
    table["psf_err"] = np.ma.masked_array(np.full(len(table), 0.1), mask=np.arange(len(table)) == 2)
    table.write(path, overwrite=True)
    with pytest.raises(CatalogError, match=r"object_id 2; got 'an empty cell'"):
        run(path, "psf_err")
    table["psf_err"] = ["small"] * len(table)
    table.write(path, overwrite=True)
    with pytest.raises(CatalogError, match=r"'psf_err' does not hold numbers"):
        run(path, "psf_err")
    with pytest.raises(
        CatalogError, match=r"names a column the catalog lacks; got 'nope'; expected \["
    ):
        run(catalog, "nope")


def test_psf_fwhm_error_refuses_a_model_told_nothing_of_the_psf(swinging, tmp_path):
    catalog, _ = swinging
    blind = tiny_bundle(tmp_path, name="blind")
    message = (
        r"^--psf-fwhm-error needs a model that takes the PSF \(a psf_fwhm condition or PSF "
        r"images\); this one takes neither; got 0.05; expected 0$"
    )
    with pytest.raises(ConfigError, match=message):
        predict(
            str(catalog),
            model=str(blind),
            options=PredictOptions(psf_fwhm_error=0.05, progress=False, num_workers=0),
        )
    with pytest.raises(ConfigError, match="psf_fwhm_error"):
        PredictOptions(psf_fwhm_error=0.6)
