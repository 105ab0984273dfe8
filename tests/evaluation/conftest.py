"""A tiny predicted set for the model-based evaluation tests: cutouts, bundle, predictions;
a bundle marked as trained on a given catalog."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from gampen.data.catalog import load_catalog
from gampen.data.provenance import training_marks

from ..synthetic import tiny_bundle, write_labelled_set
from ..threads import one_torch_thread


@dataclass
class ModelInputs:
    """Files of one tiny run of ``gampen predict`` and its truth catalog."""

    truth: Path
    predictions: Path
    samples: Path
    bundle: Path


_one_torch_thread = pytest.fixture(autouse=True)(one_torch_thread)


@pytest.fixture(scope="session")
def model_inputs(tmp_path_factory: pytest.TempPathFactory) -> ModelInputs:
    """12 round galaxies, an untrained tiny bundle and its predictions with samples."""
    from gampen.infer.predict import PredictOptions, predict

    folder = tmp_path_factory.mktemp("model_inputs")
    catalog = write_labelled_set(folder / "data", n=12, seed=3)
    bundle = tiny_bundle(folder)
    truth = Table.read(catalog)
    truth["mag"] = 27.0 - 2.5 * np.log10(truth["flux"])
    truth["n_neighbours"] = np.arange(12) % 3
    truth["rotation_group"] = np.arange(12) // 3
    truth_path = folder / "data" / "truth.csv"
    truth.write(truth_path)
    options = PredictOptions(
        n_passes=3,
        n_samples=40,
        batch_size=12,
        chunk_size=12,
        num_workers=0,
        progress=False,
        samples_out=str(folder / "samples.h5"),
    )
    predict(catalog, out=folder / "pred.parquet", model=bundle, options=options)
    return ModelInputs(truth_path, folder / "pred.parquet", folder / "samples.h5", bundle)


@pytest.fixture
def trained_on() -> Callable[[Path, Path, Path], Path]:
    """``make(bundle, folder, catalog)``: a copy of ``bundle`` in ``folder`` whose provenance
    marks ``catalog`` as its training set (as ``gampen train`` would)."""

    def make(bundle: Path, folder: Path, catalog: Path) -> Path:
        loaded = load_catalog(catalog, images=False, targets=("bt", "r_e", "flux"))
        marks = training_marks(loaded.labels, loaded.given_ids, catalog)
        copy = folder / "trained-model"
        shutil.copytree(bundle, copy)
        meta = json.loads((copy / "gampen.json").read_text())
        meta["provenance"].update(marks)
        (copy / "gampen.json").write_text(json.dumps(meta))
        return copy

    return make
