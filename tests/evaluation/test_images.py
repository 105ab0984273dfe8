"""Finding and reading the matched galaxies' cutouts as the bundle expects."""

from __future__ import annotations

import numpy as np
import pytest

from gampen.errors import CatalogError, CutoutError
from gampen.evaluation.images import cutout_dataset, load_images
from gampen.evaluation.inputs import load_inputs
from gampen.model.bundle import load_bundle


def test_images_found_beside_the_truth_catalog_and_stretched(model_inputs):
    m = model_inputs
    matched = load_inputs(m.predictions, m.truth)
    bundle = load_bundle(m.bundle)
    dataset = cutout_dataset(matched, bundle, image_dir=None)
    images, scalars, crowding = load_images(dataset, np.array([0, 5]))
    assert images.shape == (2, 1, 32, 32) and scalars.shape == (2, 0)
    item = dataset[5]
    np.testing.assert_array_equal(images[1].numpy(), item["image"].numpy())
    assert crowding.shape == (2,) and crowding[1] == item["crowding"]


def test_file_names_come_from_the_predictions_when_the_truth_lacks_them(model_inputs):
    m = model_inputs
    matched = load_inputs(m.predictions, m.truth)
    matched.truth.remove_column("file_name")
    bundle = load_bundle(m.bundle)
    cutouts = m.truth.parent / "cutouts"
    dataset = cutout_dataset(matched, bundle, image_dir=cutouts)
    assert load_images(dataset, np.array([1]))[0].shape == (1, 1, 32, 32)
    matched.predictions.remove_column("file_name")
    with pytest.raises(CatalogError, match="name the cutout files"):
        cutout_dataset(matched, bundle, image_dir=None)


def test_a_missing_cutout_is_an_error_naming_the_file(model_inputs, tmp_path):
    m = model_inputs
    matched = load_inputs(m.predictions, m.truth)
    bundle = load_bundle(m.bundle)
    dataset = cutout_dataset(matched, bundle, image_dir=tmp_path)
    with pytest.raises(CutoutError, match="check --image-dir"):
        load_images(dataset, np.array([0]))
    with pytest.raises(CatalogError, match="image directory not found"):
        cutout_dataset(matched, bundle, image_dir=tmp_path / "nope")
