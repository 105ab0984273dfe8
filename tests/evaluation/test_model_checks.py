"""Model-based checks on a tiny bundle: shown galaxies, the rotation test, their outputs."""

from __future__ import annotations

import numpy as np
import pytest

from gampen.evaluation.images import cutout_dataset
from gampen.evaluation.inputs import load_inputs
from gampen.evaluation.model_checks import rotation_outputs, rotation_stability, show_galaxies
from gampen.evaluation.rotation import N_ORIENTATIONS
from gampen.model.bundle import load_bundle


@pytest.fixture(scope="module")
def setup(model_inputs):
    m = model_inputs
    matched = load_inputs(m.predictions, m.truth, samples=m.samples)
    bundle = load_bundle(m.bundle)
    return matched, bundle, cutout_dataset(matched, bundle, image_dir=None)


def test_show_galaxies_writes_one_figure_each_and_the_grid(tmp_path, setup):
    matched, bundle, dataset = setup
    written = show_galaxies(
        matched,
        bundle,
        dataset,
        n=2,
        out=tmp_path,
        rng=np.random.default_rng(0),
        n_passes=2,
        n_samples=30,
    )
    assert len(written) == 3 and written[-1] == "cutout_grid.png"
    assert all((tmp_path / name).stat().st_size > 1000 for name in written)


def test_shown_galaxies_without_a_samples_file_are_sampled_by_the_model(
    tmp_path, setup, model_inputs
):
    _, bundle, _ = setup
    matched = load_inputs(model_inputs.predictions, model_inputs.truth)
    dataset = cutout_dataset(matched, bundle, image_dir=None)
    written = show_galaxies(
        matched,
        bundle,
        dataset,
        n=1,
        out=tmp_path,
        rng=np.random.default_rng(0),
        n_passes=2,
        n_samples=30,
    )
    assert written[0].startswith("show_")


def test_rotation_stability_and_its_outputs(tmp_path, setup):
    matched, bundle, dataset = setup
    result = rotation_stability(
        matched,
        bundle,
        dataset,
        n=3,
        rng=np.random.default_rng(0),
        n_passes=2,
        n_samples=30,
        progress=False,
    )
    summary, spreads = result
    assert summary["settings"] == {"n_galaxies": 3, "n_passes": 2, "n_samples": 30}
    assert spreads.shape == (3, 3) and np.all(spreads >= 0)
    assert summary["params"]["r_e"]["kind"] == "fractional" and N_ORIENTATIONS == 8
    metrics, written = rotation_outputs(matched, result, ["bt", "r_e", "flux"], out=tmp_path)
    assert set(metrics) == {"dihedral", "rendered"} and written == ["rotation.png"]
    assert metrics["rendered"]["params"]["bt"]["n_groups"] == 4


def test_rotation_outputs_from_groups_alone_and_from_nothing(tmp_path, setup):
    matched, _, _ = setup
    metrics, written = rotation_outputs(matched, None, list(matched.params), out=tmp_path)
    assert set(metrics) == {"rendered"} and written == ["rotation.png"]
    matched.truth.remove_column("rotation_group")
    assert rotation_outputs(matched, None, list(matched.params), out=tmp_path) == ({}, [])
    matched.truth["rotation_group"] = np.arange(len(matched)) // 3
