"""Streaming datasets and the HDF5 pack: identical tensors, bounded loading, flagged rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.table import Table
from torch.utils.data import DataLoader

from gampen.data.catalog import load_catalog
from gampen.data.dataset import CutoutDataset, PackedDataset
from gampen.data.labels import LabelTransform
from gampen.data.normalize import ArcsinhStretch
from gampen.data.packfile import PackReader, write_pack
from gampen.errors import CatalogError
from gampen.flags import Flag

from .fixtures import galaxy, write_fits

SIZE = 32


@pytest.fixture
def catalog(tmp_path) -> Table:
    """Six galaxies: four good (one oversized), one missing, one NaN-filled."""
    names = []
    for i in range(4):
        write_fits(tmp_path / f"g{i}.fits", galaxy(SIZE + 4 * (i == 3), seed=i).astype(">f4"))
        names.append(f"g{i}.fits")
    names.append("missing.fits")
    write_fits(tmp_path / "nan.fits", np.full((SIZE, SIZE), np.nan, np.float32))
    names.append("nan.fits")
    rng = np.random.default_rng(0)
    return Table(
        {
            "object_id": [f"obj{i}" for i in range(6)],
            "file_name": names,
            "bt": rng.uniform(0, 1, 6),
            "r_e": rng.uniform(0.3, 3, 6),
            "flux": rng.uniform(10, 1000, 6),
        }
    )


TARGETS = ("bt", "r_e", "flux")


def _labels(table: Table) -> LabelTransform:
    return LabelTransform.fit(TARGETS, np.stack([table[c] for c in TARGETS], 1))


def _loaded(table: Table, folder, **options):
    """The catalog as the commands load it, its files in ``folder``."""
    return load_catalog(table, image_dir=folder, targets=TARGETS, **options)


def test_items_and_flags(tmp_path, catalog):
    data = CutoutDataset(
        _loaded(catalog, tmp_path), input_size=SIZE, label_transform=_labels(catalog)
    )
    assert len(data) == 6
    item = data[0]
    assert item["image"].shape == (1, SIZE, SIZE) and item["image"].dtype == torch.float32
    np.testing.assert_allclose(
        item["image"][0].numpy(), np.arcsinh(galaxy(SIZE, seed=0)), rtol=1e-6
    )
    assert item["target"].shape == (3,) and item["flags"] == 0
    assert data[3]["flags"] == Flag.CROPPED
    assert data[4]["flags"] == Flag.UNREADABLE and torch.all(data[4]["image"] == 0)
    assert (
        data[5]["flags"] == Flag.NONFINITE | Flag.EMPTY | Flag.MASKED_CORE
        and data[5]["n_bad_pixels"] == SIZE * SIZE
    )


def test_construction_reads_no_image(tmp_path):
    table = Table({"file_name": [f"never{i}.fits" for i in range(100_000)]})
    data = CutoutDataset(load_catalog(table, image_dir=tmp_path), input_size=SIZE)
    assert len(data) == 100_000  # nothing was opened: every file is missing
    assert data[99_999]["flags"] == Flag.UNREADABLE


def test_cache_serves_memory_copy(tmp_path, catalog):
    data = CutoutDataset(_loaded(catalog, tmp_path), input_size=SIZE, cache=True)
    first = data[0]["image"].clone()
    (tmp_path / "g0.fits").unlink()
    assert torch.equal(data[0]["image"], first)


def test_batch_with_bad_rows_proceeds(tmp_path, catalog):
    data = CutoutDataset(_loaded(catalog, tmp_path), input_size=SIZE)
    batches = list(DataLoader(data, batch_size=4))
    flags = torch.cat([b["flags"] for b in batches])
    assert flags.tolist() == [
        0,
        0,
        0,
        Flag.CROPPED,
        Flag.UNREADABLE,
        Flag.NONFINITE | Flag.EMPTY | Flag.MASKED_CORE,
    ]


def test_training_labels_checked(tmp_path, catalog):
    catalog["r_e"][2] = np.inf
    with pytest.raises(CatalogError, match=r"'r_e' has 1 missing or non-finite.*obj2"):
        _loaded(catalog, tmp_path)
    unlabelled = load_catalog(catalog, image_dir=tmp_path)
    with pytest.raises(CatalogError, match=r"label columns were not read.*\['r_e'\]"):
        CutoutDataset(unlabelled, input_size=SIZE, label_transform=LabelTransform(names=("r_e",)))


def test_pack_gives_identical_tensors(tmp_path, catalog):
    labels = _labels(catalog)
    stretch = ArcsinhStretch(softening=(0.7,))
    loaded = _loaded(catalog, tmp_path, keep_columns="all")
    counts = write_pack(loaded, tmp_path / "train.h5", input_size=SIZE, progress=False)
    assert counts == {"UNREADABLE": 1, "NONFINITE": 1, "CROPPED": 1, "EMPTY": 1, "MASKED_CORE": 1}
    fits_data = CutoutDataset(loaded, input_size=SIZE, stretch=stretch, label_transform=labels)
    pack = load_catalog(tmp_path / "train.h5", images=False, targets=TARGETS)
    pack_data = PackedDataset(tmp_path / "train.h5", pack, stretch=stretch, label_transform=labels)
    assert len(pack_data) == len(fits_data)
    for i in range(len(catalog)):
        a, b = fits_data[i], pack_data[i]
        assert torch.equal(a["image"], b["image"])
        assert torch.equal(a["target"], b["target"])
        assert (a["flags"], a["n_bad_pixels"]) == (b["flags"], b["n_bad_pixels"])
    reader = PackReader(tmp_path / "train.h5")
    assert reader.input_size == SIZE and set(reader.column_names) == {"bt", "r_e", "flux"}


def test_pack_multiband_with_workers(tmp_path):
    cubes = [galaxy(SIZE, seed=i, bands=2) for i in range(6)]
    for i, cube in enumerate(cubes):
        for b, band in enumerate("gr"):
            write_fits(tmp_path / f"{i}_{band}.fits", cube[b])
    table = Table(
        {
            "file_name_g": [f"{i}_g.fits" for i in range(6)],
            "file_name_r": [f"{i}_r.fits" for i in range(6)],
        }
    )
    loaded = load_catalog(table, image_dir=tmp_path, bands=["g", "r"], keep_columns="all")
    write_pack(loaded, tmp_path / "p.h5", input_size=SIZE, bands=["g", "r"], progress=False)
    data = PackedDataset(tmp_path / "p.h5", load_catalog(tmp_path / "p.h5", images=False))
    loader = DataLoader(data, batch_size=3, num_workers=2, multiprocessing_context="fork")
    images = torch.cat([b["image"] for b in loader])
    np.testing.assert_allclose(images.numpy(), np.arcsinh(np.stack(cubes)), rtol=1e-6)
    assert PackReader(tmp_path / "p.h5").bands == ("g", "r")


def test_a_pack_needs_every_column(tmp_path, catalog):
    with pytest.raises(CatalogError, match="a pack needs every column"):
        write_pack(_loaded(catalog, tmp_path), tmp_path / "p.h5", input_size=SIZE)


def test_pack_errors(tmp_path):
    with pytest.raises(CatalogError, match="pack file not found"):
        PackReader(tmp_path / "none.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(CatalogError, match="not a readable gampen pack"):
        PackReader(tmp_path / "junk.h5")
