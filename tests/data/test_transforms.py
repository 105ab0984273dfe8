"""Arcsinh stretch and label transforms: exact round trips, JSON, domain errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
