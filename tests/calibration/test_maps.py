"""The calibration map predict applies: exact covariance scaling, knees, ranks, bundles."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg

from gampen.calibration.maps import (
    BrightnessSplit,
    Recalibration,
    SpreadMap,
    brightness,
    shrink_correlations,
    shrink_matrix,
)

#: The maps of the model shipped until the lean calibration: clean and crowded galaxies,
#: each split faint / bright, 13 numbers each.  Bundles holding them must apply as before.
FOUR_MAPS = Path(__file__).parent / "data" / "four_maps.json"


def test_plain_spread_scales_the_covariance_exactly():
    rng = np.random.default_rng(5)
    base = rng.multivariate_normal([1, -2, 0.5], [[1, 0.6, 0], [0.6, 2, -0.3], [0, -0.3, 0.5]], 800)
    a = np.array([0.5, 2.0, 1.3])
    out = SpreadMap(a).apply(base[None])[0]
    np.testing.assert_allclose(np.cov(out.T), np.outer(a, a) * np.cov(base.T), rtol=1e-10)
    # The median, the catalog's point estimate, does not move.
    np.testing.assert_allclose(np.median(out, 0), np.median(base, 0), atol=1e-12)


def test_tail_factor_moves_only_samples_beyond_the_knee():
    rng = np.random.default_rng(8)
    base = rng.normal(size=(1, 4001, 1))
    median = np.median(base)
    t = (base - median) / base.std()
    out = SpreadMap(np.array([1.0]), np.array([3.0]), knee=1.0).apply(base)
    t_out = (out - median) / base.std()
    inside = np.abs(t) <= 1
    np.testing.assert_allclose(t_out[inside], t[inside], atol=1e-12)
    # Beyond the knee: 1 + 3 (|t| - 1), sign kept (worked by hand).
    np.testing.assert_allclose(np.abs(t_out[~inside]), 1 + 3 * (np.abs(t[~inside]) - 1))
    assert np.all(np.sign(t_out) == np.sign(t))
    # Ranks (and so the copula with other parameters) are unchanged.
    assert np.array_equal(np.argsort(out[0, :, 0]), np.argsort(base[0, :, 0]))


def test_shrink_matrix_is_the_symmetric_square_root_map():
    """``sqrtm(T) sqrtm(C)^-1`` by scipy's matrix square roots, and singular ``C`` flagged."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=(3, 3))
    cov = np.stack([a @ a.T + 0.1 * np.eye(3), np.diag([1.0, 0.0, 2.0])])
    matrix, singular = shrink_matrix(cov[:, None], 0.3)  # any batch shape: (2, 1, 3, 3)
    target = 0.7 * cov[0] + 0.3 * np.diag(np.diag(cov[0]))
    expected = np.real(linalg.sqrtm(target) @ linalg.inv(linalg.sqrtm(cov[0])))
    np.testing.assert_allclose(matrix[0, 0], expected, atol=1e-10)
    np.testing.assert_allclose(matrix[0, 0] @ cov[0] @ matrix[0, 0].T, target, atol=1e-10)
    np.testing.assert_array_equal(singular, [[False], [True]])


def test_map_from_a_bundle_calibration():
    names = ["bt", "flux"]
    identity = {"scale": {"bt": 1.0, "flux": 1.0}}
    assert SpreadMap.from_calibration(identity, names) is None
    cal = {
        "scale": {"bt": 0.5, "flux": 2.0},
        "tail": {"bt": 1.5, "flux": 1.0},
        "knee": {"bt": 0.5, "flux": 2.0},
    }
    spread = SpreadMap.from_calibration(cal, names)
    # Worked by hand at t = 1 and t = 3: bt 0.5 (0.5 + 1.5 (t - 0.5)); flux 2 t (inside).
    np.testing.assert_allclose(spread.stretch(np.array([1.0, 1.0])), [0.625, 2.0])
    np.testing.assert_allclose(spread.stretch(np.array([3.0, 3.0])), [2.125, 2.0 * 2 + 2 * 1])


