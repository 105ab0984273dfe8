"""Imports run one way: no module of gampen imports from a layer above its own.

The layers, low to high.  A module belongs to the group of its package (``gampen.data.*``
is data), unless it is named on its own: the modules named below are the entry points
and workflows, and the calibration package is split between its numpy maths (low) and
its driver and command line (top).

0. core: the top-level helpers (errors, checks, atomic, checksum, flags, seeding, quiet,
   parent_watch), and ``from gampen import __version__`` (a constant the package root
   sets before it imports anything);
1. data: ``gampen.data``;
2. simulation: ``gampen.simulation``; calibration maths: ``gampen.calibration`` (its
   ``maps``, which model bundles validate with, its ``ranks`` and its ``fit``);
3. model: ``gampen.model`` and ``gampen.models`` (the shipped bundles);
4. infer: ``gampen.infer``;
5. training: ``gampen.training``; evaluation: ``gampen.evaluation``;
6. workflows and interfaces: the package root ``gampen`` (it re-exports the api),
   ``__main__``, ``api``, ``cli``, ``demo``, every module that registers a sub-command
   (``cli.COMMAND_MODULES``: the packages' ``command`` modules, ``data.commands``,
   ``infer.crop_command``) and ``gampen.calibration.workflow`` (the calibrate driver,
   which draws samples through infer).

The rule: a module may import a module of a lower layer, or one of its own group.  Groups
that share a layer stay apart (simulation never imports the calibration maths, training
never evaluation, nor the other way round).  Every import statement counts, at module
level or inside a function, under ``TYPE_CHECKING`` or not; imports by name string
(``importlib.import_module``) are not seen.  Every module under ``src/gampen`` must
belong to a group, so a new one has to be placed here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import gampen
from gampen.cli import COMMAND_MODULES

SRC = Path(gampen.__file__).parent

#: The groups, each with its layer and the modules it holds: ``name.*`` is a package and
#: all its modules, a plain name the one module.  A plain name outranks a ``.*``.
GROUPS: dict[str, tuple[int, tuple[str, ...]]] = {
    "core": (
        0,
        (
            "gampen.errors",
            "gampen.checks",
            "gampen.atomic",
            "gampen.checksum",
            "gampen.flags",
            "gampen.seeding",
            "gampen.quiet",
            "gampen.parent_watch",
            "gampen.__version__",
        ),
    ),
    "data": (1, ("gampen.data.*",)),
    "simulation": (2, ("gampen.simulation.*",)),
    "calibration maths": (2, ("gampen.calibration.*",)),
    "model": (3, ("gampen.model.*", "gampen.models.*")),
    "infer": (4, ("gampen.infer.*",)),
    "training": (5, ("gampen.training.*",)),
    "evaluation": (5, ("gampen.evaluation.*",)),
    "workflows and interfaces": (
        6,
        (
            "gampen",
            "gampen.__main__",
            "gampen.api",
            "gampen.cli",
            "gampen.demo",
            "gampen.calibration.workflow",
            *COMMAND_MODULES,
        ),
    ),
}
#: Names the package root defines before it imports anything: importing them is core.
ROOT_CONSTANTS = frozenset({"__version__"})


def group_of(module: str) -> str | None:
    """The group a module belongs to (None: none names it)."""
    best, score = None, -1
    for group, (_, members) in GROUPS.items():
        for member in members:
            if member == module:
                found = len(member) + 1  # a plain name outranks the package holding it
            elif member.endswith(".*") and (
                module == member[:-2] or module.startswith(member[:-1])
            ):
                found = len(member) - 2
            else:
                continue
            if found > score:
                best, score = group, found
    return best


def imported(module: str, source: str, modules: frozenset[str]) -> Iterator[tuple[str, int]]:
    """The gampen modules (or ``gampen.__version__``-like root constants) that ``source``,
    the text of ``module``, imports, with the line of each import; ``modules`` are all the
    module names there are (to tell ``from package import module`` from a name)."""
    package = module if f"{module}.__init__" in modules else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "gampen" or alias.name.startswith("gampen."):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            if base != "gampen" and not base.startswith("gampen."):
                continue
            for alias in node.names:
                name = f"{base}.{alias.name}"
                if name in modules or f"{name}.__init__" in modules:
                    yield name, node.lineno
                elif base == "gampen" and alias.name in ROOT_CONSTANTS:
                    yield name, node.lineno  # a constant of the root, listed as core
                else:
                    yield base, node.lineno


def violations(sources: Mapping[str, str]) -> list[str]:
    """Every import of ``sources`` (module name -> text) that breaks the rule of the
    module docstring, and every module that belongs to no group, as readable lines."""
    modules = frozenset(sources)
    found = []
    for module, source in sorted(sources.items()):
        name = module.removesuffix(".__init__")
        group = group_of(name)
        if group is None:
            found.append(f"{name}: belongs to no layer (add it to GROUPS in tests/test_layers.py)")
            continue
        layer = GROUPS[group][0]
        for target, line in imported(name, source, modules):
            target_group = group_of(target)
            if target_group is None:
                found.append(f"{name}:{line} imports {target}, which belongs to no layer")
                continue
            target_layer = GROUPS[target_group][0]
            if target_group != group and target_layer >= layer:
                found.append(
                    f"{name}:{line} ({group}, layer {layer}) imports {target} "
                    f"({target_group}, layer {target_layer})"
                )
    return found


def package_sources(root: Path = SRC) -> dict[str, str]:
    """Module name (``gampen.model.bundle``; ``gampen.model.__init__`` for a package) ->
    source text, for every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def test_no_module_imports_from_a_higher_layer():
    problems = violations(package_sources())
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_every_command_module_is_an_interface_and_the_calibration_maths_are_low():
    for name in COMMAND_MODULES:
        assert group_of(name) == "workflows and interfaces", name
    assert group_of("gampen.calibration.maps") == "calibration maths"
    assert group_of("gampen.calibration.fit") == "calibration maths"
    assert group_of("gampen.calibration.workflow") == "workflows and interfaces"
    assert group_of("gampen.model.bundle") == "model"
    assert group_of("gampen.errors") == "core" and group_of("gampen.erros") is None
    assert group_of("gampen.datasets") is None  # a prefix of a name is not its package


