"""Library calls stay quiet: Lightning's banners, tips and deprecation chatter are hidden.

``gampen.infer.predict.predict`` and ``gampen.training.fit.train`` run inside
:func:`quiet_lightning`, so a notebook or pipeline calling them sees gampen's own messages
and progress bars only.  Lightning talks again when gampen's logger is at DEBUG (as
``gampen --verbose`` sets it).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")
#: Lightning's own deprecation chatter (from torch's pytree), nothing a user can act on.
LIGHTNING_DEPRECATIONS = ".*LeafSpec.*is deprecated"


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Within the block, Lightning logs warnings and errors only, unless gampen is verbose."""
    if logging.getLogger("gampen").isEnabledFor(logging.DEBUG):
        yield
        return
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=LIGHTNING_DEPRECATIONS)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
