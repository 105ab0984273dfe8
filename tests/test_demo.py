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