def _reference(
    samples: np.ndarray, a: float, b: float, c: float, p: float = 0.0, ref: float = 1.0
) -> np.ndarray:
    """A second, loop-by-loop implementation of the map for one parameter (S,)."""
    m, s = np.median(samples), samples.std()
    if s == 0:
        return samples.copy()
    out = []
    for z in samples:
        t = (z - m) / s
        g = a * t if abs(t) <= c else a * np.sign(t) * (c + b * (abs(t) - c))
        out.append(m + s * g * (s / ref) ** p)
    return np.array(out)


def test_each_galaxy_pivots_on_its_own_median_and_width():
    rng = np.random.default_rng(12)
    widths, centres = [0.1, 1.0, 10.0], [-5.0, 0.0, 40.0]
    samples = np.stack(
        [c + w * rng.standard_t(4, size=(501, 2)) for c, w in zip(centres, widths, strict=True)]
    )
    samples = np.concatenate([samples, np.full((1, 501, 2), 3.0)])  # a constant posterior
    spread = SpreadMap(np.array([0.6, 1.7]), np.array([2.0, 0.5]), np.array([0.5, 1.5]))
    out = spread.apply(samples)
    for g in range(4):
        for j, (a, b, c) in enumerate([(0.6, 2.0, 0.5), (1.7, 0.5, 1.5)]):
            np.testing.assert_allclose(out[g, :, j], _reference(samples[g, :, j], a, b, c))
    assert np.all(out[3] == 3.0)  # no NaN from a zero width


def test_width_power_widens_wide_posteriors_more():
    rng = np.random.default_rng(13)
    samples = np.stack([w * rng.normal(size=(301, 2)) for w in (0.2, 1.0, 5.0)])
    cal = {
        "scale": {"bt": 0.8, "flux": 1.2},
        "tail": {"bt": 1.0, "flux": 2.0},
        "knee": {"bt": 1.0, "flux": 0.5},
        "power": {"bt": 0.5, "flux": -0.3},
        "width_ref": {"bt": 1.0, "flux": 2.0},
    }
    out = SpreadMap.from_calibration(cal, ["bt", "flux"]).apply(samples)
    for g in range(3):
        for j, (a, b, c, p, ref) in enumerate(
            [(0.8, 1.0, 1.0, 0.5, 1.0), (1.2, 2.0, 0.5, -0.3, 2.0)]
        ):
            np.testing.assert_allclose(out[g, :, j], _reference(samples[g, :, j], a, b, c, p, ref))
    # Power alone, by hand: a width s with ref 1 and power 0.5 becomes s * s ** 0.5.
    only = SpreadMap(np.ones(1), power=np.array([0.5])).apply(samples[2:, :, :1])
    np.testing.assert_allclose(only.std(), samples[2, :, 0].std() ** 1.5, rtol=1e-9)


def test_scalar_and_missing_knees_in_a_bundle_calibration():
    names = ["bt", "flux"]
    base = {"scale": {"bt": 2.0, "flux": 2.0}, "tail": {"bt": 3.0, "flux": 3.0}}
    t = np.array([2.0, 2.0])
    # Missing knee: 1 sd.  2 (1 + 3 (2 - 1)) = 8.
    np.testing.assert_allclose(SpreadMap.from_calibration(base, names).stretch(t), [8.0, 8.0])
    # One knee for every parameter: 2 (0.5 + 3 (2 - 0.5)) = 10.
    scalar = {**base, "knee": 0.5}
    np.testing.assert_allclose(SpreadMap.from_calibration(scalar, names).stretch(t), [10.0, 10.0])
    # No tail given: a plain rescaling.
    plain = SpreadMap.from_calibration({"scale": {"bt": 2.0, "flux": 0.5}}, names)
    np.testing.assert_allclose(plain.stretch(np.array([3.0, 3.0])), [6.0, 1.5])


