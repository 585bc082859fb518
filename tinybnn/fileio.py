"""Writing files so that nothing is lost: a temporary name, then a rename.

``atomic_write(path)`` yields a binary file in the destination folder under a
temporary name, ``.<name>.<12 hex digits>.tmp``; when the block finishes, the
data is flushed to disk and the file renamed over ``path`` (``os.replace`` is
atomic on POSIX and Windows). If the block raises, or the process dies, the
old ``path`` is untouched and the temporary file is removed (or, after a
crash, left behind). The next successful write of the same ``path`` removes
such leftovers: exactly the files named ``.<name>.<12 hex digits>.tmp`` for
that name, nothing else. (Two processes writing the same ``path`` at the same
moment could remove each other's temporary file; the loser then fails with
an ``OSError`` and the file in place stays whole.) The new file gets the
usual permissions (0666 minus the umask), as if it had been opened directly.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO, Iterator


def temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete what killed writes of ``target`` left (``.<name>.<12 hex>.tmp``); return what went."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{12}}\.tmp")
    removed = []
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    target = Path(path)
    temporary = temporary_name(target)
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
    remove_stale_temporaries(target)
