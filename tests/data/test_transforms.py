"""Arcsinh stretch and label transforms: exact round trips, JSON, domain errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import special

from gampen.data.labels import LabelTransform
from gampen.data.normalize import ArcsinhStretch
from gampen.errors import CatalogError, ConfigError


def test_stretch_default_is_plain_arcsinh():
    x = np.linspace(-5, 500, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    np.testing.assert_allclose(ArcsinhStretch()(x), np.arcsinh(x), rtol=1e-6)


def test_stretch_per_band_and_inverse():
    x = np.random.default_rng(0).normal(0, 10, (3, 8, 8)).astype(np.float32)
    stretch = ArcsinhStretch(softening=(0.5, 1.0, 2.0))
    y = stretch(x)
    np.testing.assert_allclose(y[2], np.arcsinh(x[2] / 2.0), rtol=1e-6)
    np.testing.assert_allclose(stretch.inverse(y), x, rtol=1e-5, atol=1e-5)
    assert ArcsinhStretch.from_dict(json.loads(json.dumps(stretch.to_dict()))) == stretch
    with pytest.raises(ConfigError, match="another band count"):
        stretch(x[:2])


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_stretch_rejects_bad_softening(bad):
    with pytest.raises(ConfigError, match="softening must be positive"):
        ArcsinhStretch(softening=(bad,))


def _labels(n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(3)
    bt = rng.uniform(0, 1, n)
    bt[:2] = [0.0, 1.0]  # the end points must survive too
    return np.stack([bt, np.exp(rng.normal(0, 1, n)), 10 ** rng.uniform(1, 5, n)], axis=1)


def test_label_round_trip_exact_and_standardised():
    values = _labels()
    transform = LabelTransform.fit(["bt", "r_e", "flux"], values)
    assert transform.kinds == ("logit", "log", "log")
    z = transform.forward(values)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(transform.inverse(z), values, rtol=1e-12, atol=1e-12)


def test_label_json_round_trip():
    transform = LabelTransform.fit(["bt", "r_e", "flux", "n"], np.c_[_labels(), np.ones(500)])
    again = LabelTransform.from_dict(json.loads(json.dumps(transform.to_dict())))
    assert again.kinds[-1] == "identity" and again.std[-1] == 1.0  # constant column kept finite
    z = np.random.default_rng(1).normal(size=(7, 4))
    np.testing.assert_array_equal(again.inverse(z), transform.inverse(z))


def test_logit_end_points_finite_and_inverse_clipped():
    transform = LabelTransform(names=("bt",))
    z = transform.forward(np.array([[0.0], [1.0]]))
    np.testing.assert_allclose(z[:, 0], [np.log(1e-3 / (1 - 1e-3)), -np.log(1e-3 / (1 - 1e-3))])
    extreme = transform.inverse(np.array([[-50.0], [50.0]]))
    np.testing.assert_array_equal(extreme[:, 0], [0.0, 1.0])


def test_label_domain_errors_name_the_column():
    transform = LabelTransform(names=("bt", "r_e"))
    with pytest.raises(CatalogError, match=r"'bt'.*got 1\.5.*\[0, 1\]"):
        transform.forward(np.array([[1.5, 1.0]]))
    with pytest.raises(CatalogError, match=r"'r_e'.*got -0\.2.*positive"):
        transform.forward(np.array([[0.5, -0.2]]))
    with pytest.raises(ConfigError, match="wrong number of columns"):
        transform.forward(np.ones((2, 3)))
    with pytest.raises(ConfigError, match="unknown transform"):
        LabelTransform(names=("bt",), kinds=("sqrt",))


# --- Known answers for the label transforms: scipy.special / numpy as the oracle. ---


@pytest.mark.parametrize("eps", [1e-3, 0.05, 1e-9, 0.4999])
def test_logit_forward_and_inverse_match_scipy(eps):
    transform = LabelTransform(names=("bt",), eps=eps, mean=np.array([0.7]), std=np.array([1.9]))
    bt = np.array([0.0, 1e-4, 0.2, 0.5, 0.93, 1.0])[:, None]
    expected = (special.logit(eps + (1 - 2 * eps) * bt) - 0.7) / 1.9
    np.testing.assert_allclose(transform.forward(bt), expected, rtol=1e-12, atol=1e-12)
    # The inverse over a wide range, including z beyond the clip and huge |z| (no overflow).
    z = np.array([-800.0, -20.0, -3.0, -0.4, 0.0, 0.4, 3.0, 20.0, 800.0])[:, None]
    p = special.expit(z * 1.9 + 0.7)
    expected_bt = np.clip((p - eps) / (1 - 2 * eps), 0.0, 1.0)
    np.testing.assert_allclose(transform.inverse(z), expected_bt, rtol=1e-12, atol=1e-15)
    assert np.all(np.isfinite(transform.inverse(z)))


def test_inverse_clips_only_outside_the_squeezed_range():
    """Values mapping inside (eps, 1 - eps) are not clipped; beyond, they are 0 or 1 exactly."""
    transform = LabelTransform(names=("bt",))
    edge = special.logit(1e-3)  # the standardised value of bt = 0 (mean 0, std 1)
    inside = transform.inverse(np.array([[edge + 0.01], [-edge - 0.01]]))[:, 0]
    assert 0 < inside[0] < 1e-4 and 1 - 1e-4 < inside[1] < 1
    outside = transform.inverse(np.array([[edge - 0.01], [-edge + 0.01]]))[:, 0]
    np.testing.assert_array_equal(outside, [0.0, 1.0])


def test_log_and_identity_transforms_match_numpy():
    transform = LabelTransform(
        names=("r_e", "flux", "n"), mean=np.array([0.1, 5.0, -2.0]), std=np.array([0.5, 2.0, 3.0])
    )
    assert transform.kinds == ("log", "log", "identity")
    values = np.array([[0.3, 1e3, -4.0], [2.0, 10.0, 7.5]])
    expected = (np.c_[np.log(values[:, :2]), values[:, 2]] - [0.1, 5.0, -2.0]) / [0.5, 2.0, 3.0]
    np.testing.assert_allclose(transform.forward(values), expected, rtol=1e-13, atol=1e-13)
    z = np.random.default_rng(0).normal(size=(2, 5, 3))  # (galaxies, samples, k)
    t = z * [0.5, 2.0, 3.0] + [0.1, 5.0, -2.0]
    expected_back = np.concatenate([np.exp(t[..., :2]), t[..., 2:]], axis=-1)
    np.testing.assert_allclose(transform.inverse(z), expected_back, rtol=1e-13, atol=0)


def test_fit_uses_the_population_mean_and_std_of_the_transformed_labels():
    values = _labels(200)
    values[:, 2] = 10 + 1e-3 * np.arange(200)  # a small but real spread is kept as it is
    transform = LabelTransform.fit(["bt", "r_e", "flux"], values, eps=0.01)
    t = np.c_[special.logit(0.01 + 0.98 * values[:, 0]), np.log(values[:, 1:])]
    np.testing.assert_allclose(transform.mean, t.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(transform.std, t.std(axis=0, ddof=0), rtol=1e-12)
    assert transform.eps == 0.01 and transform.names == ("bt", "r_e", "flux")
    assert 0 < transform.std[2] < 0.01
    kinds = LabelTransform.fit(["a", "b"], np.ones((4, 2)) * [1.0, 2.0], kinds=["log", "log"])
    assert kinds.kinds == ("log", "log")
    np.testing.assert_array_equal(kinds.std, [1.0, 1.0])  # constant columns: std 1, not 0
    np.testing.assert_allclose(kinds.mean, [0.0, np.log(2.0)])


def test_defaults_and_conversions():
    transform = LabelTransform(names=["bt", "r_e", "flux", "sersic_n"])
    assert transform.names == ("bt", "r_e", "flux", "sersic_n")
    assert transform.kinds == ("logit", "log", "log", "identity")
    assert transform.eps == 1e-3
    np.testing.assert_array_equal(transform.mean, np.zeros(4))
    np.testing.assert_array_equal(transform.std, np.ones(4))
    given = LabelTransform(names=("x",), mean=[1], std=[2])
    assert given.mean.dtype == np.float64 and given.std.dtype == np.float64
    assert given.to_dict() == {
        "names": ["x"],
        "kinds": ["identity"],
        "eps": 1e-3,
        "mean": [1.0],
        "std": [2.0],
    }


@pytest.mark.parametrize("eps", [0.0, 0.5, -1e-3, 0.7, np.nan])
def test_logit_eps_out_of_range_is_refused(eps):
    with pytest.raises(ConfigError) as error:
        LabelTransform(names=("bt",), eps=eps)
    assert str(error.value) == f"logit epsilon out of range; got {eps!r}; expected (0, 0.5)"


def test_config_errors_give_the_full_message():
    with pytest.raises(ConfigError) as error:
        LabelTransform(names=("bt", "r_e"), kinds=("logit",))
    assert str(error.value) == (
        "one transform per parameter needed; got ('logit',); expected 2 entries"
    )
    with pytest.raises(ConfigError) as error:
        LabelTransform(names=("bt",), kinds=("sqrt",))
    assert str(error.value) == (
        "unknown transform for 'bt'; got 'sqrt'; expected ('logit', 'log', 'identity')"
    )
    with pytest.raises(ConfigError) as error:
        LabelTransform(names=("bt", "r_e")).forward(np.ones((2, 3)))
    assert str(error.value) == (
        "label array has the wrong number of columns; got 3; expected 2 (('bt', 'r_e'))"
    )


@pytest.mark.parametrize(
    ("column", "bad", "message"),
    [
        (
            0,
            [1.5, -0.5],
            "label 'bt' has 2 value(s) outside its domain; got 1.5; expected values in [0, 1]",
        ),
        (
            0,
            [np.nan],
            "label 'bt' has 1 value(s) outside its domain; got nan; expected values in [0, 1]",
        ),
        (
            1,
            [0.0],
            "label 'r_e' has 1 value(s) outside its domain; got 0.0; expected positive values",
        ),
        (
            1,
            [-2.0, 3.0, -1.0],
            "label 'r_e' has 2 value(s) outside its domain; got -2.0; expected positive values",
        ),
    ],
)
def test_label_domain_errors_give_count_first_bad_value_and_domain(column, bad, message):
    values = np.full((len(bad), 2), 0.5)
    values[:, column] = bad
    with pytest.raises(CatalogError) as error:
        LabelTransform(names=("bt", "r_e")).forward(values)
    assert str(error.value) == message
    # The domain boundaries themselves are accepted.
    edges = LabelTransform(names=("bt", "r_e")).forward(np.array([[0.0, 1e-300], [1.0, 5.0]]))
    assert np.all(np.isfinite(edges))


def test_integer_and_float32_inputs_give_float64():
    """Labels read as integers (bt = 0 or 1, integer fluxes) must not be truncated."""
    transform = LabelTransform(names=("bt", "flux"))
    ints = np.array([[0, 300], [1, 7]])
    np.testing.assert_array_equal(transform.forward(ints), transform.forward(ints.astype(float)))
    assert transform.forward(ints).dtype == np.float64
    fitted = LabelTransform.fit(["bt", "flux"], ints)
    np.testing.assert_array_equal(fitted.mean, LabelTransform.fit(["bt", "flux"], 1.0 * ints).mean)
    z32 = np.array([[0.1, 2.3], [-4.0, 0.7]], dtype=np.float32)
    back = transform.inverse(z32)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, transform.inverse(z32.astype(np.float64)))


def test_many_leading_axes():
    """(galaxies, samples, k) arrays: the last axis is the parameter axis."""
    transform = LabelTransform(names=("bt", "r_e"), mean=np.array([0.5, 1.0]), std=[2.0, 3.0])
    values = _labels(12)[:, :2].reshape(3, 4, 2)
    flat = transform.forward(values.reshape(-1, 2)).reshape(3, 4, 2)
    np.testing.assert_array_equal(transform.forward(values), flat)
    with pytest.raises(ConfigError) as error:
        transform.forward(np.ones((3, 2, 5)))
    assert str(error.value) == (
        "label array has the wrong number of columns; got 5; expected 2 (('bt', 'r_e'))"
    )


def test_json_round_trip_keeps_custom_kinds_and_eps():
    transform = LabelTransform(names=("bt", "r_e"), kinds=("identity", "logit"), eps=0.02)
    again = LabelTransform.from_dict(json.loads(json.dumps(transform.to_dict())))
    assert again.kinds == ("identity", "logit") and again.eps == 0.02
