"""gampen demo: simulate, predict, report coverage and a figure (tiny model, few galaxies)."""

from __future__ import annotations

from gampen.cli import main

from .synthetic import tiny_bundle


def test_demo_end_to_end(tmp_path, capsys):
    bundle = tiny_bundle(tmp_path, pixel_scale=0.168)
    assert main(["demo", "--out", str(tmp_path / "demo"), "--n", "6", "--model", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "coverage of the credible intervals" in out and "ci95" in out
    assert (tmp_path / "demo" / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "demo" / "predictions.fits").exists()


def test_demo_draws_clean_hsc_unless_told(tmp_path, capsys):
    from astropy.table import Table

    bundle = tiny_bundle(tmp_path, pixel_scale=0.168)
    for preset, out in (("hsc-real", "real"), ("hsc", "clean")):
        args = ["demo", "--out", str(tmp_path / out), "--n", "3", "--model", str(bundle)]
        assert main(args + (["--preset", preset] if preset == "hsc-real" else [])) == 0
        assert f"3 {preset} galaxies" in capsys.readouterr().out
        truth = Table.read(tmp_path / out / "sims" / "info.csv")
        assert ("psf_model" in truth.colnames) == (preset == "hsc-real")
