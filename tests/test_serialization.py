"""Model files: round trip, atomic writes, and refusal of anything else."""

import json
import zipfile

import numpy as np
import pytest

from tinybnn.autograd import Tensor
from tinybnn.errors import ModelFileError
from tinybnn.fileio import atomic_write
from tinybnn.models import lenet
from tinybnn.serialization import load_model, read_archive, save_model, write_archive


@pytest.fixture(scope="module")
def model():
    return lenet(rng=np.random.default_rng(0)).build((1, 28, 28))


@pytest.fixture
def saved(tmp_path, model):
    return save_model(tmp_path / "model.npz", model, (1, 28, 28), metadata={"epochs": 3})


def rewrite(path, change):
    """Apply ``change(header, arrays)`` to a saved model file, in place."""
    header, arrays = read_archive(path)
    arrays = dict(arrays)
    change(header, arrays)
    header.pop("arrays")
    with open(path, "wb") as handle:
        write_archive(handle, header, arrays)


def test_round_trip_gives_the_same_outputs(saved, model):
    loaded = load_model(saved)
    assert loaded.input_shape == (1, 28, 28) and loaded.metadata == {"epochs": 3} and loaded.kind == "float"
    x = Tensor(np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32))
    model.eval(), loaded.model.eval()
    assert np.array_equal(model(x).data, loaded.model(x).data)


def test_the_file_holds_no_pickle_and_np_load_reads_it(saved):
    with np.load(saved, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["float32", "header"]
        assert all(archive[name].dtype != object for name in archive.files)


def test_an_object_array_is_refused_before_unpickling(saved):
    with zipfile.ZipFile(saved, "a") as archive:
        with archive.open("object.npy", "w") as member:
            np.lib.format.write_array(member, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFileError, match="unexpected member object.npy"):
        load_model(saved)


def test_an_object_member_under_an_allowed_name_is_refused(tmp_path, model):
    path = save_model(tmp_path / "m.npz", model, (1, 28, 28))
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            if name != "float32.npy":
                archive.writestr(name, data)
        with archive.open("float32.npy", "w") as member:
            np.lib.format.write_array(member, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFileError, match="float32.npy holds object"):
        load_model(path)


def test_a_foreign_npz_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(ModelFileError, match=r"other.npz: not a tinybnn model file \(no header"):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04" + b"\x00" * 40])
def test_garbage_is_refused(tmp_path, content):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="garbage.npz"):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nope.npz")


def test_a_newer_format_version_is_refused(saved):
    rewrite(saved, lambda header, arrays: header.update(version=99))
    with pytest.raises(ModelFileError, match="format version 99 is newer"):
        load_model(saved)


def test_an_unknown_layer_is_refused(saved):
    def change(header, arrays):
        header["architecture"]["config"]["layers"][1] = {"type": "Telepathy", "config": {}}

    rewrite(saved, change)
    with pytest.raises(ModelFileError, match="unknown layer type 'Telepathy'"):
        load_model(saved)


def test_missing_extra_and_misshapen_arrays_are_named(saved):
    rewrite(saved, lambda header, arrays: arrays.pop("state/4.weight"))
    with pytest.raises(ModelFileError, match="missing 4.weight"):
        load_model(saved)


def test_misshapen_array_is_named(tmp_path, model):
    path = save_model(tmp_path / "m.npz", model, (1, 28, 28))
    rewrite(path, lambda header, arrays: arrays.update({"state/8.weight": np.zeros((1000, 1023), np.float32)}))
    with pytest.raises(ModelFileError, match=r"8.weight has shape \(1000, 1023\), the network expects \(1000, 1024\)"):
        load_model(path)


def test_unexpected_array_is_named(tmp_path, model):
    path = save_model(tmp_path / "m.npz", model, (1, 28, 28))
    rewrite(path, lambda header, arrays: arrays.update({"sneaky": np.zeros(1)}))
    with pytest.raises(ModelFileError, match="unexpected arrays sneaky"):
        load_model(path)


def replace_header(path, header_bytes):
    """Put raw bytes in place of a model file's header member, keeping the rest."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != "header.npy"}
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("header.npy", "w") as member:
            np.lib.format.write_array(member, np.frombuffer(header_bytes, dtype=np.uint8))
        for name, data in members.items():
            archive.writestr(name, data)


def test_damaged_header_is_refused(tmp_path, model):
    path = save_model(tmp_path / "m.npz", model, (1, 28, 28))
    replace_header(path, b"{not json")
    with pytest.raises(ModelFileError, match="damaged header"):
        load_model(path)


def test_a_listing_longer_than_the_blob_is_refused(tmp_path, model):
    path = save_model(tmp_path / "m.npz", model, (1, 28, 28))
    header, _ = read_archive(path)
    name, dtype, shape = header["arrays"][3]
    header["arrays"][3] = [name, dtype, [shape[0] + 1]]  # one value more than the file holds
    replace_header(path, json.dumps(header).encode())
    with pytest.raises(
        ModelFileError,
        match="member float32.npy claims 4,574,600 bytes, the header's array list "
        "gives it 4,574,604; the file is damaged",
    ):
        load_model(path)


def test_values_that_belong_to_no_array_are_refused(tmp_path, model):
    path = save_model(tmp_path / "m.npz", model, (1, 28, 28))
    header, _ = read_archive(path)
    name, dtype, shape = header["arrays"][3]
    header["arrays"][3] = [name, dtype, [shape[0] - 1]]
    replace_header(path, json.dumps(header).encode())
    with pytest.raises(
        ModelFileError, match="member float32.npy claims 4,574,600 bytes, the header's array list gives it 4,574,596"
    ):
        load_model(path)


def test_a_dtype_that_does_not_match_is_named(tmp_path, model):
    path = save_model(tmp_path / "m.npz", model, (1, 28, 28))
    rewrite(path, lambda header, arrays: arrays.update({"state/0.bias": arrays["state/0.bias"].astype(np.float64)}))
    with pytest.raises(ModelFileError, match="0.bias has dtype float64, the network expects float32"):
        load_model(path)


def test_wrong_kind_is_explained(saved):
    with pytest.raises(ModelFileError, match="this is a float model file, a binarized one is needed"):
        load_model(saved, kind="binarized")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as handle:
            handle.write(b"half")
            raise RuntimeError("disk on fire")
    assert path.read_bytes() == b"good"
    assert list(tmp_path.iterdir()) == [path]


def test_save_replaces_atomically_and_leaves_no_temporary(tmp_path, model):
    path = tmp_path / "m.npz"
    save_model(path, model, (1, 28, 28))
    save_model(path, model, (1, 28, 28), metadata={"second": True})
    assert load_model(path).metadata == {"second": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_header_is_plain_json(saved):
    header, _ = read_archive(saved)
    assert header["format"] == "tinybnn-model" and header["version"] == 1
    json.dumps(header)
