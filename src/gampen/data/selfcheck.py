"""A self-check of the data layer on cutouts it makes itself: good, cropped and broken.

It is what the README's first command runs until a default model ships: it writes a
small catalog with one example of each problem gampen must survive, streams it through
the dataset, packs it, and checks that the pack gives the same tensors as the FITS files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from astropy.io import fits
from astropy.table import Table

from gampen.data.catalog import load_catalog, write_table
from gampen.data.dataset import CutoutDataset, PackedDataset
from gampen.data.labels import LabelTransform
from gampen.data.packfile import write_pack
from gampen.flags import describe

SIZE = 96


def blob(size: int, *, r_e: float, flux: float, rng: np.random.Generator) -> np.ndarray:
    """A noisy round exponential galaxy at the centre of a ``size`` x ``size`` image."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(x, y)
    profile = np.exp(-1.678 * r / r_e)
    image = flux * profile / profile.sum() + rng.normal(0, 0.05, (size, size))
    return image.astype(np.float32)


def make_examples(folder: Path, *, seed: int = 0) -> Table:
    """Write example cutouts (good and broken) and their catalog; returns the catalog."""
    rng = np.random.default_rng(seed)
    cutouts = folder / "cutouts"
    cutouts.mkdir(parents=True, exist_ok=True)
    rows = []

    def add(name: str, data: np.ndarray | bytes | None, note: str) -> None:
        path = cutouts / f"{name}.fits"
        if isinstance(data, np.ndarray):
            fits.PrimaryHDU(data).writeto(path, overwrite=True)
        elif isinstance(data, bytes):
            path.write_bytes(data)
        rows.append((name, f"{name}.fits", note))

    for i in range(4):
        add(f"good{i}", blob(SIZE, r_e=3 + 2 * i, flux=100.0 * (i + 1), rng=rng), "good")
    add("big", blob(SIZE + 8, r_e=4, flux=200.0, rng=rng).astype(">f4"), "larger: cropped")
    nan = blob(SIZE, r_e=4, flux=150.0, rng=rng)
    nan[10:14, 20:30] = np.nan
    add("nan", nan, "40 NaN pixels")
    add("blank", np.zeros((SIZE, SIZE), np.float32), "all zero")
    add("small", blob(SIZE // 2, r_e=3, flux=100.0, rng=rng), "too small")
    add("missing", None, "file absent")
    full = (cutouts / "good0.fits").read_bytes()
    add("truncated", full[: len(full) // 2], "truncated file")
    table = Table(rows=rows, names=("object_id", "file_name", "note"))
    table["r_e"] = rng.uniform(0.5, 3.0, len(table))
    table["flux"] = rng.uniform(50, 500, len(table))
    table["bt"] = rng.uniform(0, 1, len(table))
    write_table(table, folder / "catalog.csv")
    return table


def run_selfcheck(folder: Path) -> bool:
    """Make the examples, read them both ways, print a report; True when all checks hold."""
    table = make_examples(folder)
    labels = LabelTransform.fit(
        ["bt", "r_e", "flux"], np.stack([table[c] for c in ("bt", "r_e", "flux")], 1)
    )
    targets = ("bt", "r_e", "flux")
    catalog = load_catalog(table, image_dir=folder / "cutouts", targets=targets, keep_columns="all")
    streamed = CutoutDataset(catalog, input_size=SIZE, label_transform=labels)
    counts = write_pack(catalog, folder / "pack.h5", input_size=SIZE, progress=False)
    pack = load_catalog(folder / "pack.h5", images=False, targets=targets)
    packed = PackedDataset(folder / "pack.h5", pack, label_transform=labels)
    print(f"{'object_id':<10} {'expected':<16} flags")
    same = True
    for i in range(len(table)):
        a, b = streamed[i], packed[i]
        same &= bool(torch.equal(a["image"], b["image"]) and a["flags"] == b["flags"])
        name, note = table["object_id"][i], table["note"][i]
        print(f"{name:<10} {note:<16} {a['flags']:>3} {describe(a['flags'])}")
    print(f"flag counts: {counts}")
    print(f"pack == FITS tensors: {same}")
    print("self-check", "passed" if same else "FAILED", f"(files in {folder})")
    return same