def _with(extra: dict[str, str]) -> dict[str, str]:
    """The package's real sources plus synthetic modules."""
    return {**package_sources(), **extra}


def test_the_checker_reports_an_upward_import_wherever_it_is_written():
    sources = _with(
        {
            "gampen.model.upward": "from gampen.infer.predict import predict\n",
            "gampen.data.lazy": "def f():\n    import gampen.evaluation.pipeline\n",
            "gampen.calibration.relative": "from ..infer import sampling\n",
            "gampen.model.maths": "from gampen.calibration import fit\n",
        }
    )
    problems = "\n".join(violations(sources))
    assert "gampen.model.upward:1 (model, layer 3) imports gampen.infer.predict" in problems
    assert "gampen.data.lazy:2 (data, layer 1) imports gampen.evaluation.pipeline" in problems
    assert "gampen.calibration.relative:1 (calibration maths, layer 2) imports " in problems
    assert "imports gampen.infer.sampling (infer, layer 4)" in problems
    assert "gampen.model.maths" not in problems  # downward: the model uses the maths


def test_the_checker_keeps_groups_of_one_layer_apart_and_places_new_modules():
    sources = _with(
        {
            "gampen.training.peek": "from gampen.evaluation import marginal\n",
            "gampen.simulation.peek": "import gampen.calibration.maps\n",
            "gampen.helpers": "import numpy\n",
            "gampen.data.version": "from gampen import __version__\n",
            "gampen.data.facade": "from gampen import predict\n",
        }
    )
    problems = "\n".join(violations(sources))
    assert "gampen.training.peek:1 (training, layer 5) imports gampen.evaluation.marginal" in (
        problems
    )
    assert "gampen.simulation.peek:1 (simulation, layer 2) imports gampen.calibration.maps" in (
        problems
    )
    assert "gampen.helpers: belongs to no layer" in problems
    assert "gampen.data.version" not in problems  # the version is a core constant
    assert "gampen.data.facade:1 (data, layer 1) imports gampen (workflows" in problems
