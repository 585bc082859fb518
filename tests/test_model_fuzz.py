"""Random and mutated bytes fed to the model loader raise only ModelFileError:
no other exception, no hang, no allocation beyond what the file holds."""

import io
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinybnn.errors import ModelFileError
from tinybnn.layers import BatchNorm, FullyConnected, QFullyConnected, Sequential
from tinybnn.convert import convert_model
from tinybnn.serialization import load_model, save_model


def model_bytes(tmp_path_factory, binarized: bool) -> bytes:
    rng = np.random.default_rng(0)
    model = Sequential(QFullyConnected(70, rng=rng), BatchNorm(), FullyConnected(3, rng=rng)).build((80,))
    model.eval()
    path = tmp_path_factory.mktemp("fuzz") / "model.npz"
    if binarized:
        save_model(path, convert_model(model), (80,), kind="binarized")
    else:
        save_model(path, model, (80,), metadata={"note": "fuzz"})
    return path.read_bytes()


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return {"float": model_bytes(tmp_path_factory, False), "binarized": model_bytes(tmp_path_factory, True)}


def load_bytes(tmp_path, data: bytes):
    path = tmp_path / "m.npz"
    path.write_bytes(data)
    try:
        load_model(path)
    except ModelFileError:
        pass


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_random_bytes(tmp_path, data):
    load_bytes(tmp_path, data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["float", "binarized"]),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    st.data(),
)
def test_mutated_model_files(tmp_path, valid, kind, flips, data):
    original = bytearray(valid[kind])
    for position, value in flips:
        original[position % len(original)] = value
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(original))))
    mutated = bytes(original[:cut]) if cut is not None else bytes(original)
    mutated += data.draw(st.binary(max_size=64))
    load_bytes(tmp_path, mutated)


def archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buffer.getvalue()


def npy_header(shape, descr="<f4") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_a_forged_size_is_refused_without_allocating(tmp_path, valid):
    with zipfile.ZipFile(io.BytesIO(valid["float"])) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members["float32.npy"] = npy_header((3_000_000_000,)) + b"\x00" * 64
    (tmp_path / "forged.npz").write_bytes(archive(members))
    tracemalloc.start()
    with pytest.raises(ModelFileError, match="claims 12,000,000,000 bytes, the header's array list gives it 24,372"):
        load_model(tmp_path / "forged.npz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10_000_000


def test_a_header_claiming_to_be_huge_is_refused(tmp_path, valid):
    with zipfile.ZipFile(io.BytesIO(valid["float"])) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members["header.npy"] = npy_header((1 << 40,), "|u1") + b"{}"
    (tmp_path / "huge.npz").write_bytes(archive(members))
    with pytest.raises(ModelFileError, match="header.npy claims"):
        load_model(tmp_path / "huge.npz")


def test_the_valid_files_load(tmp_path, valid):
    for kind, data in valid.items():
        path = tmp_path / f"{kind}.npz"
        path.write_bytes(data)
        assert load_model(path).kind == kind
