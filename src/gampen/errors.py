"""The exceptions gampen raises for bad input, each carrying the bad value and what was expected.

Follows GalSim's habit: a small hierarchy, never ``assert`` for user input.  Every class
is also a subclass of the matching built-in (``ValueError``, ``OSError``) so callers that
catch the built-ins keep working.
"""

from __future__ import annotations

from typing import Any


class GampenError(Exception):
    """Base class of every error gampen raises on purpose."""


class GampenValueError(GampenError, ValueError):
    """A value is outside what is allowed; names the value and the allowed range."""

    def __init__(self, message: str, *, value: Any = None, allowed: Any = None) -> None:
        self.value = value
        self.allowed = allowed
        parts = [message]
        if value is not None:
            parts.append(f"got {value!r}")
        if allowed is not None:
            parts.append(f"expected {allowed}")
        super().__init__("; ".join(parts))


class ConfigError(GampenValueError):
    """A configuration field (YAML or CLI flag) is missing, unknown or out of range."""


class CatalogError(GampenValueError):
    """A catalog file or one of its columns is unusable."""


class CutoutError(GampenError, OSError):
    """A cutout file cannot be used: missing, unreadable, wrong shape or too small.

    ``flag`` is the :class:`gampen.flags.Flag` a batch run records instead of raising.
    """

    def __init__(self, path: Any, reason: str, *, flag: int) -> None:
        self.path = str(path)
        self.reason = reason
        self.flag = int(flag)
        super().__init__(f"{self.path}: {reason}")


class BundleError(GampenValueError):
    """A model bundle is malformed, incomplete or from an unknown format version."""
