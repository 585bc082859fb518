"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

IDX layout (all integers big-endian)::

    bytes 0-1   0x00 0x00
    byte  2     type code: 0x08 ubyte, 0x09 byte, 0x0B short (int16),
                0x0C int (int32), 0x0D float (float32), 0x0E double (float64)
    byte  3     number of dimensions, ndim >= 1
    4 * ndim    the dimensions, one unsigned 32-bit integer each
    payload     prod(dims) items of the type, big-endian, C order

A file may be raw IDX or gzip-compressed IDX; gzip is recognised by its
magic bytes ``1f 8b``, whatever the file is called. A file whose name ends in
``.gz`` but whose bytes are not gzip is refused.

:func:`read_idx` checks everything before trusting it: the magic, the type
code, the dimensions, and that the payload holds exactly
``prod(dims) * itemsize`` bytes, no more, no less. A header that claims more
data than the file holds is refused before anything of that size is
allocated: raw files are compared with their size on disk, gzip files are
decompressed in bounded chunks, never more than the claimed size plus one
byte. Every problem raises :class:`~tinybnn.errors.DataFileError` naming the
file; no other exception escapes for bad bytes.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from tinybnn.errors import ArgumentError, DataFileError
from tinybnn.fileio import atomic_write

PathLike = Union[str, "os.PathLike[str]"]
Readable = BinaryIO | io.BufferedIOBase  # an open file, or the GzipFile reading it

GZIP_MAGIC = b"\x1f\x8b"

#: IDX type code -> (name in the IDX documentation, NumPy dtype as stored).
IDX_TYPES: dict[int, tuple[str, np.dtype]] = {
    0x08: ("ubyte", np.dtype("u1")),
    0x09: ("byte", np.dtype("i1")),
    0x0B: ("short", np.dtype(">i2")),
    0x0C: ("int", np.dtype(">i4")),
    0x0D: ("float", np.dtype(">f4")),
    0x0E: ("double", np.dtype(">f8")),
}

#: Payloads larger than this are refused unless ``max_bytes`` says otherwise
#: (2 GiB; the full MNIST training images are 47 MB). It bounds what a gzip
#: file that decompresses to a huge, self-consistent payload can cost.
DEFAULT_MAX_BYTES = 2**31

_CHUNK = 1 << 20  # bytes decompressed per read


def _type_list() -> str:
    return ", ".join(f"0x{code:02X} {name}" for code, (name, _) in IDX_TYPES.items())


def _describe(dims: tuple[int, ...], type_name: str) -> str:
    return " x ".join(str(d) for d in dims) + " " + type_name


def _name(path: Path) -> str:
    return str(path.absolute())


