"""``gampen crop``: each galaxy's cutout as the network's spatial transformer crops it.

The STN maps an output pixel at normalised position ``u`` (pixel edges at -1 and 1) to the
input position ``A u + t``.  In FITS pixel coordinates (1-based, centre ``c = (N + 1) / 2``)
that is ``x_in = A (x_out - c) + c + t N / 2``, so the crop's WCS is the input's with

    CD_out = CD_in A        CRPIX_out = c + A^-1 (CRPIX_in - c - t N / 2)

and every pixel keeps its sky position (for a zoom ``s``: the pixel scale times ``s``, and
CRPIX moved away from the centre by ``1 / s``).  Pixels hold the linear input resampled
bilinearly (as the network sees it, before the stretch) times ``|det A|``, the ratio of
pixel areas, so a galaxy's flux is unchanged.  The zoom goes into each file's header
(``GAMZOOM``) and into ``crops.ecsv`` beside them, with the flags.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning
from tqdm.auto import tqdm

from gampen.atomic import atomic_path
from gampen.checks import refuse_existing
from gampen.data.catalog import write_table
from gampen.data.cutouts import select_hdu
from gampen.flags import is_fatal
from gampen.infer.predict import bundle_catalog, bundle_dataset
from gampen.model.bundle import load_bundle
from gampen.model.stn import resample
from gampen.models import default_model_path

log = logging.getLogger(__name__)
#: The catalog of crops written beside them.
CROP_CATALOG = "crops.ecsv"


def crop(
    source: str | Path | Table,
    *,
    out: str | Path,
    model: str | Path | None = None,
    image_dir: str | None = None,
    hdu: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Table:
    """Write ``out/<object_id>.fits`` for every usable galaxy and ``out/crops.ecsv``;
    returns that catalog (``object_id``, ``file_name``, ``stn_zoom``, ``flags``)."""
    folder = Path(out)
    refuse_existing([folder / CROP_CATALOG], overwrite=overwrite)
    model_path = Path(model or default_model_path())
    bundle = load_bundle(model_path)
    catalog = bundle_catalog(bundle, source, image_dir=image_dir)
    dataset = bundle_dataset(bundle, catalog, hdu=hdu)
    ids = catalog.object_ids
    folder.mkdir(parents=True, exist_ok=True)
    names, zooms, flags = [], [], []
    without_wcs = 0
    net = bundle.net.eval()
    for i in tqdm(range(len(dataset)), unit="gal", desc="cropping", disable=not progress):
        item = dataset[i]
        flags.append(int(item["flags"]))
        if is_fatal(item["flags"]):
            names.append("")
            zooms.append(np.nan)
            continue
        with torch.inference_mode():
            theta, zoom = net.stn.transformation(item["image"][None])
        theta_np = theta[0].double().numpy()
        path = dataset.paths(i)[0]
        header = _image_header(path, hdu)
        pixels = dataset.read(i).image
        name = f"{ids[i]}.fits"
        has_wcs = _write_crop(folder / name, pixels, theta_np, header, float(zoom[0]))
        without_wcs += not has_wcs
        names.append(name)
        zooms.append(float(zoom[0]))
    if without_wcs:
        log.warning("%d cutout(s) have no celestial WCS: their crops have none", without_wcs)
    crops = Table(
        {"object_id": ids, "file_name": names, "stn_zoom": zooms, "flags": flags},
        meta={"MODEL": model_path.name},
    )
    crops["stn_zoom"].description = "spatial transformer zoom (crop side / cutout side)"
    write_table(crops, folder / CROP_CATALOG)
    return crops


def crop_pixels(pixels: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Linear pixels (bands, N, N) resampled on the STN's grid, times ``|det A|``."""
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float64))[None]
    warped = resample(x, torch.from_numpy(theta)[None])[0].numpy()
    return (warped * abs(np.linalg.det(theta[:, :2]))).astype(np.float32)


def crop_wcs(wcs: WCS, theta: np.ndarray, size: int) -> WCS:
    """The crop's WCS: every output pixel at the sky position of the input point it
    samples (see the module docstring)."""
    linear, shift = theta[:, :2], theta[:, 2]
    centre = (size + 1) / 2
    new = wcs.deepcopy()
    # FITS pixel axes (x, y) are the matrix's (column, row) order: theta acts on (x, y).
    if new.wcs.has_cd():
        new.wcs.cd = new.wcs.cd @ linear
    else:
        new.wcs.pc = new.wcs.get_pc() @ linear
    new.wcs.crpix = centre + np.linalg.solve(linear, wcs.wcs.crpix - centre - shift * size / 2)
    new.wcs.set()
    return new


def _write_crop(
    path: Path, pixels: np.ndarray, theta: np.ndarray, header: fits.Header, zoom: float
) -> bool:
    """One crop as FITS (2-D for one band); returns whether it carries a WCS."""
    size = pixels.shape[-1]
    data = crop_pixels(pixels, theta)
    out_header = fits.Header()
    wcs = _celestial_wcs(header, size)
    if wcs is not None:
        out_header.update(crop_wcs(wcs, theta, size).to_header())
    if "BUNIT" in header:
        out_header["BUNIT"] = header["BUNIT"]
    out_header["GAMZOOM"] = (zoom, "gampen STN zoom: crop side / cutout side")
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(data[0] if len(data) == 1 else data, header=out_header).writeto(tmp)
    return wcs is not None


def _celestial_wcs(header: fits.Header, size: int) -> WCS | None:
    """The header's celestial WCS, moved to the centre ``size`` x ``size`` pixels the
    model reads (gampen centre-crops larger cutouts); ``None`` when it has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header).celestial
    if not wcs.has_celestial:
        return None
    ny, nx = header.get("NAXIS2", size), header.get("NAXIS1", size)
    y0, x0 = (ny - size) // 2, (nx - size) // 2  # as center_crop cuts
    wcs.wcs.crpix = wcs.wcs.crpix - np.array([x0, y0])
    return wcs


def _image_header(path: Path, hdu: str | None) -> fits.Header:
    """The header of the HDU the image was read from (chosen as the cutout reader does)."""
    with fits.open(path) as hdul:
        return select_hdu(path, hdul, hdu).header.copy()
