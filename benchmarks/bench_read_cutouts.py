"""Benchmark: how fast the data layer streams 96x96 FITS cutouts (and the HDF5 pack).

    python benchmarks/bench_read_cutouts.py [--n 10000] [--workers 0 2] [--dir DIR]

Writes N single-band cutouts (once; reused if --dir already holds them), then times a
full pass through ``CutoutDataset`` with a DataLoader for each worker count, packing
them with ``write_pack``, and a pass through ``PackedDataset``.  Prints cutouts/s and the
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from torch.utils.data import DataLoader

from gampen.data.catalog import load_catalog
from gampen.data.dataset import CutoutDataset, PackedDataset
from gampen.data.packfile import write_pack

SIZE = 96


def make_cutouts(folder: Path, n: int) -> Table:
    """Write ``n`` 96x96 float32 HSC-like cutouts unless they already exist: a round
    exponential galaxy (mag 20, r_e 0.8 arcsec) in sky noise, with the header a survey
    cutout has (pixel scale, zero point, a TAN WCS) and a ``PSF`` HDU, so every galaxy is
    read, checked against the model's contract and predicted, none skipped as flagged."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    disk = np.exp(-1.678 * np.hypot(x, y) / 4.8)
    galaxy = 631.0 * disk / disk.sum()
    degrees = 0.168 / 3600
    header = fits.Header(
        {"PIXSCALE": 0.168, "MAGZP": 27.0, "BUNIT": "adu", "CTYPE1": "RA---TAN"}
        | {"CTYPE2": "DEC--TAN", "CRPIX1": 48.5, "CRPIX2": 48.5, "CRVAL1": 150.0}
        | {"CRVAL2": 2.0, "CD1_1": -degrees, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": degrees}
    )
    names = [f"{i:07d}.fits" for i in range(n)]
    for name in names:
        path = folder / name
        if not path.exists():
            image = galaxy + rng.normal(0, 0.07, (SIZE, SIZE))
            primary = fits.PrimaryHDU(image.astype(np.float32), header=header)
            fits.HDUList([primary, psf_hdu()]).writeto(path)
    table = Table({"object_id": np.arange(n), "file_name": names})
    table["psf_fwhm"] = rng.uniform(0.5, 0.9, n)
    return table


def psf_hdu(fwhm: float = 0.7, beta: float = 3.0, size: int = 41) -> fits.ImageHDU:
    """A round Moffat PSF image (unit sum) as the ``PSF`` HDU that ``gampen simulate``
    writes, so models that take PSF images pay for reading and measuring it."""
    alpha = fwhm / 0.168 / (2 * np.sqrt(2 ** (1 / beta) - 1))
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    psf = (1 + (x**2 + y**2) / alpha**2) ** -beta
    header = fits.Header({"EXTNAME": "PSF", "PIXSCALE": 0.168, "PSF_FWHM": fwhm})
    return fits.ImageHDU((psf / psf.sum()).astype(np.float32), header=header)


def rate(dataset, workers: int) -> float:
    """Cutouts per second for one full DataLoader pass."""
    loader = DataLoader(dataset, batch_size=256, num_workers=workers)
    start = time.perf_counter()
    count = sum(len(batch["index"]) for batch in loader)
    return count / (time.perf_counter() - start)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--dir", type=Path, help="where to keep the cutouts (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        start = time.perf_counter()
        table = make_cutouts(folder / "cutouts", args.n)
        print(f"prepared {args.n} cutouts in {time.perf_counter() - start:.1f} s")
        catalog = load_catalog(table, image_dir=folder / "cutouts", keep_columns="all")
        data = CutoutDataset(catalog, input_size=SIZE)
        for workers in args.workers:
            print(f"FITS stream, {workers} worker(s): {rate(data, workers):8.0f} cutouts/s")
        start = time.perf_counter()
        write_pack(catalog, folder / "pack.h5", input_size=SIZE, progress=False)
        print(f"pack written:             {args.n / (time.perf_counter() - start):8.0f} cutouts/s")
        pack = load_catalog(folder / "pack.h5", images=False)
        packed = PackedDataset(folder / "pack.h5", pack)
        for workers in args.workers:
            print(f"pack stream, {workers} worker(s): {rate(packed, workers):8.0f} cutouts/s")
        print(f"peak RSS (main process): {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
