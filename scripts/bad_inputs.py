"""Hand a model its own galaxies with the wrong physics, one mistake at a time, and print
what happens to each: converted (the posterior moves by less than its error), flagged
(which bits, on how many galaxies), or refused (the message).

    .venv/bin/python scripts/bad_inputs.py SIM_DIR [--model BUNDLE] [--n 100] [--work DIR]

SIM_DIR is a ``gampen simulate`` folder of the model's survey (cutouts with PIXSCALE,
MAGZP and PSF_FWHM, and ``info.csv``).  The first N galaxies are rewritten per case into
``--work`` (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

import gampen
from gampen.errors import GampenError
from gampen.flags import describe, is_fatal

#: AB magnitude of 1 nJy: -2.5 log10(1e-9 Jy x 1e-23 erg/s/cm2/Hz per Jy) - 48.60.
NJY_AB = -2.5 * np.log10(1e-32) - 48.60
FAST = dict(n_passes=100, n_samples=1000, progress=False, num_workers=0)

#: case -> (rewrite of one cutout (HDUList -> HDUList), rewrite of the catalog, options)
Case = tuple[Callable[[fits.HDUList], fits.HDUList] | None, Callable[[Table], None] | None, dict]


def _header(**cards):
    def rewrite(hdul: fits.HDUList) -> fits.HDUList:
        for key, value in cards.items():
            if value is None:
                del hdul[0].header[key]
            else:
                hdul[0].header[key] = value
        return hdul

    return rewrite


def _pixels(scale: float, **cards):
    def rewrite(hdul: fits.HDUList) -> fits.HDUList:
        hdul[0].data = (hdul[0].data * scale).astype(np.float32)
        return _header(**cards)(hdul)

    return rewrite


def _nan_patch(where: tuple[slice, slice]):
    def rewrite(hdul: fits.HDUList) -> fits.HDUList:
        data = hdul[0].data.copy()
        data[where] = np.nan
        hdul[0].data = data
        return hdul

    return rewrite


def _mef(hdul: fits.HDUList) -> fits.HDUList:
    """PRIMARY (header only), MASK (int32), IMAGE, VARIANCE, as HSC's cutout service."""
    header, data = hdul[0].header, hdul[0].data
    return fits.HDUList(
        [
            fits.PrimaryHDU(header=header),
            fits.ImageHDU(np.zeros(data.shape, np.int32), name="MASK"),
            fits.ImageHDU(data, name="IMAGE"),
            fits.ImageHDU(np.full(data.shape, 0.005, np.float32), name="VARIANCE"),
        ]
    )


def _psf(change: Callable[[np.ndarray], np.ndarray], unit: u.UnitBase | None = None):
    def rewrite(table: Table) -> None:
        values = change(np.asarray(table["psf_fwhm"], dtype=float))
        table["psf_fwhm"] = values * unit if unit is not None else values

    return rewrite


def _rename_psf(table: Table) -> None:
    table.rename_column("psf_fwhm", "SEEING")


def _seeing(rng: np.random.Generator):
    return _psf(lambda v: rng.uniform(0.9, 1.4, v.size))


