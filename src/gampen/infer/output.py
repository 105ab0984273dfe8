"""What makes a prediction table self-describing (docs/outputs.md): catalog columns passed
through, a unit and a description on every column, and file metadata.

The metadata keys are FITS-safe (at most 8 upper-case characters), so FITS headers, ECSV
``meta`` and Parquet key-value metadata all carry the same keys.  ``DATE`` is when the file
was written, in UTC; ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) fixes it
for byte-for-byte comparisons.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astropy.table import Table

from gampen import __version__
from gampen.errors import CatalogError
from gampen.flags import MEANINGS
from gampen.infer.summary import BULGE_BT, DISK_BT, LEVELS, STATISTICS, column_names

if TYPE_CHECKING:
    from gampen.data.catalog import Catalog
    from gampen.infer.options import PredictOptions
    from gampen.model.bundle import Bundle

#: Physical unit of each known parameter ('' for dimensionless); others get none.
UNITS: dict[str, str] = {"bt": "", "r_e": "arcsec", "flux": "adu", "mag": "mag"}
#: What each known parameter is.
QUANTITIES: dict[str, str] = {
    "bt": "bulge-to-total ratio",
    "r_e": "half-light radius",
    "flux": "total flux (zero point ZEROPT)",
    "mag": "total magnitude",
}
#: Columns every output has besides the per-parameter summaries.
FIXED_DESCRIPTIONS: dict[str, str] = {
    "object_id": "catalog object identifier",
    "file_name": "cutout file, as in the catalog",
    "stn_zoom": "spatial transformer zoom (crop side / cutout side)",
    "ood_score": "distance from the training set's features / threshold",
    "flags": "quality bitmask (bits in the FLAGn metadata)",
    "n_bad_pixels": "pixels without data (NaN/inf, or blocks of exact zeros), filled",
}
#: Columns written after the bt summaries when the model has a 'bt' parameter.
CLASS_DESCRIPTIONS: dict[str, str] = {
    "p_disk": f"posterior probability that bt < {DISK_BT:g} (disk)",
    "p_bulge": f"posterior probability that bt > {BULGE_BT:g} (bulge)",
}


def output_names(param_names: Sequence[str]) -> list[str]:
    """Every column ``gampen predict`` writes for these parameters (plus ``mag`` with flux)."""
    names = [*param_names, "mag"] if "flux" in param_names else list(param_names)
    return [*FIXED_DESCRIPTIONS, *column_names(names)]


def kept_columns(
    catalog: Catalog, keep: Sequence[str] | str, param_names: Sequence[str]
) -> list[str]:
    """The catalog columns to pass through, in catalog order: RA/Dec when present, and
    ``keep`` (names, or ``"all"``; the catalog was loaded with them).  An unknown or
    clashing name is an error up front."""
    produced = set(output_names(param_names))
    if keep != "all":
        missing = [c for c in keep if c not in catalog.column_names]
        if missing:
            raise CatalogError(
                f"{catalog.source}: --keep-columns names column(s) the catalog lacks",
                value=missing,
                allowed=list(catalog.column_names),
            )
        clash = [c for c in keep if c in produced and c not in ("object_id", "file_name")]
        if clash:
            raise CatalogError(
                f"{catalog.source}: --keep-columns would overwrite gampen's own output column(s)",
                value=clash,
                allowed="other columns (rename them in the catalog)",
            )
    return [c for c in catalog.kept.colnames if c not in produced]


def refuse_unwritable_text(catalog: Catalog, kept: Sequence[str], out: str | Path) -> None:
    """FITS tables hold ASCII text only: refuse, before any work, a FITS output that would
    have to carry a non-ASCII object_id, file_name or value of a ``kept`` column."""
    columns = {"object_id": catalog.object_ids}
    for name in ["file_name", *kept]:
        if name in catalog.kept.colnames:
            columns[name] = catalog.kept[name]
    for name, values in columns.items():
        if values.dtype.kind not in "OUS":
            continue
        for value in values:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            if not text.isascii():
                raise CatalogError(
                    f"{out}: FITS tables hold ASCII text only, and column '{name}' has "
                    f"the value {text!r}",
                    allowed="a .parquet or .ecsv output (they keep any text), or "
                    "leaving the column out",
                )


def finish_table(result: Table, catalog: Table, kept: Sequence[str], meta: dict[str, Any]) -> Table:
    """``result`` with the ``kept`` columns of ``catalog`` (a :class:`Catalog`'s
    ``kept``) after the identifiers, units and descriptions on every column, and ``meta``;
    rows are in catalog order in both."""
    out = result.copy(copy_data=False)
    position = out.colnames.index("file_name") + 1 if "file_name" in out.colnames else 1
    for offset, name in enumerate(kept):
        out.add_column(catalog[name], name=name, index=position + offset, copy=False)
    for name in out.colnames:
        if name in kept:
            continue
        unit, text = _describe(name)
        out[name].description = text
        if unit:
            out[name].unit = unit
    out.meta.clear()
    out.meta.update(meta)
    return out


def file_metadata(model_name: str, bundle: Bundle, options: PredictOptions) -> dict[str, Any]:
    """The keys written into every prediction file (FITS-safe names): the model (its
    whole-bundle SHA-256, whether it is calibrated), the sampling, the model's pixel scale
    and zero point, and the meaning of each flag bit."""
    return {
        "GAMPENV": __version__,
        "MODEL": model_name,
        "MODELSHA": bundle.sha256,
        "CALIBRAT": bundle.calibrated,
        "SEED": options.seed,
        "NPASSES": options.n_passes,
        "NSAMPLES": options.n_samples,
        "PSFERR": options.psf_fwhm_error,
        "DATE": _now(),
        "PIXSCALE": bundle.pixel_scale,
        "ZEROPT": bundle.zero_point,
        "FLUXUNIT": f"flux unit: mag = {bundle.zero_point:g} - 2.5 log10(flux) (AB)",
        **{f"FLAG{int(flag)}": f"{flag.name}: {text}" for flag, text in MEANINGS.items()},
    }


def input_metadata(catalog: Catalog, counts: dict[str, dict[str, int]]) -> dict[str, str]:
    """Where the run's pixel scales, zero points and conditions came from: ``PIXSRC`` and
    ``ZPSRC`` count the galaxies per source (``assumed`` = the model's value, the header
    saying nothing), ``PSFSRC`` (or ``CONDSRC`` for other conditions) names the column or
    keyword and its unit; for models taking PSF images, ``PSFIMG`` counts the galaxies
    per source of theirs (``none``: the PSF FWHM alone)."""
    meta = {
        key: "; ".join(f"{where}: {n}" for where, n in sorted(counts.get(what, {}).items()))
        or "none read"
        for key, what in (("PIXSRC", "pixel_scale"), ("ZPSRC", "zero_point"))
    }
    if "psf_image" in counts:
        meta["PSFIMG"] = "; ".join(f"{k}: {n}" for k, n in sorted(counts["psf_image"].items()))
    sources = dict(catalog.condition_sources)
    if "psf_fwhm" in sources:
        meta["PSFSRC"] = sources.pop("psf_fwhm")
    if sources:
        meta["CONDSRC"] = "; ".join(f"{name}: {where}" for name, where in sources.items())
    return meta


def _describe(name: str) -> tuple[str, str]:
    """Unit and description of one output column."""
    if name in FIXED_DESCRIPTIONS:
        return "", FIXED_DESCRIPTIONS[name]
    if name in CLASS_DESCRIPTIONS:
        return "", CLASS_DESCRIPTIONS[name]
    param, statistic = _split(name)
    quantity = QUANTITIES.get(param, param)
    return UNITS.get(param, ""), f"{quantity}, {_statistic_text(statistic)}"


def _split(name: str) -> tuple[str, str]:
    """``r_e_ci68_lo`` -> (``r_e``, ``ci68_lo``)."""
    for statistic in sorted(STATISTICS, key=len, reverse=True):
        if name.endswith("_" + statistic):
            return name[: -len(statistic) - 1], statistic
    raise ValueError(f"not a summary column: {name}")


def _statistic_text(statistic: str) -> str:
    """Words for a summary statistic, short enough for a FITS card comment, e.g. 'lower
    68.27 % bound' (of the equal-tailed interval)."""
    if statistic in ("mean", "median", "mode"):
        return f"posterior {statistic}"
    if statistic == "std":
        return "posterior std. deviation"
    level, end = statistic.split("_")
    side = "lower" if end == "lo" else "upper"
    return f"{side} {100 * LEVELS[level]:.2f} % bound"


def _now() -> str:
    """UTC now (or ``SOURCE_DATE_EPOCH``) as ISO 8601 to the second."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
        if epoch
        else datetime.datetime.now(datetime.timezone.utc)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S")
