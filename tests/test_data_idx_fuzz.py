"""Fuzzing the IDX reader: whatever the bytes, only DataFileError escapes, fast and small.

Random bytes, random headers with random payloads, and valid files (raw and
gzip) with bytes flipped, cut off or appended. The reader either returns an
array whose size matches its header or raises DataFileError; any other
exception, a hang or a large allocation fails the test.
"""

import gzip
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinybnn.data import read_idx, write_idx
from tinybnn.data.idx import IDX_TYPES
from tinybnn.errors import DataFileError

from .hang import without_hanging

FUZZ = settings(suppress_health_check=[HealthCheck.too_slow])

# Every input below is under 2 KB; reading one must stay far below this.
PEAK_LIMIT = 2 * 2**20


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def read_bytes_as_file(folder: Path, data: bytes, name: str):
    """Write ``data`` to ``folder/name`` and read it; return the array or the error."""
    path = folder / name
    path.write_bytes(data)
    tracemalloc.start()
    try:
        result = without_hanging(lambda: read_idx(path))
    except DataFileError as error:
        result = error
        assert str(path.absolute()) in str(error)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"peak allocation {peak:,} bytes for {len(data)} input bytes"
    return result


names = st.sampled_from(["x.idx", "x.idx.gz", "x"])


@FUZZ
@given(data=st.binary(max_size=300), name=names)
def test_random_bytes(scratch, data, name):
    read_bytes_as_file(scratch, data, name)


@FUZZ
@given(data=st.binary(max_size=300), name=names)
def test_random_bytes_behind_gzip_magic(scratch, data, name):
    read_bytes_as_file(scratch, b"\x1f\x8b" + data, name)


@FUZZ
@given(data=st.binary(max_size=300))
def test_gzip_of_random_bytes(scratch, data):
    read_bytes_as_file(scratch, gzip.compress(data), "x.gz")


@st.composite
def idx_headers(draw):
    code = draw(st.sampled_from(sorted(IDX_TYPES) + [0x00, 0x0A, 0xFF]))
    ndim = draw(st.integers(0, 5))
    dims = draw(st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), min_size=ndim, max_size=ndim))
    return bytes([0, 0, code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)


@FUZZ
@given(head=idx_headers(), payload=st.binary(max_size=500), compress=st.booleans())
def test_random_headers_with_random_payloads(scratch, head, payload, compress):
    data = head + payload
    result = read_bytes_as_file(scratch, gzip.compress(data) if compress else data, "x.idx")
    if isinstance(result, np.ndarray):
        assert result.nbytes == len(payload)


@st.composite
def valid_files(draw):
    code = draw(st.sampled_from(sorted(IDX_TYPES)))
    dtype = IDX_TYPES[code][1].newbyteorder("=")
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=1, max_size=3)))
    array = np.frombuffer(
        draw(st.binary(min_size=int(np.prod(shape)) * dtype.itemsize, max_size=int(np.prod(shape)) * dtype.itemsize)),
        dtype=dtype,
    ).reshape(shape)
    return array, draw(st.booleans())


def mutations():
    flip = st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255))
    cut = st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0))
    extend = st.tuples(st.just("extend"), st.binary(min_size=1, max_size=20), st.just(0))
    return st.lists(st.one_of(flip, cut, extend), min_size=1, max_size=4)


def mutate(data: bytes, steps) -> bytes:
    blob = bytearray(data)
    for kind, where, value in steps:
        if kind == "flip" and blob:
            # Half of the flips land in the first 24 bytes (gzip header or IDX header).
            position = where % min(len(blob), 24) if where % 2 else where % len(blob)
            blob[position] ^= value
        elif kind == "cut":
            del blob[where % (len(blob) + 1) :]
        elif kind == "extend":
            blob += where
    return bytes(blob)


@FUZZ
@given(file=valid_files(), steps=mutations())
def test_mutated_valid_files(scratch, file, steps):
    array, compress = file
    path = write_idx(scratch / "valid", array, compress=compress)
    original = path.read_bytes()
    data = mutate(original, steps)
    result = read_bytes_as_file(scratch, data, "x.idx.gz" if compress else "x.idx")
    if data == original:
        assert isinstance(result, np.ndarray)
        np.testing.assert_array_equal(result, array)
    elif isinstance(result, np.ndarray) and not compress:
        # A raw file can only be accepted if its header still matches its length.
        assert 4 + 4 * result.ndim + result.nbytes == len(data)


@FUZZ
@given(file=valid_files(), cut=st.integers(1, 10**6))
def test_every_truncation_is_refused(scratch, file, cut):
    array, compress = file
    data = write_idx(scratch / "valid", array, compress=compress).read_bytes()
    cut = 1 + cut % len(data)  # remove between 1 and all bytes
    result = read_bytes_as_file(scratch, data[:-cut], "x.idx.gz" if compress else "x.idx")
    assert isinstance(result, DataFileError)
