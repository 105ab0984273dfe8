"""Simulated training sets with exact truth: ``gampen simulate`` (docs/architecture.md).

GalSim renders a bulge + disk galaxy, its neighbours, a Moffat PSF and sky-limited coadd
noise into ``OUT/cutouts/<object_id>.fits``, with the galaxy's PSF image (as a PSF model
reports it) in the HDU ``PSF``; the exact truth goes to ``OUT/info.csv``.
Survey presets (``hsc``, ``lsst``, ``euclid-vis``) are YAML files in ``presets/``.

Python use::

    from gampen.simulation import load_config, simulate, write_preview

    simulate(load_config("hsc", {"neighbours": {"probability": 0.8}}), "sims/hsc", n=1000)
    write_preview("sims/hsc", "sims/hsc.png")
"""

from __future__ import annotations

from typing import Any

#: Lazily imported names (GalSim loads only when a simulation is actually run).
_EXPORTS = {
    "load_config": "gampen.simulation.presets",
    "simulate": "gampen.simulation.runner",
    "write_preview": "gampen.simulation.preview",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import ``load_config``, ``simulate`` and ``write_preview`` on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gampen.simulation' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
