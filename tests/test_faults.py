"""Faults a survey pipeline meets: a full disk, a read-only folder, cutouts that vanish or
are truncated after the catalog was read.  Each ends in a clear error (exit status 1, no
traceback) or a per-galaxy flag, leaves nothing half-written that a rerun would trust,
and the rerun finishes the job."""

from __future__ import annotations

import errno
import filecmp
from pathlib import Path

import numpy as np
import pytest

from gampen.cli import main
from gampen.data.catalog import read_catalog
from gampen.flags import Flag

from .synthetic import TINY_NETWORK, tiny_bundle, write_labelled_set

FAST = ["--n-passes", "2", "--n-samples", "20", "--chunk-size", "8", "--num-workers", "0"]


def _fail_on_call(monkeypatch, owner, name: str, call: int, error: int) -> list[int]:
    """Make ``owner.name`` raise OSError(error) on its ``call``-th call; returns the count."""
    original, count = getattr(owner, name), [0]

    def failing(*args, **kwargs):
        count[0] += 1
        if count[0] == call:
            raise OSError(error, "injected: " + errno.errorcode[error], "/data/out")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return count


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    catalog = write_labelled_set(folder / "data", n=30)
    return catalog, tiny_bundle(folder)


def test_a_full_disk_mid_prediction_is_a_clear_error_and_the_rerun_resumes(
    tmp_path, setup, monkeypatch, capsys
):
    from gampen.infer import parts

    catalog, bundle = setup
    out = tmp_path / "p.parquet"
    args = ["predict", str(catalog), "--model", str(bundle), "--out", str(out), *FAST]
    with monkeypatch.context() as patch:
        _fail_on_call(patch, parts.pq, "write_table", 2, errno.ENOSPC)
        assert main([*args, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "ENOSPC" in err and "rerun the same command" in err and "Traceback" not in err
    partial = out.with_name("p.parquet.partial")
    assert sorted(p.name for p in partial.iterdir()) == ["0000000.parquet", "settings.json"]
    assert not out.exists()
    assert main([*args, "--no-progress"]) == 0  # space freed: the same command resumes
    assert (
        main(
            [
                "predict",
                str(catalog),
                "--model",
                str(bundle),
                "--out",
                str(tmp_path / "q.parquet"),
                *FAST,
                "--no-progress",
            ]
        )
        == 0
    )
    assert filecmp.cmp(out, tmp_path / "q.parquet", shallow=False)


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path, setup, monkeypatch, capsys):
    from gampen.infer.predict import PosteriorModule

    catalog, bundle = setup
    original = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.name.endswith(".partial"):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    monkeypatch.setattr(PosteriorModule, "predict_step", lambda *a: pytest.fail("computed"))
    out = tmp_path / "ro" / "p.fits"
    assert main(["predict", str(catalog), "--model", str(bundle), "--out", str(out), *FAST]) == 1
    err = capsys.readouterr().err
    assert "Read-only file system" in err and "choose another --out" in err
    assert not out.exists() and "Traceback" not in err


def test_a_full_disk_while_simulating_is_clear_and_the_rerun_gives_the_same_set(
    tmp_path, monkeypatch, capsys
):
    from gampen.simulation import cutout

    args = ["simulate", "--preset", "hsc", "--n", "6", "--seed", "2", "--workers", "1"]
    with monkeypatch.context() as patch:
        _fail_on_call(patch, cutout, "atomic_path", 4, errno.ENOSPC)
        assert main([*args, "--out", str(tmp_path / "a"), "--no-progress"]) == 1
    assert "ENOSPC" in capsys.readouterr().err
    files = sorted(p.name for p in (tmp_path / "a" / "cutouts").iterdir())
    assert files == ["0.fits", "1.fits", "2.fits"]  # whole files only, no temporaries
    assert main([*args, "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    for name in ["info.csv", *(f"cutouts/{i}.fits" for i in range(6))]:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name


def test_a_full_disk_while_checkpointing_is_clear_and_resume_finishes(
    tmp_path, monkeypatch, capsys
):
    import json

    from gampen.training.checkpoint_io import SafeCheckpointIO

    catalog = write_labelled_set(tmp_path / "data", n=40)
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps({"network": TINY_NETWORK}))
    args = ["train", str(catalog), "--out", str(tmp_path / "m"), "--input-size", "32"]
    args += ["--epochs", "3", "--batch-size", "16", "--config", str(config), "--no-progress"]
    args += ["--logger", "csv"]
    with monkeypatch.context() as patch:
        _fail_on_call(patch, SafeCheckpointIO, "save_checkpoint", 3, errno.ENOSPC)
        assert main(args) == 1
    assert "ENOSPC" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert main([*args, "--resume"]) == 0
    assert (tmp_path / "m" / "gampen.json").is_file()


def test_cutouts_that_vanish_or_are_truncated_after_the_catalog_is_read_are_flagged(
    tmp_path, setup, monkeypatch
):
    from gampen.infer import predict as predict_module

    catalog, bundle = setup
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "cutouts").mkdir()
    for p in (catalog.parent / "cutouts").iterdir():
        (folder / "cutouts" / p.name).write_bytes(p.read_bytes())
    copy = folder / "info.csv"
    copy.write_text(catalog.read_text())
    original = predict_module.bundle_dataset

    def then_break_files(*args, **kwargs):
        dataset = original(*args, **kwargs)
        (folder / "cutouts" / "0003.fits").unlink()
        broken = folder / "cutouts" / "0005.fits"
        broken.write_bytes(broken.read_bytes()[:3000])
        return dataset

    monkeypatch.setattr(predict_module, "bundle_dataset", then_break_files)
    out = tmp_path / "p.ecsv"
    assert main(["predict", str(copy), "--model", str(bundle), "--out", str(out), *FAST]) == 0
    table = read_catalog(out)
    bad = np.isin(table["object_id"], [3, 5])
    assert np.all(table["flags"][bad] & Flag.UNREADABLE)
    assert np.all(np.isnan(table["r_e_median"][bad]))
    assert np.all(table["flags"][~bad] == 0) and np.isfinite(table["r_e_median"][~bad]).all()