def cases(rng: np.random.Generator) -> dict[str, Case]:
    """Every mistake of issue 18, as rewrites of the reference cutouts and catalog."""
    return {
        "reference": (None, None, {}),
        "pixel scale 0.262 (PIXSCALE)": (_header(PIXSCALE=0.262), None, {}),
        "PSF in pixels": (None, _psf(lambda v: v / 0.168), {}),
        "PSF in pixels, column unit pix": (None, _psf(lambda v: v / 0.168, u.pix), {}),
        "PSF in mas, column unit mas": (None, _psf(lambda v: v * 1000, u.mas), {}),
        "PSF as sigma": (None, _psf(lambda v: v / 2.3548), {}),
        "PSF negative": (None, _psf(lambda v: -v), {}),
        "PSF zero": (None, _psf(lambda v: 0 * v), {}),
        "PSF 1e6": (None, _psf(lambda v: 0 * v + 1e6), {}),
        "seeing 0.9-1.4 arcsec": (None, _seeing(rng), {}),
        "PSF column SEEING, --conditions": (
            None,
            _rename_psf,
            {"conditions": {"psf_fwhm": "SEEING"}},
        ),
        "pixels in nJy (MAGZP 31.4, BUNIT nJy)": (
            _pixels(10 ** (0.4 * 4.4), MAGZP=31.4, BUNIT="nJy"),
            None,
            {},
        ),
        "pixels in nJy, BUNIT only": (
            _pixels(10 ** (0.4 * (NJY_AB - 27.0)), MAGZP=None, BUNIT="nJy"),
            None,
            {},
        ),
        "MEF: PRIMARY, MASK (int32), IMAGE, VARIANCE": (_mef, None, {}),
        "MEF with --hdu MASK": (_mef, None, {"hdu": "MASK"}),
        "16x16 NaN patch on the galaxy": (_nan_patch((slice(40, 56), slice(40, 56))), None, {}),
        "NaN strip at the edge": (_nan_patch((slice(0, 3), slice(None))), None, {}),
        "negated image": (_pixels(-1.0), None, {}),
        "pixels x 1e30": (_pixels(1e30), None, {}),
        "1 sample per galaxy": (None, None, {"n_samples": 1}),
        "2 samples per galaxy": (None, None, {"n_samples": 2}),
    }


def run_case(name: str, case: Case, sims: Path, work: Path, n: int, model: str | None) -> dict:
    """Rewrite the first ``n`` galaxies per ``case``, predict, and return the outcome."""
    rewrite_image, rewrite_table, options = case
    folder = work / name.replace(" ", "_").replace("/", "-").replace(",", "")
    (folder / "cutouts").mkdir(parents=True, exist_ok=True)
    table = Table.read(sims / "info.csv")[:n]
    for row in table:
        with fits.open(sims / row["file_name"]) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul])
            out = rewrite_image(hdul) if rewrite_image else hdul
            out.writeto(folder / row["file_name"], overwrite=True)
    if rewrite_table:
        rewrite_table(table)
    table.write(folder / "info.ecsv", overwrite=True)
    try:
        result = gampen.predict(folder / "info.ecsv", model=model, **{**FAST, **options})
    except (GampenError, ValueError) as exc:
        return {"refused": str(exc).split(";")[0][:90]}
    return {"table": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sims", type=Path)
    parser.add_argument("--model")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gampen-bad-inputs-"))
    outcomes = {}
    for name, case in cases(np.random.default_rng(0)).items():
        outcomes[name] = run_case(name, case, args.sims, work, args.n, args.model)
    reference = outcomes["reference"]["table"]
    truth = Table.read(args.sims / "info.csv")[: args.n]
    print("| case | outcome | flagged | fatal | bits | median r_e ratio | r_e 68 % coverage |")
    print("|---|---|---|---|---|---|---|")
    for name, outcome in outcomes.items():
        if "refused" in outcome:
            print(f"| {name} | refused: {outcome['refused']} | | | | | |")
            continue
        t = outcome["table"]
        flags = np.asarray(t["flags"])
        fatal = is_fatal(flags)
        bits = sorted({b for f in flags for b in describe(int(f))})
        ok = ~fatal
        ratio = np.median(t["r_e_median"][ok] / truth["r_e"][ok]) if ok.any() else np.nan
        inside = (t["r_e_ci68_lo"] <= truth["r_e"]) & (truth["r_e"] <= t["r_e_ci68_hi"])
        coverage = np.mean(inside[ok]) if ok.any() else np.nan
        same = ok.all() and np.allclose(t["r_e_median"], reference["r_e_median"], rtol=1e-3)
        verdict = (
            "converted (= reference)"
            if same and name != "reference"
            else ("flagged" if flags.any() else "answered")
        )
        if ok.any() and np.isnan(t["r_e_ci68_lo"][ok]).all():
            verdict += ", intervals NaN"
        print(
            f"| {name} | {verdict} | {np.mean(flags != 0):.0%} | {np.mean(fatal):.0%} | "
            f"{', '.join(bits) or '-'} | {ratio:.3f} | {coverage:.0%} |"
        )


if __name__ == "__main__":
    main()
