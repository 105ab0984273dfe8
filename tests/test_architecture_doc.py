"""``docs/architecture.md`` keeps matching the code: it names every subpackage, its flag
table is :mod:`gampen.flags`'s, and its layer table and rule are those that
``tests/test_layers.py`` enforces."""

from __future__ import annotations

import re
from pathlib import Path

import gampen
from gampen.flags import FATAL, MEANINGS, Flag

from . import test_layers
from .test_layers import GROUPS

DOC = Path(__file__).parents[1] / "docs" / "architecture.md"
SRC = Path(gampen.__file__).parent
LAYER_HEADER = "| layer | group | members |"
FLAG_ROW = re.compile(r"^\| (\d+) \| `(\w+)` \| (.*?) \| (yes|) \|$")


def subpackages(root: Path = SRC) -> list[str]:
    """Dotted names of every package under ``root`` (directories with ``__init__.py``)."""
    return sorted(
        ".".join(("gampen", *p.parent.relative_to(root).parts))
        for p in root.rglob("__init__.py")
        if p.parent != root
    )


def layer_table(text: str) -> dict[str, tuple[int, frozenset[str]]]:
    """The document's layer table: group -> (layer, members)."""
    lines = text.splitlines()
    if LAYER_HEADER not in lines:
        return {}
    table = {}
    for line in lines[lines.index(LAYER_HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        layer, group, members = (cell.strip() for cell in line.strip("|").split("|"))
        table[group] = (int(layer), frozenset(re.findall(r"`([^`]+)`", members)))
    return table


def the_rule() -> str:
    """The sentence after "The rule:" in ``tests/test_layers.py``'s docstring."""
    words = " ".join((test_layers.__doc__ or "").split())
    return words.split("The rule: ", 1)[1].split(".", 1)[0]


def problems(text: str) -> list[str]:
    """Where ``text`` (the document) disagrees with the code, as readable lines."""
    found = []
    for package in subpackages():
        if not re.search(re.escape(package) + r"(?!\w)", text):
            found.append(f"package {package} is not named")
    rows = {}
    for line in text.splitlines():
        match = FLAG_ROW.match(line)
        if match:
            rows[match.group(2)] = (int(match.group(1)), match.group(3), match.group(4) == "yes")
    for flag in Flag:
        expected = (int(flag), MEANINGS[flag], bool(flag & FATAL))
        if flag.name not in rows:
            found.append(f"flag {flag.name} is not in the flag table")
        elif rows[flag.name] != expected:
            found.append(f"flag {flag.name}: the table says {rows[flag.name]}, the code {expected}")
    found += [
        f"flag table has {name}, which gampen.flags lacks"
        for name in rows.keys() - set(Flag.__members__)
    ]
    table = layer_table(text)
    expected_table = {
        group: (layer, frozenset(members)) for group, (layer, members) in GROUPS.items()
    }
    for group in expected_table.keys() - table.keys():
        found.append(f"layer group {group!r} is missing")
    for group in table.keys() - expected_table.keys():
        found.append(f"layer group {group!r} is not in tests/test_layers.py")
    for group in table.keys() & expected_table.keys():
        (layer, members), (want_layer, want_members) = table[group], expected_table[group]
        if layer != want_layer:
            found.append(
                f"layer group {group!r}: layer {layer}, tests/test_layers.py says {want_layer}"
            )
        if members != want_members:
            found.append(
                f"layer group {group!r}: members lack {sorted(want_members - members)}, "
                f"extra {sorted(members - want_members)}"
            )
    if " ".join(the_rule().split()) not in " ".join(text.split()):
        found.append(f"the rule of tests/test_layers.py is not stated: {the_rule()!r}")
    return found


def test_the_architecture_page_matches_the_code():
    assert not problems(DOC.read_text(encoding="utf-8"))


def test_the_packages_and_layers_it_checks_are_the_real_ones():
    assert "gampen.calibration" in subpackages() and "gampen.models" in subpackages()
    assert "gampen" not in subpackages()
    assert the_rule() == "a module may import a module of a lower layer, or one of its own group"
    assert layer_table(DOC.read_text(encoding="utf-8"))["infer"] == (4, {"gampen.infer.*"})


def test_the_checker_reports_a_page_that_drifted():
    text = DOC.read_text(encoding="utf-8")
    # A package never named: every mention of gampen.training gone (its layer row too).
    found = "\n".join(problems(text.replace("gampen.training", "gampen.trainer")))
    assert "package gampen.training is not named" in found
    assert "layer group 'training': members lack ['gampen.training.*']" in found
    # A flag row dropped, one with a wrong meaning, one made non-fatal.
    drifted = "\n".join(
        line for line in text.splitlines() if not line.startswith("| 8192 | `OUT_OF_DISTRIBUTION`")
    )
    drifted = drifted.replace("| 4 | `CROPPED` | cutout larger", "| 4 | `CROPPED` | cutout bigger")
    drifted = drifted.replace(
        "| 512 | `MASKED_CORE` | over 5 % of the central pixels without data | yes |",
        "| 512 | `MASKED_CORE` | over 5 % of the central pixels without data |  |",
    )
    found = "\n".join(problems(drifted))
    assert "flag OUT_OF_DISTRIBUTION is not in the flag table" in found
    assert "flag CROPPED: the table says" in found
    assert "flag MASKED_CORE: the table says" in found
    # A group on the wrong layer, one renamed, and the rule not stated.
    drifted = text.replace("| 4 | infer |", "| 5 | infer |").replace(
        "| 1 | data |", "| 1 | data and more |"
    )
    drifted = drifted.replace("or one of its own group", "or any group of its layer")
    found = "\n".join(problems(drifted))
    assert "layer group 'infer': layer 5, tests/test_layers.py says 4" in found
    assert "layer group 'data' is missing" in found
    assert "layer group 'data and more' is not in tests/test_layers.py" in found
    assert "the rule of tests/test_layers.py is not stated" in found
    # No layer table at all.
    found = "\n".join(problems(text.replace(LAYER_HEADER, "| layer | group |")))
    assert "layer group 'core' is missing" in found
