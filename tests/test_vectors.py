"""Golden vectors: every layer of the shipped model on real test images; a C program recomputes a binary
layer from them exactly; a perturbed dump is caught at the right layer."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinybnn.autograd import Tensor, no_grad
from tinybnn.cli import main
from tinybnn.errors import DataFileError
from tinybnn.predict import SHIPPED_MODEL
from tinybnn.serialization import load_model
from tinybnn.vectors import compare_vectors, pack_signs, read_array, read_manifest, records_bits

DENSE_LAYER_C = Path(__file__).resolve().parent / "kernels" / "dense_layer.c"
IMAGES = 5


@pytest.fixture(scope="module")
def golden(mnist_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vectors") / "golden"
    assert (
        main(["vectors", str(SHIPPED_MODEL), "--images", str(IMAGES), "--out", str(folder), "--data", str(mnist_dir)])
        == 0
    )
    return folder


def test_every_layer_is_recorded_and_they_chain(golden):
    manifest = read_manifest(golden)
    model = load_model(SHIPPED_MODEL).model
    assert manifest["images"] == IMAGES and len(manifest["labels"]) == IMAGES
    assert [layer["type"] for layer in manifest["layers"]] == [type(layer).__name__ for layer in model]
    layers = manifest["layers"]
    for layer, following in zip(layers, layers[1:]):
        assert np.array_equal(
            read_array(golden, layer["files"]["output"]), read_array(golden, following["files"]["input"])
        )
    x = read_array(golden, layers[0]["files"]["input"])
    assert x.shape == (IMAGES, 1, 28, 28) and x.dtype == np.float32
    model.eval()
    with no_grad():
        logits = model(Tensor(x)).data
    assert np.array_equal(read_array(golden, layers[-1]["files"]["output"]), logits)


def test_binary_layers_have_their_output_bits_and_packed_weights(golden):
    manifest = read_manifest(golden)
    model = load_model(SHIPPED_MODEL).model
    binary = [layer for layer in manifest["layers"] if layer["binary"]]
    assert [layer["index"] for layer in binary] == [i for i, layer in enumerate(model) if records_bits(layer)]
    assert binary, "the shipped model has binary layers"
    for layer in binary:
        output = read_array(golden, layer["files"]["output"])
        assert np.array_equal(read_array(golden, layer["files"]["output_bits"]), pack_signs(output)[0])
        weight_bits = read_array(golden, layer["arrays"]["weight_bits"])
        assert weight_bits.dtype == np.uint64
        assert np.array_equal(weight_bits, model[layer["index"]].weight_bits)


def test_a_c_program_recomputes_a_binary_dense_layer_exactly(golden, tmp_path):
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.fail("no C compiler: this test builds tests/kernels/dense_layer.c with cc; put cc on PATH")
    program = tmp_path / "dense_layer"
    subprocess.run(
        [compiler, "-O2", "-ffp-contract=off", str(DENSE_LAYER_C), "-o", str(program)], check=True, timeout=120
    )
    manifest = read_manifest(golden)
    dense = [layer for layer in manifest["layers"] if layer["binary"] and len(layer["files"]["input"]["shape"]) == 2]
    assert dense, "the shipped model has a binary dense layer"
    layer = dense[0]
    n, d = layer["files"]["input"]["shape"]
    h = layer["files"]["output"]["shape"][1]
    out = tmp_path / "y.f32"
    files = [golden / layer["files"]["input"]["file"]] + [
        golden / layer["arrays"][name]["file"] for name in ("weight_bits", "scale", "shift")
    ]
    subprocess.run([str(program), *map(str, files), str(out), str(n), str(d), str(h)], check=True, timeout=120)
    recomputed = np.fromfile(out, dtype="<f4").reshape(n, h)
    assert np.array_equal(recomputed, read_array(golden, layer["files"]["output"]))


def test_check_agrees_with_a_copy_and_names_the_perturbed_layer(golden, tmp_path, capsys):
    device = tmp_path / "device"
    shutil.copytree(golden, device)
    assert main(["vectors", "check", str(golden), str(device)]) == 0
    assert "every file agrees" in capsys.readouterr().out
    manifest = read_manifest(device)
    layer = [entry for entry in manifest["layers"] if entry["binary"]][-1]
    path = device / layer["files"]["output"]["file"]
    values = np.fromfile(path, dtype="<f4")
    values[7] += 0.01
    values.tofile(path)
    assert main(["vectors", "check", str(golden), str(device)]) == 1
    printed = capsys.readouterr().out
    assert f"layer {layer['index']} ({layer['type']}) output: first difference at" in printed
    difference = compare_vectors(golden, device)
    assert difference.layer == layer["index"] and difference.name == "output"


def test_bits_are_compared_exactly(golden, tmp_path):
    device = tmp_path / "device"
    shutil.copytree(golden, device)
    layer = [entry for entry in read_manifest(device)["layers"] if entry["binary"]][0]
    path = device / layer["files"]["output_bits"]["file"]
    words = np.fromfile(path, dtype="<u8")
    words[0] ^= np.uint64(1)
    words.tofile(path)
    difference = compare_vectors(golden, device)
    assert (difference.layer, difference.name) == (layer["index"], "output_bits")
    assert "0x" in difference.message


def test_nothing_is_written_over_and_bad_folders_are_refused(golden, tmp_path, capsys):
    assert main(["vectors", str(SHIPPED_MODEL), "--images", "1", "--out", str(golden)]) == 2
    assert "already exists" in capsys.readouterr().err
    forged = tmp_path / "forged"
    shutil.copytree(golden, forged)
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest["layers"][0]["files"]["input"]["file"] = "../../etc/passwd"
    (forged / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataFileError, match="bad file entry"):
        read_manifest(forged)
    truncated = tmp_path / "truncated"
    shutil.copytree(golden, truncated)
    entry = read_manifest(truncated)["layers"][0]["files"]["output"]
    with open(truncated / entry["file"], "r+b") as handle:
        handle.truncate(12)
    with pytest.raises(DataFileError, match="12 bytes, expected"):
        compare_vectors(golden, truncated)
    assert main(["vectors", "check", str(golden), str(tmp_path / "none")]) == 2
