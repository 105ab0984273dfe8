"""Atomic file writing: a reader never sees a half-written output file.

Write to a temporary file in the same folder, flush it to disk, then ``os.replace`` it
onto the final name (atomic on POSIX and Windows within one filesystem).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one step.

    The temporary name keeps the final suffix so that writers choosing a format by
    extension (astropy, h5py) behave the same.  On error the temporary file is removed
    and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix="".join(final.suffixes) or ".tmp", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers such as astropy refuse to overwrite without being told
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
