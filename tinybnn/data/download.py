"""Download one file with an md5 check, never leaving a partial file under its name.

:func:`fetch` streams the URL into a temporary file in the destination
folder (``.<name>.<random>.tmp``, :func:`tinybnn.fileio.atomic_write`),
checks the length announced by the server and the md5 of what arrived, and
only then renames it to the final name with ``os.replace`` (atomic on one
file system). On any failure (no network, timeout, HTTP error, connection
cut short, checksum mismatch, interruption) the temporary file is removed,
the final name is left as it was, and a
:class:`~tinybnn.errors.DataFileError` says what happened and what to do.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Union

from tinybnn.errors import DataFileError
from tinybnn.fileio import atomic_write

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_TIMEOUT = 30.0  # seconds without progress before giving up

_CHUNK = 1 << 16


class DownloadError(DataFileError):
    """A download that failed; ``reason`` is the short cause (e.g. ``"HTTP 404 Not Found"``)."""

    def __init__(self, message: str, *, url: str, dest: Path, reason: str):
        super().__init__(message)
        self.url = url
        self.dest = dest
        self.reason = reason


def md5_of_file(path: PathLike) -> str:
    """Hex md5 of a file's bytes, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(error: BaseException) -> str:
    """A short human reason for a network error."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        if not isinstance(error.reason, BaseException):
            return str(error.reason)
        error = error.reason
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host name: {error.strerror or error}"
    if isinstance(error, http.client.IncompleteRead):
        return f"connection closed after {len(error.partial):,} bytes"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def fetch(url: str, dest: PathLike, md5: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``; check ``md5`` (hex) unless it is None.

    The destination folder is created if needed. An existing file at ``dest``
    is replaced only by a complete download whose checksum matches.
    ``timeout`` bounds the connection and each read, in seconds.
    Raises :class:`DownloadError` (a :class:`~tinybnn.errors.DataFileError`)
    naming the URL and ``dest``, with the short cause in its ``reason``.
    """
    dest = Path(dest)
    by_hand = f"download {url} by hand and save it as {dest.absolute()}"
    opened = False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(dest) as out:
            opened = True
            digest = hashlib.md5(usedforsecurity=False)
            received = 0
            with urllib.request.urlopen(url, timeout=timeout) as response:
                announced = response.headers.get("Content-Length")
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
            if announced is not None and announced.isdigit() and received != int(announced):
                reason = f"cut short: received {received:,} of {int(announced):,} bytes"
                raise DownloadError(
                    f"download of {url} was {reason}; {dest.absolute()} was not written; try again, or {by_hand}",
                    url=url,
                    dest=dest,
                    reason=reason,
                )
            if md5 is not None and digest.hexdigest() != md5.lower():
                reason = f"md5 {digest.hexdigest()}, expected {md5.lower()}"
                raise DownloadError(
                    f"download of {url} failed its checksum: {reason} ({received:,} bytes received); "
                    f"{dest.absolute()} was not written; the server sent a damaged or different file: "
                    f"try again later or another mirror, or {by_hand} after checking its md5",
                    url=url,
                    dest=dest,
                    reason=reason,
                )
    except BaseException as error:
        if isinstance(error, DataFileError):
            raise
        if isinstance(error, OSError) and not opened:
            reason = f"cannot write into {dest.parent.absolute()}: {error.strerror or error}"
            raise DownloadError(
                f"{reason}; choose another folder, or {by_hand}", url=url, dest=dest, reason=reason
            ) from error
        if opened and isinstance(error, (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)):
            if isinstance(error, urllib.error.HTTPError):
                advice = "the server does not offer the file there: try again later or another mirror"
            else:
                advice = "check the network connection and try again"
            reason = _reason(error)
            raise DownloadError(
                f"cannot download {url} ({reason}); {dest.absolute()} was not written; {advice}, or {by_hand}",
                url=url,
                dest=dest,
                reason=reason,
            ) from error
        raise  # KeyboardInterrupt and bugs keep their type (the temporary file is gone)
    return dest
