"""Writing files so that nothing is lost: a temporary name, then a rename.

``atomic_write(path)`` yields a binary file in the destination folder under a
temporary name; when the block finishes, the data is flushed to disk and the
file renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows).
If the block raises, or the process dies, the old ``path`` is untouched and
the temporary file is removed (or, after a crash, left under a name that
starts with ``.`` and ends with ``.tmp``).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise
