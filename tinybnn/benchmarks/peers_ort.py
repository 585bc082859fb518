"""ONNX Runtime's side of the peer benchmark: tinybnn's float LeNet as an ONNX graph.

Run by path with a Python that has ``onnx`` and ``onnxruntime``
(``python peers_ort.py prepare|time ...``, see docs/peers.md); it imports
nothing from tinybnn. The driver (:mod:`tinybnn.benchmarks.peers`) writes the
network as a list of layers with tinybnn's arrays; ONNX is NCHW like tinybnn,
so the weights go in as they are:

    conv       -> Conv (OIHW weights, bias), kernel_shape, strides
    tanh       -> Tanh
    maxpool    -> MaxPool kernel_shape, strides
    batchnorm  -> BatchNormalization (gamma, beta, running mean, variance), epsilon
    flatten    -> Flatten axis=1 (C, H, W order, as tinybnn's Flatten)
    dense      -> Gemm transB=1 ((out, in) weights, bias)

with a free batch dimension. Binary layers are refused: ONNX's Sign is 0 at
0, and ONNX Runtime has no binary kernels; it runs the float LeNet.

``prepare`` builds and checks the graph, writes it and the logits of every
given image; ``time`` loads it into an ``InferenceSession`` with
``intra_op_num_threads`` threads (all graph optimizations on) and times
passes over the images after a warm-up. Each prints one JSON line.
:func:`onnx_nodes` is plain Python, tested by tinybnn's tests without onnx.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    from .peers_common import read_digits, read_layers, timed_pass, worker_main
except ImportError:  # run by path as a script, beside peers_common.py
    from peers_common import read_digits, read_layers, timed_pass, worker_main

OPSET = 17
IR_VERSION = 8
INPUT, OUTPUT = "images", "logits"


def onnx_nodes(spec: list[dict]) -> tuple[list[tuple[str, list[str], str, dict]], dict[str, np.ndarray]]:
    """(nodes, initializers) of the graph: each node ``(op_type, inputs, output, attributes)``,
    from the input ``"images"`` to the output ``"logits"``."""
    nodes: list[tuple[str, list[str], str, dict]] = []
    initializers: dict[str, np.ndarray] = {}
    current = INPUT
    layers = spec[1:]
    for i, layer in enumerate(layers, start=1):
        kind = layer["kind"]
        if layer.get("binary"):
            raise ValueError(f"layer {i} ({kind}) is binary: the ONNX twin is for float networks")

        def constant(name: str) -> str:
            initializers[f"{i}.{name}"] = np.asarray(layer[name], dtype=np.float32)
            return f"{i}.{name}"

        if kind == "conv":
            inputs = [current, constant("weight")] + ([constant("bias")] if layer.get("bias") is not None else [])
            node = ("Conv", inputs, {"kernel_shape": list(layer["weight"].shape[2:]), "strides": list(layer["stride"])})
        elif kind == "tanh":
            node = ("Tanh", [current], {})
        elif kind == "maxpool":
            node = ("MaxPool", [current], {"kernel_shape": list(layer["kernel"]), "strides": list(layer["stride"])})
        elif kind == "batchnorm":
            node = (
                "BatchNormalization",
                [current, constant("gamma"), constant("beta"), constant("mean"), constant("var")],
                {"epsilon": float(layer["eps"])},
            )
        elif kind == "flatten":
            node = ("Flatten", [current], {"axis": 1})
        elif kind == "dense":
            inputs = [current, constant("weight")] + ([constant("bias")] if layer.get("bias") is not None else [])
            node = ("Gemm", inputs, {"transB": 1})
        else:
            raise ValueError(f"layer kind {kind!r} has no ONNX twin here")
        output = OUTPUT if i == len(layers) else f"{i}.{kind}"
        nodes.append((node[0], node[1], output, node[2]))
        current = output
    return nodes, initializers


def build_onnx(spec: list[dict]):
    """The checked ONNX model of the layers (opset 17, a free batch dimension)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = onnx_nodes(spec)
    graph = helper.make_graph(
        [helper.make_node(op, inputs, [output], name=output, **attributes) for op, inputs, output, attributes in nodes],
        "tinybnn_lenet",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", *spec[0]["input_shape"]])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", None])],
        [numpy_helper.from_array(value, name) for name, value in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def prepare(args: argparse.Namespace) -> dict:
    model = build_onnx(read_layers(args.layers))
    Path(args.out).write_bytes(model.SerializeToString())
    images = read_digits(args.arrays, "nchw")
    run = session(args.out, 1)
    logits = np.concatenate([run.run([OUTPUT], {INPUT: images[i : i + 100]})[0] for i in range(0, len(images), 100)])
    np.save(Path(args.out).with_suffix(".logits.npy"), logits)
    return {"versions": versions(), "path": args.out, "nodes": [node.op_type for node in model.graph.node]}


def time_passes(args: argparse.Namespace) -> dict:
    images = read_digits(args.arrays, "nchw")
    run = session(args.model, args.threads)
    result = timed_pass(lambda batch: run.run([OUTPUT], {INPUT: batch}), images, args.batch_size)
    return {**result, "onnxruntime": versions()["onnxruntime"]}


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("onnxruntime", "onnx")}


def main(argv: list[str] | None = None) -> int:
    return worker_main(
        "peers_ort.py",
        prepare,
        time_passes,
        {"--out": {"help": "prepare: where the .onnx file goes (its logits beside it)"}},
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
