"""Model bundles shipped with gampen, and where to find the default one."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from gampen.errors import BundleError

#: The bundle ``gampen predict`` uses when no --model is given.
DEFAULT_MODEL = "hsc-compact"


def default_model_path() -> Path:
    """Path of the shipped default bundle; a clear error if this installation has none."""
    path = Path(str(resources.files("gampen.models") / DEFAULT_MODEL))
    if not (path / "gampen.json").is_file():
        raise BundleError(
            f"no default model bundle ships at {path}",
            allowed="--model BUNDLE (a bundle written by 'gampen train')",
        )
    return path
