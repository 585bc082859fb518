"""``tinybnn export c``: the C program computes what the fused Python model computes.

The real checks run the shipped binary LeNet on the 10,000 real MNIST test
digits: one C build (the system ``cc -std=c99 -Wall -Wextra -Werror -O2``,
plus ``-march=native`` so that fmaf and popcount are instructions), one
process over all digits; the predictions must be Python's on every digit,
the logits within 1e-4 of the image's largest logit, and a trace build
(``-DTINYBNN_TRACE``) must produce every binary layer's integer dot products
exactly as a NumPy recount from Python's stage outputs. A missing compiler
fails (it does not skip). The Cortex-M4 build on QEMU is in
tests/test_export_c_cortex_m.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinybnn.autograd import Tensor
from tinybnn.convert import convert_model, fuse_layers
from tinybnn.data.mnist import load_folder, to_float_nchw
from tinybnn.errors import ArgumentError, ModelFileError
from tinybnn.export.c_source import static_ram, weight_bytes
from tinybnn.export.plan import fused_stages
from tinybnn.export.stack import parse_stack_usage, predict_stack
from tinybnn.export.writer import export_c
from tinybnn.layers import (
    Activation,
    BatchNorm,
    Convolution,
    Flatten,
    FullyConnected,
    Pooling,
    QActivation,
    QConvolution,
    QFullyConnected,
    Sequential,
)
from tinybnn.models import lenet
from tinybnn.serialization import load_model, save_model

SHIPPED = Path(__file__).resolve().parent.parent / "tinybnn" / "assets" / "binarized_lenet_mnist.npz"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
TRACED = 300  # digits whose dot products are compared (every binary layer's, all of them)


def compiler() -> str:
    found = shutil.which("cc")
    if found is None:
        pytest.fail("no C compiler: these tests build the exported model with cc; put cc on PATH")
    return found


def build(folder: Path, name: str, *flags: str) -> Path:
    program = folder / name
    result = subprocess.run(
        [compiler(), *STRICT, *flags, "main.c", "tinybnn_model.c", "-lm", "-o", str(program)],
        cwd=folder,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return program


def run_logits(program: Path, *files: Path, extra: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
    out = subprocess.run(
        [str(program), "--logits", *extra, *map(str, files)], check=True, capture_output=True, text=True, timeout=300
    ).stdout
    rows = [line.split() for line in out.splitlines()]
    return np.array([int(r[1]) for r in rows]), np.array([[float(v) for v in r[2:]] for r in rows], np.float32)


def assert_logits_close(c_logits: np.ndarray, py_logits: np.ndarray) -> None:
    scale = np.abs(py_logits).max(axis=1, keepdims=True)
    worst = (np.abs(c_logits - py_logits) / scale).max()
    assert worst <= 1e-4, f"logits differ by {worst:.3g} of the image's largest"


def fused_model(path: Path) -> Sequential:
    return Sequential(*fuse_layers(list(load_model(path).model.layers))).eval()


def stage_outputs(model: Sequential, x: np.ndarray) -> list[np.ndarray]:
    outputs, data = [], Tensor(x)
    for layer in model.layers:
        data = layer(data)
        outputs.append(data.data)
    return outputs


# --- NumPy's recount of the dot products, from the bits Python's stages pass on --------------------------
def word_bits(words: np.ndarray) -> np.ndarray:
    """uint64 words (..., n) -> their bits 0/1 (..., 64 n), bit b of word w at 64 w + b."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.unpackbits(raw, axis=-1, bitorder="little")


