"""IDX reader and writer: round trips, and every kind of bad file refused by name."""

import gzip
import os
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinybnn.data import read_idx, write_idx
from tinybnn.errors import ArgumentError, DataFileError

from .hang import without_hanging

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


def header(code: int, dims) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def refused(path: Path, *fragments: str) -> str:
    """Read ``path``, expect DataFileError naming the full path and each fragment."""
    with pytest.raises(DataFileError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path.absolute()) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- round trips -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip_every_dtype(tmp_path, dtype, name):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    array = np.array([[info.min, 0, 1], [info.max, 2, 3]], dtype=dtype)
    path = write_idx(tmp_path / name, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == (2, 3)
    np.testing.assert_array_equal(back, array)


@given(
    array=hnp.arrays(
        dtype=st.sampled_from(DTYPES),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    compress=st.booleans(),
)
def test_round_trip_property(tmp_path_factory, array, compress):
    path = tmp_path_factory.mktemp("rt") / "x.idx"
    write_idx(path, array, compress=compress)
    back = read_idx(path)
    assert back.shape == array.shape and back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)  # NaNs compare equal here


def test_layout_is_big_endian_idx(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.array([[1, 256]], dtype=np.int32))
    assert path.read_bytes() == header(0x0C, (1, 2)) + b"\x00\x00\x00\x01\x00\x00\x01\x00"


def test_gzip_recognised_by_magic_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = write_idx(tmp_path / "no-extension", array, compress=True)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(path), array)


def test_returned_array_is_writable(tmp_path):
    for name in ["a.idx", "a.idx.gz"]:
        array = read_idx(write_idx(tmp_path / name, np.ones((2, 2), np.uint8)))
        array[0, 0] = 7  # no "read-only" surprise for callers


