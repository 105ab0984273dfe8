"""gampen predict end to end: the output contract, bad files, resume, reproducibility, DDP."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from gampen.data.catalog import read_catalog, write_table
from gampen.errors import BundleError, CatalogError, ConfigError, GampenValueError
from gampen.flags import Flag
from gampen.infer.predict import PredictOptions, predict
from gampen.infer.summary import STATISTICS
from gampen.model.bundle import load_bundle

from ..synthetic import DDP_TWO_CPUS, run_gampen, tiny_bundle, write_labelled_set

FAST = dict(n_passes=4, n_samples=50, batch_size=8, chunk_size=8, num_workers=0, progress=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    catalog = write_labelled_set(folder / "data", n=30)
    return catalog, tiny_bundle(folder)


def test_output_has_every_contract_column(tmp_path, setup):
    catalog, bundle = setup
    table = predict(catalog, out=tmp_path / "p.fits", model=bundle, options=PredictOptions(**FAST))
    expected = ["object_id", "file_name"]
    for p in ("bt", "r_e", "flux", "mag"):
        expected += [f"{p}_{s}" for s in STATISTICS]
    assert {*expected, "stn_zoom", "flags"} <= set(table.colnames)
    back = Table.read(tmp_path / "p.fits")
    assert len(back) == 30 and list(back["object_id"]) == list(range(30))
    assert np.all(back["r_e_ci68_lo"] <= back["r_e_median"])
    assert np.all(back["r_e_median"] <= back["r_e_ci68_hi"])
    # The median of an even number of samples interpolates, which a log does not commute with.
    np.testing.assert_allclose(
        back["mag_median"], 27 - 2.5 * np.log10(back["flux_median"]), atol=0.01
    )
    assert np.all(back["flags"] == 0) and np.all(np.isfinite(back["stn_zoom"]))
    assert not (tmp_path / "p.fits.partial").exists()


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".ecsv"])
def test_other_output_formats(tmp_path, setup, suffix):
    catalog, bundle = setup
    predict(catalog, out=tmp_path / f"p{suffix}", model=bundle, options=PredictOptions(**FAST))
    assert len(read_catalog(tmp_path / f"p{suffix}")) == 30


def test_a_bad_output_format_or_empty_catalog_is_refused_before_any_work(tmp_path, setup):
    catalog, bundle = setup
    options = PredictOptions(**FAST)
    with pytest.raises(CatalogError, match="cannot tell the table format"):
        predict(catalog, out=tmp_path / "p.txt", model=bundle, options=options)
    empty = read_catalog(catalog)[:0]
    write_table(empty, tmp_path / "empty.csv")
    with pytest.raises(CatalogError, match="has no rows"):
        predict(tmp_path / "empty.csv", out=tmp_path / "p.fits", model=bundle, options=options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv"]  # nothing left behind
    predict(catalog, out=tmp_path / "p.fits", model=bundle, options=options)  # then a run works


@pytest.mark.parametrize("dtype", [">i2", ">i8", ">u4", "U6"])
def test_fits_catalogs_with_any_object_id_type_predict_to_every_format(tmp_path, setup, dtype):
    catalog, bundle = setup
    table = read_catalog(catalog)[:5]
    table["object_id"] = np.arange(10, 15).astype(dtype)
    table.meta.clear()  # read_catalog notes its source there
    table.write(tmp_path / "cat.fits")
    (tmp_path / "cutouts").symlink_to(catalog.parent / "cutouts")
    for suffix in (".parquet", ".fits"):
        out = tmp_path / f"p{suffix}"
        predict(tmp_path / "cat.fits", out=out, model=bundle, options=PredictOptions(**FAST))
        assert [str(i) for i in read_catalog(out)["object_id"]] == [str(i) for i in range(10, 15)]


def test_an_existing_output_is_replaced_only_with_overwrite(tmp_path, setup):
    catalog, bundle = setup
    out, samples = tmp_path / "p.parquet", tmp_path / "s.h5"
    options = PredictOptions(**FAST, samples_out=str(samples))
    predict(catalog, out=out, model=bundle, options=options)
    before = out.read_bytes()
    with pytest.raises(ConfigError, match=r"p\.parquet exists.*--overwrite"):
        predict(catalog, out=out, model=bundle, options=options)
    out.unlink()
    with pytest.raises(ConfigError, match=r"s\.h5 exists"):
        predict(catalog, out=out, model=bundle, options=options)
    options = PredictOptions(**FAST, samples_out=str(samples), overwrite=True)
    predict(catalog, out=out, model=bundle, options=options)
    assert out.read_bytes() == before


def test_library_calls_are_quiet(tmp_path, setup, caplog, capsys):
    catalog, bundle = setup
    caplog.set_level(logging.INFO)
    before = logging.getLogger("lightning.pytorch").level
    predict(catalog, out=tmp_path / "p.fits", model=bundle, options=PredictOptions(**FAST))
    chatter = caplog.text + "".join(capsys.readouterr())
    assert "Tip" not in chatter and "GPU available" not in chatter, chatter[:500]
    assert logging.getLogger("lightning.pytorch").level == before  # restored afterwards


def test_same_output_for_any_batching_and_workers(tmp_path, setup):
    catalog, bundle = setup
    a = predict(catalog, model=bundle, options=PredictOptions(**FAST))
    other = {**FAST, "batch_size": 3, "chunk_size": 8, "num_workers": 2}
    b = predict(catalog, model=bundle, options=PredictOptions(**other))
    for name in a.colnames:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    c = predict(catalog, model=bundle, options=PredictOptions(**{**FAST, "seed": 1}))
    assert not np.array_equal(a["r_e_mean"], c["r_e_mean"])


def test_broken_files_are_flagged_and_the_run_finishes(tmp_path, setup):
    catalog, bundle = setup
    folder = catalog.parent / "cutouts"
    table = read_catalog(catalog)[:6]
    table["file_name"] = table["file_name"].astype("U400")
    table["file_name"][0] = "does_not_exist.fits"
    good = (folder / table["file_name"][1]).read_bytes()
    (tmp_path / "trunc.fits").write_bytes(good[: len(good) // 2])
    fits.PrimaryHDU(np.full((32, 32), np.nan, np.float32)).writeto(tmp_path / "nan.fits")
    fits.PrimaryHDU(np.ones((20, 20), np.float32)).writeto(tmp_path / "small.fits")
    partly = fits.getdata(folder / table["file_name"][5]).copy()
    partly[:2, :2] = np.nan
    fits.PrimaryHDU(partly).writeto(tmp_path / "partly.fits")
    for row, name in [(1, "trunc.fits"), (2, "nan.fits"), (3, "small.fits"), (5, "partly.fits")]:
        table["file_name"][row] = str(tmp_path / name)
    table["file_name"][4] = str(folder / table["file_name"][4])
    write_table(table, tmp_path / "broken.csv")
    out = predict(
        tmp_path / "broken.csv",
        model=bundle,
        options=PredictOptions(**FAST),
        out=tmp_path / "p.csv",
    )
    flags = list(out["flags"])
    assert flags[:5] == [
        Flag.UNREADABLE,
        Flag.UNREADABLE,
        Flag.NONFINITE | Flag.EMPTY | Flag.MASKED_CORE,
        Flag.BAD_SHAPE,
        0,
    ]
    assert flags[5] == Flag.NONFINITE and out["n_bad_pixels"][5] == 4
    assert np.all(np.isnan(out["r_e_mean"][:4])) and np.all(np.isfinite(out["r_e_mean"][4:]))


def test_directory_without_catalog(tmp_path, setup):
    catalog, bundle = setup
    table = predict(catalog.parent / "cutouts", model=bundle, options=PredictOptions(**FAST))
    assert len(table) == 30 and table["object_id"][0] == "0000"


def test_samples_file(tmp_path, setup):
    catalog, bundle = setup
    options = PredictOptions(**{**FAST, "samples_out": str(tmp_path / "s.h5")})
    table = predict(catalog, out=tmp_path / "p.parquet", model=bundle, options=options)
    with h5py.File(tmp_path / "s.h5") as h5:
        samples = h5["samples"][:]
        assert samples.shape == (30, 50, 3) and samples.dtype == np.float32
        assert [n.decode() for n in h5["param_names"][:]] == ["bt", "r_e", "flux"]
        assert h5.attrs["n_passes"] == 4 and h5["samples"].compression == "gzip"
        np.testing.assert_array_equal(h5["object_id"][:], table["object_id"])
    np.testing.assert_allclose(np.median(samples[:, :, 1], axis=1), table["r_e_median"], rtol=1e-5)


KILLER = textwrap.dedent(
    """
    import os, signal
    from gampen.infer import parts
    from gampen.infer.predict import PredictOptions, predict

    original, count = parts.PartStore.write, [0]
    def write(self, *args, **kwargs):
        original(self, *args, **kwargs)
        count[0] += 1
        if count[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    parts.PartStore.write = write
    predict({catalog!r}, out={out!r}, model={bundle!r}, options=PredictOptions(**{options}))
    """
)


def test_killed_run_resumes_to_identical_output(tmp_path, setup, caplog, capsys):
    catalog, bundle = setup
    options = {**FAST, "samples_out": str(tmp_path / "s.h5")}
    out = tmp_path / "p.fits"
    script = KILLER.format(catalog=str(catalog), out=str(out), bundle=str(bundle), options=options)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-2000:]
    assert not out.exists() and len(list((tmp_path / "p.fits.partial").glob("*.parquet"))) == 2
    caplog.set_level(logging.INFO, logger="gampen")
    progress = PredictOptions(**{**options, "progress": True})
    resumed = predict(catalog, out=out, model=bundle, options=progress)
    assert "resuming: 16 of 30 galaxies already done" in caplog.text  # chunks of 8, 8 | 8, 6
    assert "30/30" in capsys.readouterr().err  # the bar ends full
    straight = predict(
        catalog,
        out=tmp_path / "q.fits",
        model=bundle,
        options=PredictOptions(**{**options, "samples_out": str(tmp_path / "t.h5")}),
    )
    for name in straight.colnames:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)
    with h5py.File(tmp_path / "s.h5") as a, h5py.File(tmp_path / "t.h5") as b:
        np.testing.assert_array_equal(a["samples"][:], b["samples"][:])


MERGE_KILLER = textwrap.dedent(
    """
    import os, signal
    from gampen.infer import parts
    from gampen.infer.predict import PredictOptions, predict

    write = parts.write_table
    def write_then_die(*args, **kwargs):
        write(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # the table is out, the samples are not
    parts.write_table = write_then_die
    predict({catalog!r}, out={out!r}, model={bundle!r}, options=PredictOptions(**{options}))
    """
)


def test_a_kill_during_the_merge_is_finished_by_the_same_command(tmp_path, setup):
    catalog, bundle = setup
    options = {**FAST, "samples_out": str(tmp_path / "s.h5")}
    out = tmp_path / "p.parquet"
    script = MERGE_KILLER.format(
        catalog=str(catalog), out=str(out), bundle=str(bundle), options=options
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-2000:]
    assert out.exists() and not (tmp_path / "s.h5").exists()
    assert (tmp_path / "p.parquet.partial").is_dir()
    resumed = predict(catalog, out=out, model=bundle, options=PredictOptions(**options))
    assert not (tmp_path / "p.parquet.partial").exists() and (tmp_path / "s.h5").exists()
    straight = predict(catalog, model=bundle, options=PredictOptions(**FAST))
    for name in straight.colnames:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)
    with pytest.raises(ConfigError, match="exists"):  # a finished output stays protected
        predict(catalog, out=out, model=bundle, options=PredictOptions(**options))


def test_resume_with_other_settings_refused(tmp_path, setup):
    catalog, bundle = setup
    partial = tmp_path / "p.fits.partial"
    partial.mkdir()
    (partial / "settings.json").write_text('{"n_passes": 99}')
    with pytest.raises(GampenValueError, match="unfinished run with other settings"):
        predict(catalog, out=tmp_path / "p.fits", model=bundle, options=PredictOptions(**FAST))


def test_a_catalog_edited_between_kill_and_resume_is_refused(tmp_path, setup):
    catalog, bundle = setup
    edited = tmp_path / "cat.csv"
    write_table(read_catalog(catalog), edited)
    (tmp_path / "cutouts").symlink_to(catalog.parent / "cutouts")
    out = tmp_path / "p.fits"
    script = KILLER.format(catalog=str(edited), out=str(out), bundle=str(bundle), options=FAST)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-2000:]
    table = read_catalog(edited)
    table["psf_fwhm"][20] *= 1.1  # one value in a chunk not yet done
    write_table(table, edited)
    with pytest.raises(GampenValueError, match=r"other settings \(catalog_sha256\)"):
        predict(edited, out=out, model=bundle, options=PredictOptions(**FAST))
    assert not out.exists()


def test_an_astropy_table_predicts_like_its_file(tmp_path, setup, monkeypatch):
    import gampen

    catalog, bundle = setup
    from_file = gampen.predict(catalog, model=bundle, **FAST)
    table = Table.read(catalog, format="ascii.csv")  # no gampen metadata: paths from cwd
    monkeypatch.chdir(catalog.parent / "cutouts")
    from_table = gampen.predict(table, model=bundle, **FAST)
    for name in from_file.colnames:
        np.testing.assert_array_equal(from_table[name], from_file[name], err_msg=name)
    with pytest.raises(ConfigError, match="unknown PredictOptions field"):
        gampen.predict(table, model=bundle, passes=3)


def test_option_errors_and_missing_default_model(setup, monkeypatch):
    with pytest.raises(Exception, match=r"'n_passes' is invalid; got 0"):
        PredictOptions(n_passes=0)
    monkeypatch.setattr("gampen.models.DEFAULT_MODEL", "no-such-model")
    with pytest.raises(BundleError, match="no default model bundle"):
        predict(setup[0], options=PredictOptions(**FAST))


def test_shipped_default_model_is_used_without_model(tmp_path):
    from gampen.models import default_model_path

    bundle = load_bundle(default_model_path())
    assert bundle.input_size == 96 and bundle.param_names == ["bt", "r_e", "flux"]
    folder = tmp_path / "cutouts"
    folder.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:100, :100] - 49.5
    disk = np.exp(-1.678 * np.hypot(x, y) / 4.8)  # r_e 0.8 arcsec, mag 20: a typical galaxy
    image = (631 * disk / disk.sum() + rng.normal(0, 0.05, (100, 100))).astype(np.float32)
    fits.PrimaryHDU(image).writeto(folder / "a.fits")
    # The default takes the PSF FWHM: a folder of FITS needs it in the headers.
    with pytest.raises(CatalogError, match=r"needs the condition\(s\) \['psf_fwhm'\]"):
        predict(folder, options=PredictOptions(**FAST))
    fits.PrimaryHDU(image, header=fits.Header({"PSF_FWHM": 0.7})).writeto(
        folder / "a.fits", overwrite=True
    )
    table = predict(folder, options=PredictOptions(**FAST))
    assert table["flags"][0] == Flag.CROPPED and np.isfinite(table["r_e_median"][0])


@pytest.mark.slow
@pytest.mark.parametrize("chunk_size", ["8", "64"])  # 4 chunks; 1 chunk for 2 ranks
def test_ddp_two_processes_match_one(tmp_path, setup, chunk_size):
    catalog, bundle = setup
    out = tmp_path / "ddp.parquet"
    run_gampen(
        "predict",
        str(catalog),
        "--out",
        str(out),
        "--model",
        str(bundle),
        "--n-passes",
        "4",
        "--n-samples",
        "50",
        "--chunk-size",
        chunk_size,
        "--num-workers",
        "0",
        *DDP_TWO_CPUS,
    )
    ddp = read_catalog(out)
    single = predict(catalog, model=bundle, options=PredictOptions(**FAST))
    for name in single.colnames:
        np.testing.assert_array_equal(ddp[name], single[name], err_msg=name)


def test_a_survey_catalog_keeps_its_columns_units_and_gets_self_describing_metadata(
    tmp_path, setup
):
    """A FITS catalog with big-endian integer ids, RA/Dec in degrees and 3 extra columns."""
    catalog, bundle = setup
    table = read_catalog(catalog)[:6]
    table.meta.clear()
    table["object_id"] = np.arange(100, 106).astype(">i8")
    table["ra"] = np.linspace(150.1, 150.2, 6) * u.deg
    table["dec"] = np.linspace(2.1, 2.2, 6) * u.deg
    table["z_phot"] = np.linspace(0.1, 0.6, 6).astype(">f4")
    table["field"] = ["cosmos"] * 6
    table["n_exp"] = np.arange(6).astype(">i2")
    table["i_mag_cmodel"] = np.full(6, 21.0) * u.mag
    table.write(tmp_path / "cat.fits")
    (tmp_path / "cutouts").symlink_to(catalog.parent / "cutouts")
    options = PredictOptions(**FAST, seed=7, keep_columns=("z_phot", "field", "n_exp"))
    document = json.loads((bundle / "gampen.json").read_text())
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    sha = hashlib.sha256(canonical.encode()).hexdigest()  # the whole bundle, not the weights
    for suffix in (".fits", ".ecsv", ".parquet"):
        out = tmp_path / f"p{suffix}"
        predict(tmp_path / "cat.fits", out=out, model=bundle, options=options)
        back = Table.read(out)
        names = back.colnames
        assert names[:7] == ["object_id", "file_name", "ra", "dec", "z_phot", "field", "n_exp"]
        assert "i_mag_cmodel" not in names  # neither asked for nor a position
        assert [int(i) for i in back["object_id"]] == list(range(100, 106))
        np.testing.assert_allclose(back["ra"], table["ra"])
        assert back["ra"].unit == u.deg and back["dec"].unit == u.deg
        assert list(back["field"]) == ["cosmos"] * 6
        assert back["r_e_median"].unit == u.arcsec and back["flux_ci68_lo"].unit == u.adu
        assert back["mag_mode"].unit == u.mag and back["bt_std"].unit is None
        meta = {k.upper(): v for k, v in back.meta.items()}
        assert meta["MODELSHA"] == sha and meta["MODEL"] == bundle.name
        assert meta["SEED"] == 7 and meta["NPASSES"] == 4 and meta["NSAMPLES"] == 50
        assert meta["GAMPENV"] and meta["DATE"] == "2023-11-14T22:13:20"  # SOURCE_DATE_EPOCH
        assert meta["FLAG64"].startswith("BAD_CONDITION")
        assert all(f"FLAG{int(f)}" in meta for f in Flag)
        if suffix != ".fits":  # FITS keeps descriptions as TTYPE comments (below)
            assert "half-light radius" in back["r_e_median"].description
            assert back["r_e_ci68_lo"].description == "half-light radius, lower 68.27 % bound"
    header = fits.getheader(tmp_path / "p.fits", 1)
    comments = {header[k]: header.comments[k] for k in header if k.startswith("TTYPE")}
    assert comments["r_e_ci95_hi"] == "half-light radius, upper 95.45 % bound"
    assert comments["bt_ci99_lo"] == "bulge-to-total ratio, lower 99.73 % bound"
    assert comments["flags"].startswith("quality bitmask")


def test_keep_columns_all_and_bad_names(tmp_path, setup):
    catalog, bundle = setup
    table = predict(catalog, model=bundle, options=PredictOptions(**FAST, keep_columns="all"))
    truth = read_catalog(catalog)
    extra = [c for c in truth.colnames if c not in ("object_id", "file_name")]
    assert {"bt", "r_e", "flux", "psf_fwhm"} <= set(extra)
    assert table.colnames[2 : 2 + len(extra)] == extra  # every catalog column, in order
    for name in extra:
        assert np.all(table[name] == truth[name])
    clashing = read_catalog(catalog)
    clashing.meta.clear()
    clashing["flags"] = 0  # a survey's own flags column
    write_table(clashing, catalog.parent / "clash.csv")
    for keep, message in ((("redshift",), "lacks"), (("flags",), "overwrite gampen's own")):
        with pytest.raises(CatalogError, match=message):
            predict(
                catalog.parent / "clash.csv",
                out=tmp_path / "p.fits",
                model=bundle,
                options=PredictOptions(**FAST, keep_columns=keep),
            )
    assert not any(tmp_path.iterdir())  # refused before any work


def test_keep_columns_on_the_command_line(tmp_path, setup):
    from gampen.cli import main

    catalog, bundle = setup
    out = tmp_path / "p.ecsv"
    args = ["predict", str(catalog), "--model", str(bundle), "--out", str(out)]
    fast = ["--n-passes", "2", "--n-samples", "20", "--num-workers", "0", "--no-progress"]
    assert main([*args, *fast, "--keep-columns", "psf_fwhm, r_e"]) == 0
    assert Table.read(out).colnames[:4] == ["object_id", "file_name", "r_e", "psf_fwhm"]


NUMERIC = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"]


@pytest.mark.parametrize("suffix", [".fits", ".ecsv", ".csv", ".parquet"])
def test_catalogs_of_every_format_and_numeric_type_pass_through(tmp_path, setup, suffix):
    """Integer and string ids, and a kept column of every numeric type, in both byte
    orders where the format keeps them (FITS is big-endian on disk)."""
    catalog, bundle = setup
    table = read_catalog(catalog)[:4]
    table.meta.clear()
    for kind in NUMERIC:
        table[f"c_{kind}"] = np.arange(1, 5).astype(kind)
        table[f"big_{kind}"] = np.arange(1, 5).astype(">" + kind)
    table["name"] = ["a", "b,c", "c c", 'd"q']  # a comma, a space, a quote
    for ids in (np.arange(10, 14).astype(">i8"), np.array(["g10", "g11", "g12", "g13"])):
        table["object_id"] = ids
        source = tmp_path / f"cat{suffix}"
        write_table(table, source)
        if not (tmp_path / "cutouts").exists():
            (tmp_path / "cutouts").symlink_to(catalog.parent / "cutouts")
        for out_suffix in (".parquet", ".fits", ".ecsv"):
            out = tmp_path / f"p{out_suffix}"
            options = PredictOptions(**FAST, keep_columns="all", overwrite=True)
            predict(source, out=out, model=bundle, options=options)
            back = read_catalog(out)
            assert [str(i) for i in back["object_id"]] == [str(i) for i in ids]
            for kind in NUMERIC:
                for name in (f"c_{kind}", f"big_{kind}"):
                    np.testing.assert_array_equal(back[name], np.arange(1, 5), err_msg=name)
            assert [str(v) for v in back["name"]] == ["a", "b,c", "c c", 'd"q']
            assert np.isfinite(back["r_e_median"]).all()


def test_non_ascii_text_is_kept_in_parquet_and_refused_up_front_for_fits(tmp_path, setup):
    catalog, bundle = setup
    table = read_catalog(catalog)[:4]
    table.meta.clear()
    table["name"] = ["a", "bé", "Ω", "d"]
    write_table(table, tmp_path / "cat.ecsv")
    (tmp_path / "cutouts").symlink_to(catalog.parent / "cutouts")
    options = PredictOptions(**FAST, keep_columns=("name",))
    predict(tmp_path / "cat.ecsv", out=tmp_path / "p.parquet", model=bundle, options=options)
    assert list(read_catalog(tmp_path / "p.parquet")["name"]) == ["a", "bé", "Ω", "d"]
    with pytest.raises(CatalogError, match="column 'name' has the value 'bé'"):
        predict(tmp_path / "cat.ecsv", out=tmp_path / "p.fits", model=bundle, options=options)
    assert not (tmp_path / "p.fits.partial").exists()  # refused before any work