def conv_dots(stage, words: np.ndarray) -> np.ndarray:
    """K - 2 popcount(patch XOR filter) for every image, conv output pixel and filter: (N, OH, OW, F)."""
    from tinybnn.gemm.bitconv import pad_words_of_pixel

    full, last = pad_words_of_pixel(stage.channels, stage.pad_value)
    (kh, kw), (sh, sw), (ph, pw) = stage.kernel, stage.stride, stage.pad
    n, h, w, cw = words.shape
    padded = np.empty((n, h + 2 * ph, w + 2 * pw, cw), np.uint64)
    padded[...] = full
    padded[..., -1] = last
    padded[:, ph : ph + h, pw : pw + w] = words
    bits = word_bits(padded).astype(np.float32)  # (N, H', W', 64 Cw)
    windows = np.lib.stride_tricks.sliding_window_view(bits, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    patches = windows.transpose(0, 1, 2, 4, 5, 3)  # (N, OH, OW, KH, KW, 64 Cw): the weight rows' order
    oh, ow = patches.shape[1:3]
    patches = patches.reshape(n * oh * ow, -1)
    filters = word_bits(stage.weight_bits.T).astype(np.float32)  # (F, KH KW 64 Cw)
    differ = patches.sum(1)[:, None] + filters.sum(1)[None, :] - 2 * (patches @ filters.T)
    return (stage.bits - 2 * differ).round().astype(np.int64).reshape(n, oh, ow, -1)


def pooled_order(stage, dots: np.ndarray) -> np.ndarray:
    """The dots in the order the C stage computes them: pooled pixel, window pixel, filter."""
    (qh, qw), (qsh, qsw) = stage.pool_kernel, stage.pool_stride
    oh, ow = (dots.shape[1] - qh) // qsh + 1, (dots.shape[2] - qw) // qsw + 1
    rows = [
        dots[:, i * qsh + u, j * qsw + v] for i in range(oh) for j in range(ow) for u in range(qh) for v in range(qw)
    ]
    return np.stack(rows, axis=1).reshape(dots.shape[0], -1)


def dense_dots(stage, words: np.ndarray) -> np.ndarray:
    x = word_bits(words.reshape(words.shape[0], -1)).astype(np.float32)
    weight = word_bits(stage.weight_bits.T).astype(np.float32)  # (hidden, 64 words)
    differ = x.sum(1)[:, None] + weight.sum(1)[None, :] - 2 * (x @ weight.T)
    return (stage.features - 2 * differ).round().astype(np.int64)


def expected_dots(model: Sequential, x: np.ndarray) -> np.ndarray:
    """Every binary layer's dots, per image, in the C program's order: (N, total)."""
    outputs = stage_outputs(model, x)
    per_stage = [
        pooled_order(stage, conv_dots(stage, outputs[k - 1])) for k, stage in enumerate(model.layers[1:-1], start=1)
    ]
    per_stage.append(dense_dots(model.layers[-1], outputs[-2]))
    return np.concatenate(per_stage, axis=1)


# --- the shipped LeNet on the real test digits ----------------------------------------------------------
@pytest.fixture(scope="module")
def digits(data_root):
    return load_folder("mnist", data_root / "mnist-5k")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lenet_c")
    export_c(SHIPPED, folder, measure=False)
    return folder


@pytest.fixture(scope="module")
def python_logits(digits):
    return fused_model(SHIPPED)(Tensor(to_float_nchw(digits.test_images))).data


def test_the_c_program_classifies_the_10000_test_digits_as_python_does(exported, digits, python_logits, tmp_path):
    raw = tmp_path / "t10k.raw"
    digits.test_images.tofile(raw)
    program = build(exported, "classify", "-march=native")
    predicted, logits = run_logits(program, raw)
    assert len(predicted) == 10_000
    assert np.array_equal(predicted, python_logits.argmax(axis=1))
    assert_logits_close(logits, python_logits)
    assert (predicted == digits.test_labels).mean() == (python_logits.argmax(axis=1) == digits.test_labels).mean()


def test_every_binary_dot_product_is_pythons(exported, digits, tmp_path):
    images = digits.test_images[:TRACED]
    raw, trace = tmp_path / "digits.raw", tmp_path / "dots.i32"
    images.tofile(raw)
    program = build(exported, "classify_traced", "-march=native", "-DTINYBNN_TRACE")
    run_logits(program, raw, extra=("--trace", str(trace)))
    dots = np.fromfile(trace, dtype=np.int32).reshape(TRACED, -1)
    expected = expected_dots(fused_model(SHIPPED), to_float_nchw(images))
    assert dots.shape == expected.shape == (TRACED, 8 * 8 * 64 + 1000)
    assert np.array_equal(dots, expected)


def test_the_portable_popcount_and_plain_flags_agree(exported, digits, python_logits, tmp_path):
    """The exact flags of the issue, no -march, the plain bit-twiddling popcount: same answers."""
    raw = tmp_path / "d.raw"
    digits.test_images[:50].tofile(raw)
    program = build(exported, "classify_portable", "-DTINYBNN_PORTABLE_POPCOUNT")
    predicted, logits = run_logits(program, raw)
    assert np.array_equal(predicted, python_logits[:50].argmax(axis=1))
    assert_logits_close(logits, python_logits[:50])


def test_main_reads_pgm_and_refuses_other_files_in_one_line(exported, digits, python_logits, tmp_path):
    program = build(exported, "classify_io")
    pgm = tmp_path / "seven.pgm"
    pgm.write_bytes(b"P5\n# a test digit\n28 28\n255\n" + digits.test_images[0].tobytes())
    predicted, logits = run_logits(program, pgm)
    assert predicted.tolist() == [python_logits[0].argmax()]
    assert_logits_close(logits, python_logits[:1])
    for name, content in [
        ("short.raw", bytes(100)),
        ("wide.pgm", b"P5 29 28 255\n" + bytes(29 * 28)),
        ("empty.raw", b""),
        ("long.raw", bytes(784 * 3 + 1)),
    ]:
        bad = tmp_path / name
        bad.write_bytes(content)
        result = subprocess.run([str(program), str(bad)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and result.stdout == ""  # refused before any image is classified
        assert result.stderr.count("\n") == 1 and str(bad) in result.stderr


# --- other networks: what exports, what is refused --------------------------------------------------------
def variant(rng: np.random.Generator, dense_bits: int = 1) -> Sequential:
    """A binary net unlike the LeNet: 3x3 kernels, stride and ±1 padding, 70 filters (two words per pixel),
    two binary convolutions, relu before the classifier."""
    model = Sequential(
        Convolution((3, 3), 8, pad=1, rng=rng),
        Activation("tanh"),
        Pooling("max", kernel=(2, 2), stride=(2, 2)),
        BatchNorm(),
        QActivation(1),
        QConvolution((3, 3), 70, pad=1, pad_value=-1.0, rng=rng),
        BatchNorm(),
        Pooling("max", kernel=(3, 3), stride=(2, 2)),
        QActivation(1),
        QConvolution((2, 2), 24, stride=(1, 1), rng=rng),
        BatchNorm(),
        Flatten(),
        QActivation(dense_bits),
        QFullyConnected(40, act_bit=dense_bits, weight_bit=dense_bits, rng=rng),
        BatchNorm(),
        Activation("relu"),
        FullyConnected(7, rng=rng),
    )
    model.build((1, 20, 18))
    for _, layer in model.named_modules():
        if isinstance(layer, BatchNorm):
            layer.running_mean[...] = rng.normal(0, 0.5, layer.running_mean.shape)
            layer.running_var[...] = rng.uniform(0.5, 2, layer.running_var.shape)
            layer.gamma.data[...] = rng.normal(0, 1, layer.gamma.data.shape)
    return model.eval()


def test_a_different_binary_network_exports_and_computes_the_same(tmp_path):
    rng = np.random.default_rng(16)
    model = variant(rng)
    trained = save_model(tmp_path / "variant.npz", model, (1, 20, 18))
    images = rng.integers(0, 256, (40, 20, 18), dtype=np.uint8)
    export_c(trained, tmp_path / "c", measure=False)
    program = build(tmp_path / "c", "variant", "-DTINYBNN_TRACE")
    raw = tmp_path / "x.raw"
    images.tofile(raw)
    predicted, logits = run_logits(program, raw, extra=("--trace", str(tmp_path / "dots.i32")))
    fused = Sequential(*list(convert_model(model).layers)).eval()
    assert [type(m).__name__ for m in fused.layers] == [
        "ConvolutionToBits",
        "BitConvolution",
        "BitConvolution",
        "BitDense",
    ]
    x = to_float_nchw(images)
    expected = fused(Tensor(x)).data
    assert np.array_equal(predicted, expected.argmax(axis=1))
    assert_logits_close(logits, expected)
    dots = np.fromfile(tmp_path / "dots.i32", dtype=np.int32).reshape(len(images), -1)
    assert np.array_equal(dots, expected_dots(fused, x))


def test_a_k_bit_layer_is_refused_by_name(tmp_path):
    model = variant(np.random.default_rng(0), dense_bits=2)
    path = save_model(tmp_path / "kbit.npz", model, (1, 20, 18))
    with pytest.raises(ModelFileError, match=r"layer 12 \(QActivation\) to C: a k-bit layer \(act_bit=2\)"):
        export_c(path, tmp_path / "c", measure=False)
    assert not (tmp_path / "c").exists()


def test_a_float_model_is_refused(tmp_path):
    model = lenet(binary=False, rng=np.random.default_rng(0)).build((1, 28, 28))
    path = save_model(tmp_path / "float.npz", model, (1, 28, 28))
    with pytest.raises(ModelFileError, match="no binary layer"):
        export_c(path, tmp_path / "c", measure=False)


def test_the_sizes_of_the_lenet():
    plan = fused_stages(load_model(SHIPPED), SHIPPED)
    # float conv 64 x 25 + bias + threshold, int8 flips; 64 x 25 words; 1000 x 16 words; 10 x 1000 + 10 floats
    assert weight_bytes(plan) == 4 * (1600 + 128) + 64 + 8 * 1600 + 2 * 64 + 4 * 64 + 8 * 16000 + 4 * 2000 + 4 * 10010
    assert static_ram(plan) == 8 * 12 * 12 + 8 * 16


def test_stack_usage_files_are_read():
    text = "tinybnn_model.c:10:13:stage0\t560\tstatic\ntinybnn_model.c:90:5:tinybnn_predict\t24\tstatic\n"
    frames = parse_stack_usage(text)
    assert frames == {"stage0": 560, "tinybnn_predict": 24}
    assert predict_stack(frames) == 584


# --- the command line -------------------------------------------------------------------------------------
def tinybnn(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinybnn.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_the_command_writes_the_files_and_never_overwrites_a_stranger(tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "main.c").write_text("my own program\n")
    refused = tinybnn("export", "c", str(SHIPPED), "--out", str(out))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert (out / "main.c").read_text() == "my own program\n"
    forced = tinybnn("export", "c", str(SHIPPED), "--out", str(out), "--force", "--board", "mps2-an386")
    assert forced.returncode == 0, forced.stderr
    assert "196,200 bytes" in forced.stdout
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == [
        "main.c",
        "mps2-an386/board_main.c",
        "mps2-an386/link.ld",
        "mps2-an386/startup.c",
        "tinybnn_model.c",
        "tinybnn_model.h",
    ]
    assert "stack of tinybnn_predict:" in (out / "tinybnn_model.h").read_text()
    export_c(SHIPPED, out, measure=False)  # its own files: written over without --force


def test_the_command_never_writes_over_its_input(tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    shutil.copy(SHIPPED, out / "main.c")
    result = tinybnn("export", "c", str(out / "main.c"), "--out", str(out), "--force")
    assert result.returncode == 2 and "never writes over its own input" in result.stderr
    with pytest.raises(ArgumentError, match="unknown board"):
        export_c(SHIPPED, tmp_path / "d", board="pdp-11")