def test_write_idx_refuses_what_idx_cannot_hold(tmp_path):
    with pytest.raises(ArgumentError, match="dtype"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.uint16))
    with pytest.raises(ArgumentError, match="dtype"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=bool))
    with pytest.raises(ArgumentError, match="dimensions"):
        write_idx(tmp_path / "a.idx", np.array(5, dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_idx_replaces_atomically(tmp_path):
    path = write_idx(tmp_path / "a.idx", np.zeros(3, np.uint8))
    write_idx(path, np.ones(4, np.uint8))
    np.testing.assert_array_equal(read_idx(path), np.ones(4, np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx"]


# --- bad files -----------------------------------------------------------------


def test_truncated_payload_message_shape(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    data = header(0x08, (10000, 28, 28)) + bytes(10000 * 28 * 28 - 16)
    path.write_bytes(gzip.compress(data))
    message = refused(path)
    assert message.endswith(
        "t10k-images-idx3-ubyte.gz: decompressed payload has 7,839,984 bytes, header claims "
        "7,840,000 (10000 x 28 x 28 ubyte): the file is truncated"
    )
    raw = tmp_path / "t10k-images-idx3-ubyte"
    raw.write_bytes(data)
    assert refused(raw).endswith(
        "t10k-images-idx3-ubyte: payload has 7,839,984 bytes, header claims "
        "7,840,000 (10000 x 28 x 28 ubyte): the file is truncated"
    )


@pytest.mark.parametrize("compress", [False, True])
def test_extra_bytes_after_payload(tmp_path, compress):
    data = header(0x0B, (2, 2)) + bytes(8) + b"xyz"
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    message = refused(path, "header claims 8 (2 x 2 short)", "extra bytes after the data")
    assert ("more than 8 bytes" if compress else "has 11 bytes") in message


@pytest.mark.parametrize("compress", [False, True])
def test_wrong_magic(tmp_path, compress):
    data = b"\x08\x03\x00\x00" + bytes(20)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    refused(path, "not an IDX file", "0x08030000")


def test_unknown_type_code(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"\x00\x00\x0a\x01" + (3).to_bytes(4, "big") + bytes(3))
    refused(path, "unknown IDX type code 0x0A", "0x08 ubyte")


def test_zero_dimensions(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"\x00\x00\x08\x00")
    refused(path, "0 dimensions")


def test_header_cut_inside_dimensions(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") + b"\x00\x00")
    refused(path, "declares 3 dimensions", "truncated")


@pytest.mark.parametrize("content, fragment", [(b"", "empty"), (b"\x00\x00", "too short")])
def test_too_short_for_a_header(tmp_path, content, fragment):
    path = tmp_path / "a.idx"
    path.write_bytes(content)
    refused(path, fragment)


def test_dimensions_that_do_not_match_the_length(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(header(0x08, (100,)) + bytes(60))  # claims 100 labels, holds 60
    refused(path, "payload has 60 bytes, header claims 100 (100 ubyte)")


def test_raw_bytes_named_gz_are_refused_with_a_hint(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(header(0x08, (3,)) + bytes(3))
    refused(path, "not gzip data", "rename it to train-labels-idx1-ubyte")


def test_text_named_gz_is_refused(tmp_path):
    path = tmp_path / "a.gz"
    path.write_bytes(b"<html>404 Not Found</html>")
    refused(path, "not gzip data", "3c 68")


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "a.idx.gz"
    blob = gzip.compress(header(0x08, (1000,)) + os.urandom(1000))
    path.write_bytes(blob[: len(blob) // 2])
    refused(path, "gzip stream is cut short", "truncated")


def test_gzip_crc_mismatch(tmp_path):
    path = tmp_path / "a.idx.gz"
    blob = bytearray(gzip.compress(header(0x08, (10,)) + bytes(10)))
    blob[-6] ^= 0x01  # inside the CRC-32 of the trailer
    path.write_bytes(bytes(blob))
    refused(path, "corrupt gzip data", "CRC")


def test_gzip_bad_deflate_data(tmp_path):
    path = tmp_path / "a.idx.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 40)
    refused(path, "corrupt gzip data")


def test_gzip_compressed_twice(tmp_path):
    path = tmp_path / "a.idx.gz"
    path.write_bytes(gzip.compress(gzip.compress(header(0x08, (1,)) + b"\x01")))
    refused(path, "compressed twice")


def test_missing_file_and_directory(tmp_path):
    refused(tmp_path / "nothing.idx", "no such file")
    folder = tmp_path / "folder.idx"
    folder.mkdir()
    refused(folder, "cannot read")


# --- forged headers: refused fast, without allocating what they claim ------------


def _peak_bytes(function) -> int:
    tracemalloc.start()
    try:
        function()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("max_bytes", [None, 2**31])
def test_forged_header_claiming_billions(tmp_path, compress, max_bytes):
    data = header(0x0E, (2**31, 2**31)) + bytes(64)  # claims 2**65 bytes of doubles
    path = tmp_path / "forged.idx"
    path.write_bytes(gzip.compress(data) if compress else data)

    def attempt():
        with pytest.raises(DataFileError, match="header claims 36,893,488,147,419,103,232"):
            read_idx(path, max_bytes=max_bytes)

    peak = _peak_bytes(lambda: without_hanging(attempt))
    assert peak < 4 * 2**20, f"peak allocation {peak:,} bytes"


def test_gzip_payload_shorter_than_claimed_is_read_with_bounded_memory(tmp_path):
    # Within the limit (1 GB claimed) but the stream holds only 1 MB: memory
    # follows what the file holds, not what the header claims.
    path = tmp_path / "liar.idx.gz"
    path.write_bytes(gzip.compress(header(0x08, (1000, 1000, 1000)) + bytes(2**20)))

    def attempt():
        with pytest.raises(DataFileError, match="the file is truncated"):
            read_idx(path)

    assert _peak_bytes(attempt) < 8 * 2**20


def test_max_bytes_limit(tmp_path):
    path = write_idx(tmp_path / "a.idx.gz", np.zeros((10, 10), np.float64))
    with pytest.raises(DataFileError, match=re.escape("header claims 800 bytes of data (10 x 10 double)")):
        read_idx(path, max_bytes=799)
    assert read_idx(path, max_bytes=800).shape == (10, 10)


@pytest.mark.parametrize("compress", [False, True])
def test_empty_array_with_unrepresentable_shape(tmp_path, compress):
    # 0 x 5 x 1358156188 x 1358219639 holds no items, but NumPy cannot shape it.
    data = header(0x08, (0, 5, 1358156188, 1358219639))
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    refused(path, "too large for an array")
