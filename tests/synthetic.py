"""Tiny labelled training sets made by the tests themselves (no simulator, no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

#: Small widths so that training tests take seconds on two CPU cores.
TINY_NETWORK = {"widths": [8, 8, 16, 16], "hidden": 16, "stn_widths": [4, 8]}


def write_labelled_set(
    folder: Path, *, n: int = 96, size: int = 32, seed: int = 0, psf: bool = False
) -> Path:
    """Round exponential galaxies whose size and flux the labels describe; returns info.csv.
    With ``psf``, each cutout has a ``PSF`` HDU: a Gaussian of the row's ``psf_fwhm``
    (the galaxy is not convolved with it) and a random axis ratio in [0.7, 1]."""
    rng = np.random.default_rng(seed)
    (folder / "cutouts").mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(x, y)
    header = fits.Header({"PIXSCALE": 0.2, "MAGZP": 27.0})
    fwhm = np.random.default_rng(seed + 1).uniform(0.5, 0.9, n)  # a condition
    ratios = np.random.default_rng(seed + 2).uniform(0.7, 1.0, n)
    rows = []
    for i in range(n):
        r_e_pix, flux, bt = rng.uniform(1.5, 6.0), 10 ** rng.uniform(1.5, 3.0), rng.uniform(0, 1)
        profile = np.exp(-1.678 * r / r_e_pix)
        image = flux * profile / profile.sum() + rng.normal(0, 0.05, (size, size))
        name = f"{i:04d}.fits"
        hdus = [fits.PrimaryHDU(image.astype(np.float32), header=header)]
        if psf:
            hdus.append(psf_hdu(fwhm[i], ratios[i]))
        fits.HDUList(hdus).writeto(folder / "cutouts" / name)
        rows.append((i, name, bt, 0.2 * r_e_pix, flux))
    path = folder / "info.csv"
    table = Table(rows=rows, names=["object_id", "file_name", "bt", "r_e", "flux"])
    table["psf_fwhm"] = fwhm
    table.write(path)
    return path


def psf_hdu(fwhm: float, q: float = 1.0, *, scale: float = 0.2, side: int = 21) -> fits.ImageHDU:
    """A ``PSF`` HDU: a unit-sum Gaussian of ``fwhm`` arcsec and axis ratio ``q`` (its
    major axis along x), sampled at ``scale`` arcsec/px, header ``PIXSCALE``."""
    y, x = (np.mgrid[:side, :side] - (side - 1) / 2) * scale
    sigma = fwhm / 2.3548
    image = np.exp(-0.5 * ((x / sigma) ** 2 + (y / (q * sigma)) ** 2))
    header = fits.Header({"PIXSCALE": scale, "PSF_FWHM": fwhm})
    return fits.ImageHDU((image / image.sum()).astype(np.float32), header=header, name="PSF")


def tiny_bundle(
    folder: Path,
    *,
    size: int = 32,
    seed: int = 0,
    pixel_scale: float = 0.2,
    conditions: tuple[str, ...] = (),
    contract: dict | None = None,
    name: str = "bundle",
    condition_std: float = 1.0,
) -> Path:
    """An untrained tiny bundle (random weights, scalers fitted to plausible labels) for
    cutouts of ``pixel_scale`` arcsec (0.2: :func:`write_labelled_set`'s; 0.168: HSC's),
    taking ``conditions`` beside the image (standardised by ``condition_std``: a small one
    makes the output swing with them), with an input ``contract`` when given."""
    import torch

    from gampen.data.labels import LabelTransform
    from gampen.data.normalize import ArcsinhStretch
    from gampen.model.bundle import save_bundle
    from gampen.model.config import NetworkConfig
    from gampen.model.network import GampenNet

    torch.manual_seed(seed)
    net = GampenNet(NetworkConfig(input_size=size, n_scalars=len(conditions), **TINY_NETWORK))
    if conditions and condition_std != 1.0:
        n = len(conditions)
        net.set_scalar_statistics(torch.full((n,), 0.7), torch.full((n,), condition_std))
    rng = np.random.default_rng(seed)
    labels = LabelTransform.fit(
        ["bt", "r_e", "flux"],
        np.stack([rng.uniform(0, 1, 200), rng.uniform(0.3, 3, 200), rng.uniform(10, 1e3, 200)], 1),
    )
    preprocessing = {"stretch": ArcsinhStretch().to_dict(), "labels": labels.to_dict()}
    if conditions:
        preprocessing["scalars"] = {"photometry": False, "conditions": list(conditions)}
    return save_bundle(
        folder / name,
        net,
        param_names=["bt", "r_e", "flux"],
        bands=["i"],
        pixel_scale=pixel_scale,
        zero_point=27.0,
        preprocessing=preprocessing,
        contract=contract,
    )


#: Flags that make a gampen command run as two CPU processes with Lightning DDP (gloo).
DDP_TWO_CPUS = ["--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--no-progress"]


def run_gampen(*args: str) -> None:
    """Run ``python -m gampen ARGS`` in a subprocess; fail with its stderr if it fails."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "gampen", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
