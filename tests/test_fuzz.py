"""Property-based fuzzing (Hypothesis): every catalog, cutout and bundle, however odd,
ends in a result, a per-galaxy flag or a gampen error; never another exception or a hang.

Bounded for CI: a fixed example budget per test, no deadline surprises, a derandomised
seed (the same inputs every run; ``--hypothesis-seed`` explores others).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import MaskedColumn, Table
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gampen.data.catalog import write_table
from gampen.data.cutouts import read_cutout
from gampen.errors import GampenError
from gampen.flags import Flag
from gampen.infer.output import kept_columns
from gampen.infer.predict import bundle_catalog, bundle_dataset
from gampen.model.bundle import load_bundle

from .synthetic import tiny_bundle

FUZZ = settings(
    max_examples=int(os.environ.get("GAMPEN_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize="GAMPEN_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NUMERIC = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"]
NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


@st.composite
def catalogs(draw) -> Table:
    """A table of random columns: numeric of any type and byte order, text, masked values."""
    n = draw(st.integers(0, 6))
    table = Table()
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    if draw(st.booleans()):
        names = ["file_name", *[m for m in names if m != "file_name"]]
    if draw(st.booleans()):
        names = ["object_id", *[m for m in names if m != "object_id"]]
    for name in names:
        if draw(st.booleans()):
            kind = draw(st.sampled_from(NUMERIC))
            order = draw(st.sampled_from("<>"))
            values = np.array(draw(st.lists(st.integers(0, 100), min_size=n, max_size=n)))
            column = values.astype(order + kind)
        else:
            column = np.array(draw(st.lists(NAMES, min_size=n, max_size=n)), dtype=str)
            column = column if n else np.array([], dtype=str)
        if n and draw(st.booleans()):
            mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
            column = MaskedColumn(column, mask=mask)
        table[name] = column
    return table


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("fuzz"))


def _through_the_catalog_checks(path: Path, bundle_path: Path) -> None:
    """What predict does with a catalog before any image is read."""
    from gampen.model.bundle import load_bundle as load

    bundle = load(bundle_path)
    catalog = bundle_catalog(bundle, path, keep_columns="all")
    kept_columns(catalog, "all", ["bt", "r_e", "flux"])
    bundle_dataset(bundle, catalog)


@FUZZ
@given(table=catalogs(), suffix=st.sampled_from([".csv", ".ecsv", ".fits", ".parquet"]))
def test_any_catalog_is_read_or_refused_with_a_gampen_error(tmp_path, bundle, table, suffix):
    path = tmp_path / f"cat{suffix}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_table(table, path)  # some tables cannot be written in some formats
    except Exception:
        event("not writable in this format")
        return
    try:
        _through_the_catalog_checks(path, bundle)
        event("accepted")
    except GampenError as exc:
        event(f"refused: {type(exc).__name__}")


@FUZZ
@given(
    header=st.lists(NAMES, min_size=1, max_size=4),
    rows=st.lists(
        st.lists(st.sampled_from(["1", '"a,b"', '""', "x y", "é", "", '"q""'])), max_size=4
    ),
)
def test_any_csv_text_is_read_or_refused(tmp_path, bundle, header, rows):
    """Duplicate and empty column names, ragged rows and CSV quoting, written by hand."""
    path = tmp_path / "cat.csv"
    path.write_text("\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n")
    try:
        _through_the_catalog_checks(path, bundle)
        event("accepted")
    except GampenError as exc:
        event(f"refused: {type(exc).__name__}")


@st.composite
def fits_files(draw) -> bytes:
    """FITS files of random dtype, scaling, bad values, shape, compression, or truncation."""
    dtype = draw(st.sampled_from(["u1", "i2", "i4", "f4", "f8"]))
    shape = draw(
        st.sampled_from(
            [(32, 32), (40, 36), (3, 32, 32), (1, 32, 32), (32,), (2, 2, 32, 32), (16, 16), (0,)]
        )
    )
    data = np.random.default_rng(draw(st.integers(0, 9))).normal(50, 10, shape)
    if dtype.startswith("f") and data.size and draw(st.booleans()):
        data.flat[draw(st.integers(0, data.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf])
        )
    data = data.astype(dtype) if dtype.startswith("f") else np.clip(data, 0, 120).astype(dtype)
    if draw(st.booleans()):
        data = np.zeros_like(data)  # empty image
    hdus = [fits.PrimaryHDU()]
    kind = draw(st.sampled_from(["primary", "image", "compressed", "no data"]))
    if kind == "primary":
        hdus = [fits.PrimaryHDU(data)]
    elif kind == "image":
        hdus.append(fits.ImageHDU(data))
    elif kind == "compressed" and data.ndim >= 2 and data.size:
        hdus.append(fits.CompImageHDU(data))
    if draw(st.booleans()) and dtype in ("i2", "i4"):
        hdus[-1].header["BSCALE"] = draw(st.sampled_from([0.5, 2.0]))
        hdus[-1].header["BZERO"] = draw(st.sampled_from([0.0, 32768.0, -10.0]))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList(hdus).writeto(buffer)
    raw = buffer.getvalue()
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]  # truncated
    return raw


@FUZZ
@given(raw=fits_files(), n_bands=st.sampled_from([None, 1, 3]))
def test_any_fits_cutout_is_read_or_refused(tmp_path, raw, n_bands):
    path = tmp_path / "c.fits"
    path.write_bytes(raw)
    try:
        cutout = read_cutout(path, 32, n_bands=n_bands)
    except GampenError as exc:
        event(f"refused: flag {getattr(exc, 'flag', 0)}")
        assert getattr(exc, "flag", 0) & (Flag.UNREADABLE | Flag.BAD_SHAPE)
        return
    event(f"read: flags {cutout.flags}")
    assert cutout.image.shape[-2:] == (32, 32) and np.isfinite(cutout.image).all()


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value, prefix=()):
    """Every key path of a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))


@FUZZ
@given(data=st.data())
def test_any_mutated_bundle_loads_or_is_refused(tmp_path, bundle, data):
    folder = tmp_path / "b"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(bundle, folder)
    meta = json.loads((folder / "gampen.json").read_text())
    target = data.draw(st.sampled_from(["json", "header"]))
    if target == "json":
        path = data.draw(st.sampled_from([p for p in _paths(meta) if p]))
        holder = meta
        for key in path[:-1]:
            holder = holder[key]
        if data.draw(st.booleans()):
            del holder[path[-1]]
        else:
            holder[path[-1]] = data.draw(JSON)
        (folder / "gampen.json").write_text(json.dumps(meta))
    else:
        raw = bytearray((folder / "model.safetensors").read_bytes())
        at = data.draw(st.integers(0, min(len(raw) - 1, 400)))
        raw[at] = data.draw(st.integers(0, 255))
        (folder / "model.safetensors").write_bytes(bytes(raw))
    try:
        loaded = load_bundle(folder)
    except GampenError as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("loaded")
    _prediction_parts(loaded)


def _prediction_parts(loaded) -> None:
    """Everything predict builds from a bundle before its first image."""
    from gampen.calibration.maps import Recalibration
    from gampen.data.labels import LabelTransform
    from gampen.data.normalize import ArcsinhStretch
    from gampen.data.scalars import ScalarInputs

    LabelTransform.from_dict(loaded.preprocessing["labels"]).inverse(np.zeros((1, 2, 3)))
    ArcsinhStretch.from_dict(loaded.preprocessing["stretch"])
    ScalarInputs.from_dict(loaded.preprocessing.get("scalars"))
    Recalibration.from_calibration(loaded.calibration, loaded.param_names)
