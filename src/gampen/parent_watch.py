"""Worker processes that die with their parent, so a killed run leaves no orphans behind.

A ``kill -9`` of the main process gives its workers no signal: they are re-parented and,
left alone, go on writing files for a run that no longer exists.  :func:`exit_with_parent`
(an initializer for process pools) starts a daemon thread in the worker that notices the
re-parenting and ends the worker within a second.  It works on Linux and macOS alike,
unlike ``prctl(PR_SET_PDEATHSIG)``.  A worker ended mid-write leaves only a temporary
file, which the resumed run removes.
"""

from __future__ import annotations

import os
import threading
import time

#: Seconds between checks of the parent process.
POLL_SECONDS = 0.5


def exit_with_parent(parent_pid: int) -> None:
    """In a worker: end this process as soon as ``parent_pid`` is no longer its parent."""
    thread = threading.Thread(target=_watch, args=(parent_pid,), daemon=True)
    thread.start()


def _watch(parent_pid: int) -> None:
    """Poll the parent's pid; exit at once (no cleanup handlers) when it changes."""
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)