def _read_exact(stream: Readable, count: int) -> bytes:
    """Read ``count`` bytes, or fewer only at the end of the stream."""
    parts = []
    remaining = count
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _parse_header(path: Path, stream: Readable, gzipped: bool) -> tuple[int, tuple[int, ...], int]:
    """Read and check the header; return (type code, dims, header length)."""
    where = "after gzip decompression, " if gzipped else ""
    magic = _read_exact(stream, 4)
    if len(magic) < 4:
        if not magic:
            raise DataFileError(f"{_name(path)}: {where}the file is empty, expected an IDX header")
        raise DataFileError(f"{_name(path)}: {where}only {len(magic)} bytes, too short for the 4-byte IDX magic number")
    value = int.from_bytes(magic, "big")
    if magic[:2] != b"\x00\x00":
        hint = ""
        if magic[:2] == GZIP_MAGIC:
            hint = " (the data is gzip-compressed twice)"
        raise DataFileError(
            f"{_name(path)}: {where}not an IDX file: magic number is 0x{value:08X}, expected "
            f"0x0000TTNN (two zero bytes, a type code TT, the number of dimensions NN){hint}"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        raise DataFileError(
            f"{_name(path)}: {where}unknown IDX type code 0x{code:02X} in magic number "
            f"0x{value:08X}; expected one of {_type_list()}"
        )
    if ndim == 0:
        raise DataFileError(
            f"{_name(path)}: {where}IDX header declares 0 dimensions (magic 0x{value:08X}); expected at least 1"
        )
    raw_dims = _read_exact(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataFileError(
            f"{_name(path)}: {where}IDX header declares {ndim} dimensions ({4 * ndim} bytes) but "
            f"the file ends after {len(raw_dims)} of those bytes: the file is truncated"
        )
    dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    return code, dims, 4 + 4 * ndim


def _size_error(
    path: Path, found: int, expected: int, dims: tuple[int, ...], type_name: str, gzipped: bool
) -> DataFileError:
    what = "decompressed payload" if gzipped else "payload"
    if found < expected:
        size, verdict = f"{found:,}", "the file is truncated"
    elif gzipped:  # the bounded read stops one byte past the claimed size
        size, verdict = f"more than {expected:,}", "extra bytes after the data"
    else:
        size, verdict = f"{found:,}", f"{found - expected:,} extra bytes after the data"
    return DataFileError(
        f"{_name(path)}: {what} has {size} bytes, header claims {expected:,} ({_describe(dims, type_name)}): {verdict}"
    )


def _to_array(path: Path, buffer: bytearray | np.ndarray, code: int, dims: tuple[int, ...]) -> np.ndarray:
    """Turn a payload of the right length into an array of shape ``dims``."""
    type_name, stored = IDX_TYPES[code]
    # NumPy refuses shapes whose non-zero dimensions multiply past its index
    # range, even when another dimension is 0 and the array would be empty.
    if math.prod(d for d in dims if d) * stored.itemsize > np.iinfo(np.intp).max:
        raise DataFileError(f"{_name(path)}: IDX dimensions {_describe(dims, type_name)} are too large for an array")
    array = np.frombuffer(buffer, dtype=stored)
    if stored.byteorder == ">":
        array = array.astype(stored.newbyteorder("="))
    return array.reshape(dims)


def _read_raw(path: Path, stream: io.BufferedIOBase, max_bytes: int | None) -> np.ndarray:
    code, dims, header_len = _parse_header(path, stream, gzipped=False)
    type_name, stored = IDX_TYPES[code]
    expected = math.prod(dims) * stored.itemsize
    found = os.fstat(stream.fileno()).st_size - header_len
    if found != expected:
        raise _size_error(path, found, expected, dims, type_name, gzipped=False)
    _check_limit(path, expected, dims, type_name, max_bytes)
    buffer = np.empty(expected, dtype=np.uint8)
    got = stream.readinto(buffer.data) if expected else 0
    if got != expected:  # the file shrank while we read it
        raise _size_error(path, got, expected, dims, type_name, gzipped=False)
    return _to_array(path, buffer, code, dims)


def _read_gzip(path: Path, stream: BinaryIO, max_bytes: int | None) -> np.ndarray:
    with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
        code, dims, _ = _parse_header(path, unzipped, gzipped=True)
        type_name, stored = IDX_TYPES[code]
        expected = math.prod(dims) * stored.itemsize
        _check_limit(path, expected, dims, type_name, max_bytes)
        # Bounded read: never ask for more than expected + 1 bytes, in chunks,
        # so that a header lying about its size costs only what the file holds.
        # Reading up to the end of the stream also makes gzip check its CRC.
        buffer = bytearray()
        while len(buffer) <= expected:
            chunk = unzipped.read(min(_CHUNK, expected + 1 - len(buffer)))
            if not chunk:
                break
            buffer += chunk
    if len(buffer) != expected:
        raise _size_error(path, len(buffer), expected, dims, type_name, gzipped=True)
    return _to_array(path, buffer, code, dims)


def _check_limit(path: Path, expected: int, dims: tuple[int, ...], type_name: str, max_bytes: int | None) -> None:
    if max_bytes is not None and expected > max_bytes:
        raise DataFileError(
            f"{_name(path)}: header claims {expected:,} bytes of data ({_describe(dims, type_name)}), "
            f"more than the limit of {max_bytes:,} bytes; if the file really is that large, pass max_bytes=None"
        )


def read_idx(path: PathLike, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a NumPy array in native byte order.

    Returns an array of shape ``dims`` and dtype uint8, int8, int16, int32,
    float32 or float64 (from the type code). Raises
    :class:`~tinybnn.errors.DataFileError`, naming the file, if it is missing,
    unreadable, not gzip although named ``.gz``, not IDX, truncated, longer
    than its header says, or larger than ``max_bytes`` (``None``: no limit).
    """
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            start = _read_exact(stream, 2)
            stream.seek(0)
            if start == GZIP_MAGIC:
                return _read_gzip(path, stream, max_bytes)
            if path.name.lower().endswith(".gz"):
                hint = ""
                if start == b"\x00\x00":
                    hint = f"; it looks like uncompressed IDX: rename it to {path.name[:-3]}"
                raise DataFileError(
                    f"{_name(path)}: named .gz but is not gzip data (it starts with "
                    f"{start.hex(' ') or 'nothing'}, gzip starts with 1f 8b){hint}"
                )
            return _read_raw(path, stream, max_bytes)
    except DataFileError:
        raise
    except FileNotFoundError:
        raise DataFileError(f"{_name(path)}: no such file") from None
    except EOFError as error:
        raise DataFileError(f"{_name(path)}: the gzip stream is cut short ({error}): the file is truncated") from error
    except (gzip.BadGzipFile, zlib.error) as error:
        raise DataFileError(f"{_name(path)}: corrupt gzip data ({error})") from error
    except OSError as error:
        raise DataFileError(f"{_name(path)}: cannot read the file ({error.strerror or error})") from error


def _idx_code(dtype: np.dtype) -> int:
    for code, (_, stored) in IDX_TYPES.items():
        if dtype.kind == stored.kind and dtype.itemsize == stored.itemsize:
            return code
    raise ArgumentError(
        f"write_idx: dtype {dtype} has no IDX type code; use uint8, int8, int16, int32, float32 or float64"
    )


def write_idx(path: PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip it if ``compress`` (default: name ends in ``.gz``).

    The file is written under a temporary name in the same folder and renamed
    into place when complete, so an existing file is never left half-written.
    Raises :class:`~tinybnn.errors.ArgumentError` for a 0-d array, more than
    255 dimensions, a dimension of 2**32 or more, or a dtype IDX cannot hold.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _idx_code(array.dtype)
    if array.ndim == 0 or array.ndim > 255:
        raise ArgumentError(f"write_idx: IDX holds 1 to 255 dimensions, got an array of shape {array.shape}")
    if any(d >= 2**32 for d in array.shape):
        raise ArgumentError(f"write_idx: every dimension must be below 2**32, got shape {array.shape}")
    if compress is None:
        compress = path.name.lower().endswith(".gz")
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = np.ascontiguousarray(array, dtype=IDX_TYPES[code][1]).tobytes()
    data = header + payload
    if compress:
        data = gzip.compress(data, mtime=0)
    with atomic_write(path) as out:
        out.write(data)
    return path