def test_clean_and_crowded_galaxies_get_their_own_maps():
    rng = np.random.default_rng(14)
    samples = rng.normal(size=(3, 201, 2))
    names = ["bt", "flux"]
    cal = {
        "scale": {"bt": 0.5, "flux": 0.8},
        "crowded": {"above": 0.1, "scale": {"bt": 2.0, "flux": 1.5}, "tail": 3.0},
    }
    maps = Recalibration.from_calibration(cal, names)
    out = maps.apply(samples, np.array([0.05, 0.1, 0.7]))  # clean, clean (not above), crowded
    for g, (a_bt, a_flux, b) in enumerate([(0.5, 0.8, 1.0), (0.5, 0.8, 1.0), (2.0, 1.5, 3.0)]):
        np.testing.assert_allclose(out[g, :, 0], _reference(samples[g, :, 0], a_bt, b, 1.0))
        np.testing.assert_allclose(out[g, :, 1], _reference(samples[g, :, 1], a_flux, b, 1.0))
    with pytest.raises(ValueError, match="crowding index"):
        maps.pick(None, samples[0])
    plain = Recalibration.from_calibration({"scale": {"bt": 0.5, "flux": 0.8}}, names)
    assert isinstance(plain, SpreadMap) and plain.pick(None, samples[0]) is plain  # one map


