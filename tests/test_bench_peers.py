"""The peer benchmark's parts that need no peer installed: its arguments, the export of a
LeNet to plain arrays, the layout conversions for Keras (NHWC) and ONNX checked against
tinybnn's own float computation, the files and timing loop the workers share, the tables.
Nothing is timed; ONNX Runtime and LCE themselves run only in the benchmark."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinybnn.autograd import Tensor, no_grad
from tinybnn.benchmarks import peers, peers_common, peers_lce, peers_ort
from tinybnn.cli import main as cli_main
from tinybnn.errors import ArgumentError
from tinybnn.layers import Convolution, Flatten, FullyConnected, QConvolution, Sequential, use_float_path
from tinybnn.models import build_model
from tinybnn.serialization import save_model

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "tinybnn" / "benchmarks"


def trained_like(name: str, seed: int = 0):
    """A LeNet with random weights and BatchNorm statistics that are not the defaults."""
    model, shape = build_model(name, rng=np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    for _, module in model.named_modules():
        if type(module).__name__ == "BatchNorm":
            channels = module.beta.shape[0]
            module.running_mean[...] = rng.normal(0, 0.5, channels)
            module.running_var[...] = rng.uniform(0.2, 3.0, channels)
            module.gamma.data[...] = rng.choice([-1.0, 1.0], channels) * rng.uniform(0.5, 2.0, channels)
            module.beta.data[...] = rng.normal(0, 0.3, channels)
    return model.eval(), shape


def tinybnn_logits(model, images_nchw):
    with no_grad():
        return model(Tensor(images_nchw)).data


def digits(count: int, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 1, 28, 28), dtype=np.float32)


# --- arguments -------------------------------------------------------------------------
def test_parse_defaults_and_lists():
    args = peers.parse(["--threads", "2,1", "--batch-sizes", "1"])
    assert args.threads == [2, 1] and args.batch_sizes == [1]
    assert (args.images, args.repeats, args.check_only, args.lce_python) == (10000, 3, False, None)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--threads", "two"], "--threads"),
        (["--batch-sizes", "0"], "--batch-sizes"),
        (["--repeats", "0"], "--repeats"),
        (["--images", "50"], "smaller than the largest batch size"),
    ],
)
def test_parse_refuses_bad_values(argv, needle):
    with pytest.raises(ArgumentError, match=needle):
        peers.parse(argv)


def test_command_line_error_is_one_line(capsys):
    assert cli_main(["bench", "peers", "--threads", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threads" in err


def test_missing_peer_python_is_an_error_and_an_absent_peer_a_message(monkeypatch, tmp_path):
    with pytest.raises(ArgumentError, match="--lce-python .*no such file"):
        peers.peer_problem(peers.LCE, str(tmp_path / "python"))
    assert peers.peer_problem(peers.LCE, None) == "LCE: left out (no --lce-python given)"
    monkeypatch.setitem(peers.PEER_IMPORTS, peers.LCE, ("tinybnn_has_no_such_module", "--lce-python"))
    problem = peers.peer_problem(peers.LCE, sys.executable)
    assert problem.startswith(f"LCE: left out ({sys.executable} cannot import tinybnn_has_no_such_module")


def test_peer_environment_keeps_the_user_s_thread_settings_out_and_adds_the_peer_s(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    env = peers.peer_environment(peers.LCE, 2)
    assert env["OMP_NUM_THREADS"] == "2" and env["TF_USE_LEGACY_KERAS"] == "1"
    assert "TF_USE_LEGACY_KERAS" not in peers.peer_environment(peers.ORT, 1)


# --- export ------------------------------------------------------------------------------
def test_export_binary_lenet_signs_weights_and_drops_the_sign_layers():
    model, shape = trained_like("binary-lenet")
    conv = next(m for _, m in model.named_modules() if isinstance(m, QConvolution))
    conv.weight.data[0, 0, 0, 0] = 0.0
    spec = peers.export_layers(model, shape)
    assert [layer["kind"] for layer in spec] == [
        "input",
        "conv",
        "tanh",
        "maxpool",
        "batchnorm",
        "conv",
        "batchnorm",
        "maxpool",
        "flatten",
        "dense",
        "batchnorm",
        "tanh",
        "dense",
    ]
    assert [layer.get("binary") for layer in spec if layer["kind"] in ("conv", "dense")] == [False, True, True, False]
    binary = spec[5]["weight"]
    assert set(np.unique(binary)) == {-1.0, 1.0} and binary[0, 0, 0, 0] == 1.0  # sign(0) = +1
    np.testing.assert_array_equal(binary, np.where(conv.weight.data >= 0, 1.0, -1.0))
    assert "bias" not in spec[5] and spec[1]["bias"].shape == (64,)
    assert spec[4]["eps"] == 1e-5 and spec[7] == {"kind": "maxpool", "kernel": [2, 2], "stride": [2, 2]}


@pytest.mark.parametrize(
    "layers, needle",
    [
        ([Convolution(3, 4, pad=1)], "padded convolutions"),
        ([QConvolution(3, 4, scaling_factor=True)], "without scaling factor"),
        ([QConvolution(3, 4, act_bit=2)], "only 1-bit"),
        ([Flatten(), FullyConnected(3, no_bias=False)], None),
    ],
)
def test_export_refuses_what_the_twins_would_compute_differently(layers, needle):
    model = Sequential(*layers).build((1, 6, 6))
    if needle is None:
        assert [layer["kind"] for layer in peers.export_layers(model, (1, 6, 6))] == ["input", "flatten", "dense"]
    else:
        with pytest.raises(ArgumentError, match=f"my.npz: layer 0 .*{needle}"):
            peers.export_layers(model, (1, 6, 6), "my.npz")


def test_layer_file_round_trip_without_pickle(tmp_path):
    model, shape = trained_like("binary-lenet")
    spec = peers.export_layers(model, shape)
    back = peers_common.read_layers(peers_common.write_layers(tmp_path / "layers.npz", spec))
    assert [sorted(layer) for layer in back] == [sorted(layer) for layer in spec]
    for ours, theirs in zip(spec, back):
        for name, value in ours.items():
            if isinstance(value, np.ndarray):
                assert theirs[name].dtype == value.dtype
                np.testing.assert_array_equal(theirs[name], value)
            else:
                assert theirs[name] == value


def test_read_digits_scales_like_tinybnn_in_both_layouts(tmp_path):
    from tinybnn.data import to_float_nchw
    from tinybnn.benchmarks.workers import write_arrays

    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    path = write_arrays(tmp_path / "d.npz", images, np.arange(3))
    nchw, nhwc = peers_common.read_digits(path, "nchw"), peers_common.read_digits(path, "nhwc")
    np.testing.assert_array_equal(nchw, to_float_nchw(images))
    np.testing.assert_array_equal(nhwc, nchw.transpose(0, 2, 3, 1))


# --- Keras layout (NHWC) --------------------------------------------------------------------
def test_nhwc_dense_kernel_gives_the_same_integer_dot_products_on_pm1_inputs():
    rng = np.random.default_rng(3)
    features = rng.choice([-1.0, 1.0], (16, 64, 4, 4)).astype(np.float32)  # NCHW, as tinybnn flattens
    weight = rng.choice([-1.0, 1.0], (1000, 1024)).astype(np.float32)
    ours = features.reshape(16, -1) @ weight.T
    theirs = features.transpose(0, 2, 3, 1).reshape(16, -1) @ peers_lce.dense_kernel_nhwc(weight, (64, 4, 4))
    np.testing.assert_array_equal(theirs, ours)
    assert not np.array_equal(features.transpose(0, 2, 3, 1).reshape(16, -1) @ weight.T, ours)  # order matters


def test_keras_layers_write_fc1_as_a_1x1_binary_convolution():
    model, shape = trained_like("binary-lenet")
    layers = peers_lce.keras_layers(peers.export_layers(model, shape))
    assert [layer["kind"] for layer in layers] == [
        "conv",
        "tanh",
        "maxpool",
        "batchnorm",
        "conv",
        "batchnorm",
        "maxpool",
        "reshape",
        "conv",
        "batchnorm",
        "tanh",
        "flatten",
        "dense",
    ]
    assert layers[0]["kernel"].shape == (5, 5, 1, 64) and layers[4]["kernel"].shape == (5, 5, 64, 64)
    assert layers[7]["shape"] == (1, 1, 1024) and layers[8]["kernel"].shape == (1, 1, 1024, 1000)
    assert layers[8]["binary"] and layers[12]["kernel"].shape == (1000, 10)


@pytest.mark.parametrize("name", ["binary-lenet", "lenet"])
def test_keras_twin_computes_tinybnn_s_float_path(name):
    """The very arrays handed to Keras, evaluated in NHWC, against tinybnn's float computation."""
    model, shape = trained_like(name, seed=4)
    images = digits(12)
    expected = tinybnn_logits(use_float_path(model), images)
    got = peers_lce.reference_logits(
        peers_lce.keras_layers(peers.export_layers(model, shape)), images.transpose(0, 2, 3, 1)
    )
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_larq_sign_convention_is_tinybnn_s():
    np.testing.assert_array_equal(peers_lce.sign(np.array([-1.0, -0.0, 0.0, 1e-9, -1e-9])), [-1, 1, 1, 1, -1])


