"""Writing files so that nothing is lost: a temporary name, then a rename.

``atomic_write(path)`` yields a binary file in the destination folder under a
temporary name; when the block finishes, the data is flushed to disk and the
file renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows).
If the block raises, or the process dies, the old ``path`` is untouched and
the temporary file is removed (or, after a crash, left under a name that
starts with ``.`` and ends with ``.tmp``). The new file gets the usual
permissions (0666 minus the umask), as if it had been opened directly.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