def _centred_at(medians: list[float], seed: int) -> np.ndarray:
    """Samples (G, 201, 2) whose parameter 1 has median exactly ``medians[g]``: that value,
    100 samples below it and 100 above, shuffled."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(size=(len(medians), 201, 2))
    for g, m in enumerate(medians):
        offsets = np.abs(rng.normal(size=201)) + 0.01
        offsets[:100] *= -1
        offsets[100] = 0.0
        samples[g, :, 1] = m + rng.permutation(offsets)
    return samples


def test_faint_galaxies_get_the_faint_map_of_their_crowding_class():
    names = ["bt", "flux"]
    cal = {
        "scale": {"bt": 0.5, "flux": 0.8},
        "faint": {"param": "flux", "below": -0.2, "scale": {"bt": 3.0, "flux": 4.0}},
        "crowded": {
            "above": 0.1,
            "scale": {"bt": 2.0, "flux": 1.5},
            "faint": {"param": "flux", "below": 0.3, "scale": 5.0, "tail": 2.0},
        },
    }
    maps = Recalibration.from_calibration(cal, names)
    # (crowding, flux median): clean bright, clean at the limit (not below: bright), clean
    # faint, crowded bright, crowded faint (its own limit, 0.3).
    cases = [(0.0, 0.5), (0.0, -0.2), (0.0, -0.3), (0.5, 0.5), (0.5, 0.2)]
    expected = [(0.5, 0.8, 1.0), (0.5, 0.8, 1.0), (3.0, 4.0, 1.0), (2.0, 1.5, 1.0), (5.0, 5.0, 2.0)]
    samples = _centred_at([m for _, m in cases], seed=21)
    out = maps.apply(samples, np.array([c for c, _ in cases]))
    for g, (a_bt, a_flux, b) in enumerate(expected):
        np.testing.assert_allclose(out[g, :, 0], _reference(samples[g, :, 0], a_bt, b, 1.0))
        np.testing.assert_allclose(out[g, :, 1], _reference(samples[g, :, 1], a_flux, b, 1.0))
    # Without a crowded part, one class split by brightness: crowding plays no part.
    split = Recalibration.from_calibration({k: cal[k] for k in ("scale", "faint")}, names)
    assert isinstance(split, BrightnessSplit) and split.param == 1 and split.below == -0.2
    out = split.apply(samples[1:3])
    np.testing.assert_allclose(out[0, :, 1], _reference(samples[1, :, 1], 0.8, 1.0, 1.0))
    np.testing.assert_allclose(out[1, :, 1], _reference(samples[2, :, 1], 4.0, 1.0, 1.0))


def test_brightness_is_each_galaxys_median_sample_of_the_parameter():
    samples = np.random.default_rng(23).normal(size=(4, 51, 3))
    expected = [statistics.median(samples[g, :, 2].tolist()) for g in range(4)]
    np.testing.assert_allclose(brightness(samples, 2), expected, rtol=0, atol=0)
    assert brightness(samples[1], 2) == expected[1]


def test_a_faint_map_keeps_its_own_shrink_and_needs_its_own_scale():
    faint = {"param": "flux", "below": 0.5, "scale": 2.0, "shrink": 0.25}
    split = Recalibration.from_calibration({"scale": 1.0, "faint": faint}, ["bt", "flux"])
    assert split.bright is None and split.faint.shrink == 0.25
    np.testing.assert_array_equal(split.faint.scale, [2.0, 2.0])
    with pytest.raises(ValueError, match=r"^calibration lacks 'scale'$"):
        Recalibration.from_calibration(
            {"scale": 1.0, "faint": {"param": "flux", "below": 0.5}}, ["bt", "flux"]
        )


def test_an_identity_faint_map_leaves_faint_galaxies_alone():
    maps = BrightnessSplit(SpreadMap(np.full(2, 2.0)), None, below=0.0, param=1)
    samples = _centred_at([-1.0, 1.0], seed=22).astype(np.float32)
    out = maps.apply(samples)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[0], samples[0].astype(np.float64))
    np.testing.assert_allclose(out[1, :, 0], _reference(samples[1, :, 0].astype(float), 2, 1, 1))


@pytest.mark.parametrize(
    "faint, message",
    [
        (3, r"faint must be an object with 'param' and 'below'$"),
        ({"param": "flux", "scale": 1.0}, r"faint must be an object with 'param' and 'below'$"),
        ({"below": 0.0, "scale": 1.0}, r"faint must be an object with 'param' and 'below'$"),
        ({"param": "r_e", "below": 0, "scale": 1}, r"faint\.param must be one of \['bt', 'flux'\]"),
        ({"param": "flux", "below": "x", "scale": 1.0}, r"faint\.below must be a finite number"),
        ({"param": "flux", "below": 0, "scale": 1, "z": 1}, r"faint has unknown key\(s\) \['z'\]"),
        ({"param": "flux", "below": 0.0, "scale": -1.0}, r"scale\.bt must be > 0"),
    ],
)
def test_a_broken_faint_map_is_refused_in_either_class(faint, message):
    names = ["bt", "flux"]
    with pytest.raises(ValueError, match=message):
        Recalibration.from_calibration({"scale": 1.0, "faint": faint}, names)
    crowded = {"above": 0.1, "scale": 1.0, "faint": faint}
    with pytest.raises(ValueError, match=message):
        Recalibration.from_calibration({"scale": 1.0, "crowded": crowded}, names)


def test_a_broken_faint_map_is_named_by_its_class():
    bad = {"param": "flux", "below": float("nan"), "scale": 1.0}
    with pytest.raises(ValueError, match=r"^calibration\.faint\.below must be a finite number"):
        Recalibration.from_calibration({"scale": 1.0, "faint": bad}, ["bt", "flux"])
    crowded = {"above": 0.1, "scale": 1.0, "faint": bad}
    with pytest.raises(ValueError, match=r"^calibration\.crowded\.faint\.below must be"):
        Recalibration.from_calibration({"scale": 1.0, "crowded": crowded}, ["bt", "flux"])


@pytest.mark.parametrize(
    "crowded, message",
    [
        ({"scale": {"bt": 1.0}}, "'above' threshold"),
        ({"above": float("nan"), "scale": {"bt": 1.0}}, "above must be a finite"),
        ({"above": 0.1, "scale": {"bt": 1.0}, "temperature": 2}, "unknown key"),
        ({"above": 0.1, "scale": {"bt": -1.0}}, "scale.bt must be > 0"),
    ],
)
def test_a_broken_crowded_map_is_refused(crowded, message):
    with pytest.raises(ValueError, match=message):
        Recalibration.from_calibration({"scale": {"bt": 1.0}, "crowded": crowded}, ["bt"])


@pytest.mark.parametrize(
    "calibration, message",
    [
        ({"tail": {"bt": 1.0}}, r"^calibration lacks 'scale'$"),
        (
            {"scale": {"flux": 1.0}},
            r"^calibration 'scale' must give one value per parameter \['bt'\]$",
        ),
        ({"scale": {"bt": "1"}}, r"^calibration\.scale\.bt must be a finite number, not '1'$"),
        ({"scale": {"bt": True}}, r"^calibration\.scale\.bt must be a finite number, not True$"),
        ({"scale": {"bt": float("inf")}}, r"^calibration\.scale\.bt must be a finite number"),
        ({"scale": {"bt": 0.0}}, r"^calibration\.scale\.bt must be > 0, not 0\.0$"),
        ({"scale": {"bt": 1.0}, "knee": 0}, r"^calibration\.knee\.bt must be > 0, not 0$"),
        (
            {"scale": {"bt": 1.0}, "crowded": 3},
            r"^calibration 'crowded' must be an object with an 'above' threshold$",
        ),
        (
            {"scale": {"bt": 1.0}, "crowded": {"above": "x", "scale": {"bt": 1.0}}},
            r"^calibration\.crowded\.above must be a finite number: 'x'$",
        ),
        (
            {"scale": {"bt": 1.0}, "crowded": {"above": 0.1, "scale": {"bt": 1.0}, "z": 1}},
            r"^calibration 'crowded' has unknown key\(s\) \['z'\]$",
        ),
    ],
)
def test_malformed_calibrations_are_refused_with_the_key_named(calibration, message):
    with pytest.raises(ValueError, match=message):
        Recalibration.from_calibration(calibration, ["bt"])


def test_a_zero_width_power_and_unit_factors_is_the_identity_but_a_negative_power_is_not():
    assert SpreadMap.from_calibration({"scale": {"bt": 1.0}, "power": {"bt": 0.0}}, ["bt"]) is None
    shrink = SpreadMap.from_calibration({"scale": {"bt": 1.0}, "power": {"bt": -0.5}}, ["bt"])
    assert shrink is not None and shrink.power[0] == -0.5  # either sign is allowed


def test_two_maps_work_in_double_precision_and_need_every_crowding_index():
    maps = Recalibration(SpreadMap(np.full(1, 0.5)), None, above=0.1)
    samples = np.random.default_rng(3).normal(size=(2, 101, 1)).astype(np.float32)
    out = maps.apply(samples, [0.0, 0.5])  # clean: halved; crowded: None leaves it alone
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[1], samples[1].astype(np.float64))
    np.testing.assert_allclose(
        out[0], _reference(samples[0, :, 0].astype(np.float64), 0.5, 1, 1)[:, None]
    )
    with pytest.raises(ValueError, match=r"^this calibration needs each galaxy's crowding index$"):
        maps.apply(samples, [0.0, float("nan")])


def _correlated(n_galaxies: int, n_samples: int, rho: float, seed: int) -> np.ndarray:
    """Skewed samples (n_galaxies, n_samples, 3) with correlation ``rho`` between the first
    two parameters and unequal variances."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, rho * 2.0, 0.1], [rho * 2.0, 4.0, 0.0], [0.1, 0.0, 0.25]])
    gamma = rng.gamma(2.0, size=(n_galaxies, n_samples, 3))  # skewed marginals
    return 5.0 + gamma @ np.linalg.cholesky(cov / 2.0).T


