"""The cutouts of matched galaxies as the model sees them, for the model-based checks.

Images are found as ``gampen predict`` finds them (``file_name`` relative to
``--image-dir``, else the truth catalog's folder or its ``cutouts/`` sub-folder), read
and stretched with the bundle's own settings.  A cutout that cannot be read is an error
here: these checks run on a few chosen galaxies, and a silent gap would mislead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from astropy.table import Table

from gampen.data.dataset import CutoutDataset
from gampen.errors import CatalogError, CutoutError
from gampen.evaluation.inputs import Matched
from gampen.flags import describe, is_fatal
from gampen.infer.predict import bundle_catalog, bundle_dataset
from gampen.model.bundle import Bundle


def cutout_dataset(
    matched: Matched, bundle: Bundle, *, image_dir: str | Path | None
) -> CutoutDataset:
    """A dataset over the matched galaxies' cutouts, stretched as the bundle expects: the
    catalog of their truth rows and file names, read as the bundle reads catalogs."""
    catalog = bundle_catalog(
        bundle, _with_file_names(matched), image_dir=None if image_dir is None else str(image_dir)
    )
    return bundle_dataset(bundle, catalog)


def load_images(
    dataset: CutoutDataset, positions: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Stretched images (m, bands, size, size) of the given matched positions, their
    scalar inputs (m, n_scalars) and crowding indices (m,)."""
    images, scalars, crowding = [], [], []
    for i in np.asarray(positions, dtype=np.int64).tolist():
        item = dataset[i]
        if is_fatal(item["flags"]):
            raise CutoutError(
                dataset.paths(i)[0],
                f"cannot be used ({', '.join(describe(item['flags']))}); check --image-dir",
                flag=item["flags"],
            )
        images.append(item["image"])
        scalars.append(item["scalars"])
        crowding.append(item["crowding"])
    return torch.stack(images), torch.stack(scalars), np.array(crowding, dtype=np.float64)


def _with_file_names(matched: Matched) -> Table:
    """The truth rows with the ``file_name`` column(s) (from the predictions if need be),
    known as the truth catalog's (whose folder the file names are relative to)."""
    table = matched.truth.copy(copy_data=False)
    table.meta["gampen_source"] = matched.truth_source
    names = [c for c in matched.predictions.colnames if c.startswith("file_name")]
    for name in names:
        if name not in table.colnames:
            table[name] = matched.predictions[name]
    if not any(c.startswith("file_name") for c in table.colnames):
        raise CatalogError(
            "neither the truth catalog nor the predictions name the cutout files",
            allowed="a 'file_name' column (as gampen simulate and gampen predict write)",
        )
    return table
