"""Rotation stability: exact dihedral orientations, known spreads, groups, the model's sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.table import Table

from gampen.evaluation.inputs import load_inputs
from gampen.evaluation.rotation import (
    bundle_sampler,
    group_spread,
    orient,
    orientation_modes,
    relative_std,
    spread,
    summarise_spread,
)
from gampen.model.bundle import load_bundle

from ..synthetic import tiny_bundle

LEVELS = [f"ci{n}_{end}" for n in (68, 95, 99) for end in ("lo", "hi")]


def _numpy_orientations(image: np.ndarray) -> list[np.ndarray]:
    """The 8 orientations by NumPy (the oracle): k quarter turns, then a left-right flip."""
    turned = [np.rot90(image, k, axes=(-2, -1)) for k in range(4)]
    return turned + [np.flip(t, axis=-1) for t in turned]


def test_orientations_are_the_eight_exact_dihedral_images():
    image = torch.arange(20.0).reshape(1, 1, 4, 5)
    got = [orient(image, i).numpy() for i in range(8)]
    for mine, oracle in zip(got, _numpy_orientations(image.numpy()), strict=True):
        np.testing.assert_array_equal(mine, oracle)
    assert len({g.tobytes() for g in got}) == 8  # all distinct for an asymmetric image
    assert all(np.array_equal(np.sort(g, axis=None), np.arange(20.0)) for g in got)
    torch.testing.assert_close(orient(orient(image, 1), 3), image)


def test_modes_of_an_orientation_dependent_sampler_have_the_known_spread():
    images = torch.arange(32.0).reshape(2, 1, 4, 4)

    def corner(
        batch: torch.Tensor, keys: np.ndarray, scalars: torch.Tensor, crowding
    ) -> np.ndarray:
        """Every sample equals the top-left pixel: the mode is that pixel."""
        return np.repeat(batch[:, 0, 0, 0].numpy()[:, None, None], 20, axis=1).astype(float)

    modes, std = orientation_modes(corner, images, torch.zeros(2, 0), progress=False)
    assert modes.shape == (8, 2, 1) and np.all(std == 0)
    for g in range(2):
        oracle = [o[0, 0, 0] for o in _numpy_orientations(images[g].numpy())]
        np.testing.assert_allclose(modes[:, g, 0], oracle)
        s = spread(modes, ["x"])[g, 0]
        assert s == pytest.approx(np.std(oracle, ddof=1))


def test_an_invariant_sampler_has_zero_spread_and_keys_are_shared():
    images = torch.randint(0, 50, (3, 1, 8, 8)).float()  # integers: sums are exact
    seen, given = [], []

    def by_sum(
        batch: torch.Tensor, keys: np.ndarray, scalars: torch.Tensor, crowding
    ) -> np.ndarray:
        seen.append(keys.tolist())
        assert scalars.shape == (len(batch), 1)
        given.append(list(crowding))
        out = []
        for image, key in zip(batch, keys, strict=True):
            noise = np.random.default_rng(int(key)).normal(size=(200, 2))
            out.append(float(image.sum()) + noise * [1.0, 0.1])
        return np.exp(np.array(out) / 1000)  # positive, like r_e

    scalars = torch.ones(3, 1)
    crowd = np.array([0.0, 0.5, 1.0])
    modes, std = orientation_modes(by_sum, images, scalars, crowd, batch_size=2, progress=False)
    assert np.all(spread(modes, ["r_e", "x"]) == 0)
    assert len(seen) == 16 and all(s == seen[0] for s in seen[::2])
    assert all(a + b == list(crowd) for a, b in zip(given[::2], given[1::2], strict=True))
    assert np.all(std > 0)


def test_fractional_spread_and_summary():
    modes = np.ones((8, 2, 2))
    modes[4:, 0, 0] = 2.0  # r_e of galaxy 0: four at 1, four at 2
    modes[:, 1, 1] = np.arange(8) / 10  # bt of galaxy 1
    s = spread(modes, ["r_e", "bt"])
    assert s[0, 0] == pytest.approx(np.std([1] * 4 + [2] * 4, ddof=1) / 1.5)
    assert s[1, 1] == pytest.approx(np.std(np.arange(8) / 10, ddof=1))
    assert s[1, 0] == 0 and s[0, 1] == 0
    std = relative_std(np.full((2, 2), 0.3), modes, ["r_e", "bt"])
    np.testing.assert_allclose(std, [[0.2, 0.3], [0.3, 0.3]])
    summary = summarise_spread(s, ["r_e", "bt"], posterior_std=std)
    assert summary["r_e"]["kind"] == "fractional" and summary["bt"]["kind"] == "absolute"
    assert summary["r_e"]["median_spread"] == pytest.approx(s[0, 0] / 2)
    assert summary["r_e"]["median_spread_over_posterior_std"] == pytest.approx(s[0, 0] / 0.2 / 2)


def test_rendered_rotation_groups_from_the_table():
    predictions = Table({"object_id": np.arange(6), "flags": np.zeros(6, dtype=int)})
    predictions["r_e_mode"] = [1.0, 1.2, 0.8, 2.0, 2.0, 5.0]
    predictions["bt_mode"] = [0.1, 0.1, 0.1, 0.2, 0.4, 0.3]
    for p in ("r_e", "bt"):
        predictions[f"{p}_median"] = predictions[f"{p}_mode"]
        for c in LEVELS:
            predictions[f"{p}_{c}"] = predictions[f"{p}_mode"]
    truth = Table({"object_id": np.arange(6), "r_e": np.ones(6), "bt": np.ones(6) / 2})
    assert group_spread(load_inputs(predictions, truth)) is None
    truth["rotation_group"] = ["a", "a", "a", "b", "b", "c"]  # c has one member: no spread
    summary, spreads = group_spread(load_inputs(predictions, truth))
    assert spreads.shape == (2, 2)
    np.testing.assert_allclose(spreads[:, 0], [0.2, 0.0])  # std 0.2 about mean 1; none
    np.testing.assert_allclose(spreads[:, 1], [0.0, np.std([0.2, 0.4], ddof=1)], atol=1e-12)
    assert summary["r_e"] == {
        "n_groups": 2,
        "median_spread": pytest.approx(0.1),
        "p90_spread": pytest.approx(0.18),
        "kind": "fractional",
    }


def test_bundle_sampler_gives_physical_samples_with_the_bundle_calibration(tmp_path):
    torch.set_num_threads(1)
    bundle = load_bundle(tiny_bundle(tmp_path))
    images = torch.randn(2, 1, 32, 32)
    keys = np.array([5, 6])
    plain = bundle_sampler(bundle, n_passes=3, n_samples=40)(images, keys, torch.zeros(2, 0))
    assert plain.shape == (2, 40, 3)
    assert np.all((plain[..., 0] >= 0) & (plain[..., 0] <= 1)) and np.all(plain[..., 1:] > 0)
    bundle.calibration = {"scale": {"bt": 1.0, "r_e": 2.0, "flux": 1.0}}
    wide = bundle_sampler(bundle, n_passes=3, n_samples=40)(images, keys, torch.zeros(2, 0))
    np.testing.assert_allclose(wide[..., 0], plain[..., 0], rtol=1e-5)
    log_plain, log_wide = np.log(plain[..., 1]), np.log(wide[..., 1])
    centred = log_plain - log_plain.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(
        log_wide - log_wide.mean(axis=1, keepdims=True), 2 * centred, rtol=1e-4, atol=1e-5
    )