@pytest.mark.parametrize("amount", [0.0, 0.3, 0.9])
def test_correlation_shrink_hits_the_target_covariance_and_keeps_medians(amount):
    samples = _correlated(3, 4000, 0.95, seed=11)
    out = shrink_correlations(samples, amount)
    for before, after in zip(samples, out, strict=True):
        cov = np.cov(before, rowvar=False)  # numpy's covariance, independent of the code
        target = (1 - amount) * cov + amount * np.diag(np.diag(cov))
        np.testing.assert_allclose(np.cov(after, rowvar=False), target, atol=1e-9)
        np.testing.assert_allclose(np.median(after, axis=0), np.median(before, axis=0))
        assert np.all(np.linalg.eigvalsh(np.cov(after, rowvar=False)) > 0)


def test_correlation_shrink_is_the_symmetric_square_root_map():
    """Against scipy's matrix square roots: ``x -> m + sqrtm(T) sqrtm(C)^-1 (x - mean)``
    (the symmetric map, the one that moves the samples least), shifted to the medians."""
    samples = _correlated(2, 500, 0.9, seed=14)
    single = samples.astype(np.float32)
    got = shrink_correlations(single, 0.4)
    # float32 samples are mapped in double precision, as if given in float64
    np.testing.assert_allclose(got, shrink_correlations(single.astype(np.float64), 0.4), atol=1e-10)
    for before, after in zip(samples, got, strict=True):
        cov = np.cov(before, rowvar=False)
        target = 0.6 * cov + 0.4 * np.diag(np.diag(cov))
        mixing = np.real(linalg.sqrtm(target) @ linalg.inv(linalg.sqrtm(cov)))
        expected = before.mean(axis=0) + (before - before.mean(axis=0)) @ mixing.T
        expected += np.median(before, axis=0) - np.median(expected, axis=0)
        np.testing.assert_allclose(after, expected, atol=2e-5)  # float32 input: ~1e-6 relative
        np.testing.assert_allclose(shrink_correlations(before, 0.4), expected, atol=1e-9)


