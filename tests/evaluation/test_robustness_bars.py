"""``scripts/robustness.py``'s reading of issue 19's bars, on rows made by hand: a row
inside every bar holds, and each bar crossed by a hair is named."""

from __future__ import annotations

import pytest

from ..scripts import load_script


@pytest.fixture(scope="module")
def battery():
    return load_script("robustness")


def _row(**changes: float) -> dict[str, float]:
    row = {"flagged": 0.01, "fatal": 0.0, "bt_error": 0.08, "r_e_error": 0.03, "flux_error": 0.01}
    for p in ("bt", "r_e", "flux"):
        row.update({f"{p}_ci68": 0.6827, f"{p}_ci95": 0.9545, f"{p}_ci99": 0.9973})
    return row | changes


def test_a_row_inside_every_bar_holds(battery):
    base = _row()
    edge = _row(bt_ci68=0.6827 + 0.049, flux_ci95=0.9545 - 0.049, r_e_error=0.0449, flagged=0.1)
    assert battery.misses(edge, base) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"bt_ci68": 0.6827 - 0.051}, "bt 68"),
        ({"r_e_ci95": 0.9545 + 0.051}, "r_e 95"),
        ({"flux_error": 0.0151}, "flux error"),
        ({"flagged": 0.101}, "flagged"),
    ],
)
def test_each_bar_crossed_is_named(battery, change, named):
    assert battery.misses(_row(**change), _row()) == [named]


def test_a_row_outside_the_training_prior_may_flag_any_share(battery):
    """Issue 19: flagging galaxies a shift pushes outside the training prior is the right
    answer; its coverage bars still apply to the rest."""
    most = _row(flagged=0.75)
    assert battery.misses(most, _row(), True) == []
    assert battery.misses(most, _row()) == ["flagged"]
    assert battery.misses(_row(flagged=0.75, r_e_ci68=0.3), _row(), True) == ["r_e 68"]
    text = battery.table({"none": _row(), "fainter": most, "clumps": most})
    assert "2 of 3 rows hold" in text and "fainter than training" in text


def test_the_table_counts_the_rows_that_hold(battery):
    text = battery.table({"none": _row(), "clumps": _row(r_e_ci68=0.55)})
    assert "1 of 2 rows hold" in text
    assert "| r_e 68 |" in text


def test_a_bit_every_galaxy_carries_by_design_is_not_counted(battery):
    """Four galaxies, all NONFINITE (filled pixels), one also OUT_OF_DISTRIBUTION; truth
    inside every interval but the OOD one's, which the summary must leave out."""
    from astropy.table import Table

    from gampen.flags import Flag

    table = Table({"flags": [2, 2, 2, 2 | 8192]})
    for p in ("bt", "r_e", "flux"):
        table[f"true_{p}"] = [0.5, 0.5, 0.5, 9.0]
        table[f"{p}_median"] = [0.5, 0.5, 0.5, 0.5]
        for level in ("ci68", "ci95", "ci99"):
            table[f"{p}_{level}_lo"], table[f"{p}_{level}_hi"] = [0.4] * 4, [0.6] * 4
    counted = battery.summary(table, int(Flag.NONFINITE))
    assert counted["flagged"] == 0.25 and counted["bt_ci68"] == 1.0
    assert battery.summary(table)["flagged"] == 1.0  # every galaxy flagged without it


def test_too_few_unflagged_galaxies_are_not_judged(battery):
    """Below 20 unflagged galaxies one galaxy moves a coverage past the 5-point bar: a
    row beyond the prior then holds by its flags alone; from 20 on, it is judged."""
    few = _row(flagged=0.99, kept=19.0, bt_ci68=0.5, r_e_error=0.09)
    assert battery.misses(few, _row(), True) == []
    assert battery.misses(few, _row()) == ["flagged"]
    judged = few | {"kept": 20.0}
    assert battery.misses(judged, _row(), True) == ["bt 68", "r_e error"]
    text = battery.table({"none": _row(), "brighter": few})
    assert "(19 unflagged: not judged)" in text and "2 of 2 rows hold" in text