# --- ONNX graph (NCHW) ------------------------------------------------------------------------
def run_nodes(nodes, initializers, images):
    """The obvious NCHW evaluation of onnx_nodes' list, with ONNX's meaning of each operator."""
    values = {peers_ort.INPUT: images.astype(np.float64), **initializers}
    for op, inputs, output, attributes in nodes:
        x, *rest = [values[name] for name in inputs]
        if op == "Conv":
            windows = np.lib.stride_tricks.sliding_window_view(x, attributes["kernel_shape"], axis=(2, 3))
            y = (
                np.einsum(
                    "nchwij,fcij->nfhw",
                    windows[:, :, :: attributes["strides"][0], :: attributes["strides"][1]],
                    rest[0],
                )
                + rest[1][:, None, None]
            )
        elif op == "Tanh":
            y = np.tanh(x)
        elif op == "MaxPool":
            (kh, kw), (sh, sw) = attributes["kernel_shape"], attributes["strides"]
            y = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].max(axis=(-2, -1))
        elif op == "BatchNormalization":
            gamma, beta, mean, var = (v.reshape(-1, *[1] * (x.ndim - 2)) for v in rest)
            y = (x - mean) / np.sqrt(var + attributes["epsilon"]) * gamma + beta
        elif op == "Flatten":
            y = x.reshape(len(x), -1)
        else:
            assert op == "Gemm" and attributes == {"transB": 1}
            y = x @ rest[0].T + rest[1]
        values[output] = y
    return values[peers_ort.OUTPUT]