def test_correlation_shrink_leaves_singular_posteriors_alone_but_not_narrow_ones():
    samples = _correlated(4, 200, 0.5, seed=12)
    samples[1, :, 2] = 3.0  # a constant parameter: no covariance to invert
    samples[2] = 7.0  # every parameter constant
    samples[3] = 1.0 + 1e-9 * (samples[3] - 5.0)  # very narrow, yet a proper posterior
    with np.errstate(all="raise"):
        out = shrink_correlations(samples, 0.5)
    np.testing.assert_array_equal(out[1:3], samples[1:3])
    for i in (0, 3):
        cov, after = np.cov(samples[i], rowvar=False), np.cov(out[i], rowvar=False)
        target = 0.5 * cov + 0.5 * np.diag(np.diag(cov))
        np.testing.assert_allclose(after, target, rtol=1e-6, atol=1e-12 * np.abs(cov).max())


def test_a_map_with_a_shrink_applies_it_after_the_stretch():
    names = ["bt", "r_e", "flux"]
    spread = SpreadMap.from_calibration({"scale": 2.0, "shrink": 0.25}, names)
    samples = _correlated(1, 3000, 0.9, seed=13)
    cov = 4.0 * np.cov(samples[0], rowvar=False)  # the plain stretch doubles every sd
    target = 0.75 * cov + 0.25 * np.diag(np.diag(cov))
    np.testing.assert_allclose(np.cov(spread.apply(samples)[0], rowvar=False), target, atol=1e-8)
    assert SpreadMap.from_calibration({"scale": 1.0, "shrink": 0.25}, names) is not None
    assert SpreadMap.from_calibration({"scale": 1.0, "shrink": 0}, names) is None


@pytest.mark.parametrize("shrink", [-0.1, 1.0, "0.2", float("nan"), True])
def test_a_bad_shrink_is_refused_with_the_key_named(shrink):
    with pytest.raises(ValueError, match=r"^calibration\.shrink must be a number in \[0, 1\)"):
        Recalibration.from_calibration({"scale": {"bt": 1.0}, "shrink": shrink}, ["bt"])
    crowded = {"scale": {"bt": 1.0}, "crowded": {"above": 0.1, "scale": 1.0, "shrink": shrink}}
    with pytest.raises(ValueError, match=r"^calibration\.shrink must be a number in \[0, 1\)"):
        Recalibration.from_calibration(crowded, ["bt"])


