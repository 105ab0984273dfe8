"""Shared figure conventions: labels with units, figures without pyplot, atomic PNG saving."""

from __future__ import annotations

from gampen.evaluation.figure_base import new_figure, param_label, save


def test_labels_carry_units_and_unknown_names_pass_through():
    assert param_label("r_e") == r"$r_e$ [arcsec]" and param_label("flux") == "flux [ADU]"
    assert param_label("sersic_n") == "sersic_n"


def test_figures_are_detached_from_pyplot_and_saved_as_png(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = new_figure(3, 2)
    fig.subplots().plot([0, 1], [0, 1])
    assert plt.get_fignums() == before and fig.get_layout_engine() is not None
    path = save(fig, tmp_path / "sub" / "a.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.png"]  # no temporary left behind