def test_onnx_nodes_of_the_float_lenet_compute_tinybnn_s_float_lenet():
    model, shape = trained_like("lenet", seed=5)
    nodes, initializers = peers_ort.onnx_nodes(peers.export_layers(model, shape))
    assert [node[0] for node in nodes] == [
        "Conv",
        "Tanh",
        "MaxPool",
        "BatchNormalization",
        "Conv",
        "BatchNormalization",
        "MaxPool",
        "Flatten",
        "Gemm",
        "BatchNormalization",
        "Tanh",
        "Gemm",
    ]
    assert nodes[0][1][0] == peers_ort.INPUT and nodes[-1][2] == peers_ort.OUTPUT
    assert all(value.dtype == np.float32 for value in initializers.values())
    images = digits(10)
    expected = tinybnn_logits(model, images)
    got = run_nodes(nodes, initializers, images)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_onnx_twin_refuses_binary_layers():
    model, shape = trained_like("binary-lenet")
    with pytest.raises(ValueError, match="binary"):
        peers_ort.onnx_nodes(peers.export_layers(model, shape))


def test_onnx_model_passes_the_checker_where_onnx_is_installed():
    pytest.importorskip("onnx")  # an optional peer: CI does not install it
    model, shape = trained_like("lenet")
    built = peers_ort.build_onnx(peers.export_layers(model, shape))
    assert [node.op_type for node in built.graph.node][:3] == ["Conv", "Tanh", "MaxPool"]


# --- what the workers share, and tinybnn's own worker -------------------------------------------
def test_worker_modules_import_nothing_from_tinybnn(tmp_path):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import peers_common, peers_ort, peers_lce; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tinybnn', 'onnx', 'tensorflow', 'larq')))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(BENCHMARKS)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_timed_pass_runs_whole_batches_after_the_warm_up():
    seen = []
    result = peers_common.timed_pass(lambda batch: seen.append(len(batch)), np.zeros((25, 1, 2, 2)), 10)
    assert result["images"] == 20 and result["seconds"] >= 0
    assert seen == [10] * (peers_common.WARMUP_BATCHES + 2)