def _shrunk(samples: np.ndarray, amount: float) -> np.ndarray:
    """scipy's symmetric-square-root shrink of one galaxy's samples (S, k), its medians kept:
    an oracle apart from :func:`shrink_correlations`."""
    cov = np.cov(samples, rowvar=False)
    target = (1 - amount) * cov + amount * np.diag(np.diag(cov))
    mixing = np.real(linalg.sqrtm(target) @ linalg.inv(linalg.sqrtm(cov)))
    out = samples.mean(axis=0) + (samples - samples.mean(axis=0)) @ mixing.T
    return out + np.median(samples, axis=0) - np.median(out, axis=0)


def test_a_four_map_calibration_loads_and_applies_as_written():
    """The four maps once shipped (clean and crowded, each split faint / bright) are read
    as written and applied by the map each galaxy's class picks: by the loop reference,
    then scipy's shrink of that map."""
    meta = json.loads(FOUR_MAPS.read_text())
    cal, names = meta["calibration"], meta["param_names"]
    maps = Recalibration.from_calibration(cal, names)
    assert isinstance(maps, Recalibration) and maps.above == cal["crowded"]["above"]
    flux = names.index("flux")
    classes = []
    for part, fields in ((maps.clean, cal), (maps.crowded, cal["crowded"])):
        assert isinstance(part, BrightnessSplit) and part.param == flux
        assert part.below == fields["faint"]["below"]
        classes += [(part.bright, fields), (part.faint, fields["faint"])]
    for spread, fields in classes:
        for key in ("scale", "tail", "knee", "power", "width_ref"):
            np.testing.assert_array_equal(getattr(spread, key), [fields[key][n] for n in names])
        assert spread.shrink == fields["shrink"]
    # clean bright, clean faint, crowded bright, crowded faint
    below = cal["faint"]["below"]
    medians = [below + 0.5, below - 0.5, below + 0.5, below - 0.5]
    rng = np.random.default_rng(30)
    samples = rng.standard_t(5, size=(4, 1001, 3)) * np.array([0.3, 0.05, 0.02])
    samples -= np.median(samples, axis=1, keepdims=True)
    samples[:, :, flux] += np.array(medians)[:, None]
    out = maps.apply(samples, np.array([0.0, 0.1, 0.3, 2.0]))
    for g, (_, fields) in enumerate(classes):
        stretched = np.stack(
            [
                _reference(
                    samples[g, :, j],
                    fields["scale"][n],
                    fields["tail"][n],
                    fields["knee"][n],
                    fields["power"][n],
                    fields["width_ref"][n],
                )
                for j, n in enumerate(names)
            ],
            axis=1,
        )
        expected = _shrunk(stretched, fields["shrink"]) if fields["shrink"] else stretched
        np.testing.assert_allclose(out[g], expected, atol=1e-9)


def test_many_galaxies_at_once_get_what_each_gets_alone():
    """All galaxies of a map are mapped in one call; each must come out as ``gampen
    predict`` maps it, one galaxy at a time by the map it picks."""
    cal = json.loads(FOUR_MAPS.read_text())["calibration"]
    maps = Recalibration.from_calibration(cal, ["bt", "r_e", "flux"])
    rng = np.random.default_rng(31)
    samples = rng.normal(size=(40, 201, 3)) * np.array([0.3, 0.05, 0.02])
    samples[:, :, 2] += rng.uniform(-0.2, 0.2, size=(40, 1))
    crowding = rng.uniform(0.0, 0.3, size=40)
    alone = np.stack([maps.pick(c, s).apply(s) for c, s in zip(crowding, samples, strict=True)])
    np.testing.assert_allclose(maps.apply(samples, crowding), alone, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="zip"):  # one crowding index short
        maps.apply(samples, crowding[:-1])