def test_tinybnn_worker_prints_one_json_line(tmp_path, capsys):
    from tinybnn.benchmarks.workers import write_arrays

    model, shape = trained_like("binary-lenet")
    save_model(tmp_path / "m.npz", model, shape)
    arrays = write_arrays(tmp_path / "d.npz", np.zeros((6, 28, 28), np.uint8), np.zeros(6, np.int64))
    assert (
        peers.main(["--worker", "--model", str(tmp_path / "m.npz"), "--arrays", str(arrays), "--batch-size", "3"]) == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 6 and "openblas" in result


def test_agreement_counts_predictions():
    ours = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    line, ok = peers.agreement("A", "B", ours + [[0.0, 0.5], [0.0, 0.0], [0.0, 2.0]], ours)
    assert not ok and "A vs B: 2/3 same predictions" in line and "max |logit difference| 2" in line
    assert "logits within 1e-4 of the largest (2) on 1," in line
    assert peers.agreement("A", "B", ours, ours)[1]


def test_tables_give_paired_ratios_tinybnn_over_each_peer():
    def runs(*seconds):
        return [{"seconds": s, "images": 100} for s in seconds]

    cells = {
        (100, 1): {"tinybnn": runs(1.0, 2.0, 1.0), "LCE": runs(3.0, 2.0, 3.0)},
        (1, 2): {"tinybnn": runs(1.0, 1.0, 1.0), "LCE": runs(0.5, 0.5, 0.5)},
    }
    summary = peers.summary_table(cells).splitlines()
    assert summary[0].split() == ["images/s", "batch", "100,", "1", "thread", "batch", "1,", "2", "threads"]
    assert summary[2].split() == ["tinybnn", "100", "100"] and summary[3].split() == ["LCE", "33", "200"]
    assert summary[4].split() == ["tinybnn", "/", "LCE", "3.00x", "0.50x"]  # medians of per-repeat ratios
    rows = peers.results_table(cells).splitlines()
    assert rows[3].split()[-1] == "3.00" and rows[3].split()[3] == "3000.000"


def test_thread_scaling_pairs_each_repeat_s_thread_counts():
    def runs(*seconds):
        return [{"seconds": s, "images": 100} for s in seconds]

    cells = {
        (100, 1): {"tinybnn": runs(2.0, 4.0, 2.0)},
        (100, 2): {"tinybnn": runs(1.0, 4.0, 1.0)},  # per repeat 2.0, 1.0, 2.0: median 2.0
        (1, 1): {"tinybnn": runs(1.0, 1.0, 1.0)},
    }
    assert peers.thread_scaling(cells) == [
        "tinybnn, batch 100: 2 threads run at 2.00x the speed of 1 (median of 3 paired repeats)"
    ]


def test_every_repeat_times_all_thread_counts_back_to_back(monkeypatch, data_root, capsys):
    order = []

    def fake_worker(module, args, threads, coretype=None):
        order.append(threads)
        return {"seconds": 1.0, "images": 20}

    monkeypatch.setattr(peers, "tinybnn_worker", fake_worker)
    monkeypatch.setattr(peers, "peer_problem", lambda peer, python: f"{peer}: left out")
    argv = ["--data", str(data_root), "--threads", "1,2", "--batch-sizes", "1", "--images", "100", "--repeats", "3"]
    assert peers.main(argv) == 0
    assert order == [1, 2, 1, 2, 1, 2]
    line = "tinybnn, batch 1: 2 threads run at 1.00x the speed of 1 (median of 3 paired repeats)"
    assert line in capsys.readouterr().out


def test_check_only_on_a_few_real_digits_without_peers(data_root, capsys):
    code = peers.main(
        [
            "--data",
            str(data_root),
            "--images",
            "200",
            "--check-only",
            "--batch-sizes",
            "100",
            "--ort-python",
            sys.executable,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "LCE: left out (no --lce-python given)" in out
    assert "tinybnn packed vs tinybnn float path: 200/200 same predictions" in out
