"""Larq Compute Engine's side of the peer benchmark: tinybnn's binary LeNet as a Larq model.

Run by path with the Python of a virtual environment that has Larq and LCE
(``python peers_lce.py prepare|time ...``, see docs/peers.md); it imports
nothing from tinybnn. The benchmark driver (:mod:`tinybnn.benchmarks.peers`)
writes the network as a list of layers with tinybnn's arrays (NCHW, OIHW,
``(out, in)`` dense weights, binary weights already ``sign(w)``); here they
become a Keras model in NHWC, the layout TensorFlow Lite runs:

- a convolution's weights OIHW -> HWIO (``w.transpose(2, 3, 1, 0)``);
- tinybnn flattens (C, H, W) in that order, Keras flattens NHWC as (H, W, C),
  so the rows of the dense layer after the flatten are permuted: Keras row
  ``(h W + w) C + c`` is tinybnn's column ``(c H + h) W + w``;
- a binary dense layer is written as a 1x1 ``QuantConv2D`` on a ``(1, 1, F)``
  reshape, the only form LCE's converter turns into its binary convolution
  (a binary ``QuantDense`` stays a float matmul);
- binary layers: ``input_quantizer="ste_sign"``, ``kernel_quantizer="ste_sign"``,
  ``kernel_constraint="weight_clip"``, no bias. Larq's sign is +1 at 0
  (``sign(sign(x) + 0.1)``) and LCE packs a bit as ``x < 0``, so 0 -> +1 on
  both, tinybnn's convention;
- BatchNorm: the same gamma, beta, running mean, variance and eps
  (``BatchNormalization(epsilon=eps)``), over the last (channel) axis.

``prepare`` builds the model once per batch size (LCE's converter fixes the
batch size), converts it with ``larq_compute_engine.convert_keras_model``,
writes the flatbuffer and the logits of every given image; ``time`` loads a
flatbuffer into LCE's interpreter at its fastest settings
(``use_indirect_bgemm=True``, ``use_xnnpack=True``), which needs no
TensorFlow, and times passes over the images after a warm-up. Each prints
one JSON line.

:func:`keras_layers` and :func:`reference_logits` are plain NumPy: the
layout conversion and a slow NHWC evaluation of the very arrays handed to
Keras, which tinybnn's tests compare with tinybnn's own float path.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

try:
    from .peers_common import read_digits, read_layers, timed_pass, worker_main
except ImportError:  # run by path as a script, beside peers_common.py
    from peers_common import read_digits, read_layers, timed_pass, worker_main


def dense_kernel_nhwc(weight: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A dense weight ``(units, C*H*W)`` that reads a CHW flatten, as the ``(H*W*C, units)``
    kernel that reads an HWC flatten of the same feature map of shape (C, H, W)."""
    channels, height, width = shape
    units = weight.shape[0]
    return np.ascontiguousarray(
        weight.reshape(units, channels, height, width).transpose(2, 3, 1, 0).reshape(height * width * channels, units)
    )


def keras_layers(spec: list[dict]) -> list[dict]:
    """The network in Keras's NHWC layout: a list of layers of kinds ``conv`` (``kernel``
    HWIO, ``bias`` or None, ``binary``, ``strides``), ``tanh``, ``maxpool``
    (``pool``, ``strides``), ``batchnorm``, ``reshape`` (``shape``), ``flatten``
    and ``dense`` (``kernel`` (in, out), ``bias``).

    A binary dense layer becomes a 1x1 binary ``conv`` after a ``reshape`` to
    ``(1, 1, F)``; a float one stays ``dense``. The shape of the feature map
    is followed (as tinybnn's (C, H, W)) so that the dense layer after a
    flatten gets its rows permuted (:func:`dense_kernel_nhwc`).
    """
    out: list[dict] = []
    shape: tuple[int, ...] = tuple(spec[0]["input_shape"])
    tensor = "map"  # the Keras tensor: "map" (N, H, W, C), "column" (N, 1, 1, F) or "flat" (N, F)
    flattened: tuple[int, ...] | None = None  # the (C, H, W) a flatten just left behind
    for layer in spec[1:]:
        kind = layer["kind"]
        if flattened is not None and kind != "dense":
            raise ValueError(f"a {kind} layer after a flatten has no Keras twin here (only a dense one)")
        if kind == "conv":
            weight = layer["weight"]
            (sh, sw) = layer["stride"]
            out.append(
                {
                    "kind": "conv",
                    "kernel": np.ascontiguousarray(weight.transpose(2, 3, 1, 0)),
                    "bias": layer.get("bias"),
                    "binary": layer["binary"],
                    "strides": (sh, sw),
                }
            )
            kh, kw = weight.shape[2:]
            shape = (weight.shape[0], (shape[1] - kh) // sh + 1, (shape[2] - kw) // sw + 1)
        elif kind == "maxpool":
            (kh, kw), (sh, sw) = layer["kernel"], layer["stride"]
            out.append({"kind": "maxpool", "pool": (kh, kw), "strides": (sh, sw)})
            shape = (shape[0], (shape[1] - kh) // sh + 1, (shape[2] - kw) // sw + 1)
        elif kind in ("tanh", "batchnorm"):
            out.append(dict(layer))
        elif kind == "flatten":
            flattened, shape = shape, (int(np.prod(shape)),)
        elif kind == "dense":
            weight = layer["weight"]
            kernel = dense_kernel_nhwc(weight, flattened) if flattened else np.ascontiguousarray(weight.T)
            if layer["binary"]:
                if tensor != "column":
                    out.append({"kind": "reshape", "shape": (1, 1, shape[0])})
                    tensor = "column"
                out.append(
                    {
                        "kind": "conv",
                        "kernel": kernel.reshape(1, 1, *kernel.shape),
                        "bias": None,
                        "binary": True,
                        "strides": (1, 1),
                    }
                )
            else:
                if tensor != "flat":
                    out.append({"kind": "flatten"})
                    tensor = "flat"
                out.append({"kind": "dense", "kernel": kernel, "bias": layer.get("bias")})
            flattened, shape = None, (weight.shape[0],)
        else:
            raise ValueError(f"layer kind {kind!r} has no Keras twin here")
    return out


def sign(x: np.ndarray) -> np.ndarray:
    """±1 with sign(0) = +1 (Larq's ste_sign forward pass, LCE's bit = x < 0)."""
    return np.where(x >= 0, 1.0, -1.0).astype(x.dtype)


def reference_logits(layers: list[dict], images_nhwc: np.ndarray) -> np.ndarray:
    """The obvious NHWC evaluation of :func:`keras_layers`' list (float64), what the Keras
    model computes: convolutions as sums over windows, binary layers on sign(x)."""
    x = images_nhwc.astype(np.float64)
    for layer in layers:
        kind = layer["kind"]
        if kind == "conv":
            kernel = layer["kernel"].astype(np.float64)
            kh, kw = kernel.shape[:2]
            sh, sw = layer["strides"]
            if layer["binary"]:
                x, kernel = sign(x), sign(kernel)
            windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
            x = np.einsum("nhwcij,ijcf->nhwf", windows, kernel)
            if layer["bias"] is not None:
                x = x + layer["bias"]
        elif kind == "tanh":
            x = np.tanh(x)
        elif kind == "maxpool":
            (kh, kw), (sh, sw) = layer["pool"], layer["strides"]
            x = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw].max(axis=(-2, -1))
        elif kind == "batchnorm":
            x = (x - layer["mean"]) / np.sqrt(layer["var"].astype(np.float64) + layer["eps"]) * layer["gamma"] + layer[
                "beta"
            ]
        elif kind == "reshape":
            x = x.reshape(len(x), *layer["shape"])
        elif kind == "flatten":
            x = x.reshape(len(x), -1)
        elif kind == "dense":
            x = x @ layer["kernel"]
            if layer["bias"] is not None:
                x = x + layer["bias"]
    return x.reshape(len(x), -1)


def build_keras(layers: list[dict], input_shape_nhwc: tuple[int, int, int], batch_size: int):
    """A tf.keras model of :func:`keras_layers`' list with its weights set, for one batch size."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import larq as lq
    import tensorflow as tf

    inputs = tf.keras.Input(input_shape_nhwc, batch_size=batch_size)
    x, weighted = inputs, []
    for layer in layers:
        kind = layer["kind"]
        if kind == "conv":
            kh, kw, _, filters = layer["kernel"].shape
            if layer["binary"]:
                keras_layer = lq.layers.QuantConv2D(
                    filters,
                    (kh, kw),
                    strides=layer["strides"],
                    padding="valid",
                    pad_values=1.0,
                    use_bias=False,
                    input_quantizer="ste_sign",
                    kernel_quantizer="ste_sign",
                    kernel_constraint="weight_clip",
                )
                values = [layer["kernel"]]
            else:
                keras_layer = tf.keras.layers.Conv2D(
                    filters, (kh, kw), strides=layer["strides"], padding="valid", use_bias=layer["bias"] is not None
                )
                values = [layer["kernel"]] + ([layer["bias"]] if layer["bias"] is not None else [])
        elif kind == "tanh":
            keras_layer, values = tf.keras.layers.Activation("tanh"), None
        elif kind == "maxpool":
            keras_layer, values = tf.keras.layers.MaxPool2D(layer["pool"], layer["strides"]), None
        elif kind == "batchnorm":
            keras_layer = tf.keras.layers.BatchNormalization(epsilon=float(layer["eps"]))
            values = [layer["gamma"], layer["beta"], layer["mean"], layer["var"]]
        elif kind == "reshape":
            keras_layer, values = tf.keras.layers.Reshape(layer["shape"]), None
        elif kind == "flatten":
            keras_layer, values = tf.keras.layers.Flatten(), None
        else:
            keras_layer = tf.keras.layers.Dense(layer["kernel"].shape[1], use_bias=layer["bias"] is not None)
            values = [layer["kernel"]] + ([layer["bias"]] if layer["bias"] is not None else [])
        x = keras_layer(x)
        if values is not None:
            weighted.append((keras_layer, values))
    model = tf.keras.Model(inputs, x)
    for keras_layer, values in weighted:
        keras_layer.set_weights([np.asarray(v, dtype=np.float32) for v in values])
    return model


def interpreter(flatbuffer: bytes, threads: int):
    """LCE's interpreter at its fastest settings; returns its low-level ``predict([batch])``."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return Interpreter(
        flatbuffer, num_threads=threads, use_reference_bconv=False, use_indirect_bgemm=True, use_xnnpack=True
    ).interpreter.predict


def operators(flatbuffer: bytes) -> list[str]:
    """The custom LCE operators the flatbuffer uses (by name), to show what was binarized."""
    return sorted(
        name for name in ("LceBconv2d", "LceQuantize", "LceDequantize", "LceBMaxPool2d") if name.encode() in flatbuffer
    )


def prepare(args: argparse.Namespace) -> dict:
    import larq_compute_engine as lce

    spec = read_layers(args.layers)
    layers = keras_layers(spec)
    images = read_digits(args.arrays, "nhwc")
    out = Path(args.out_dir)
    result = {"versions": versions(), "models": {}}
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        model = build_keras(layers, images.shape[1:], batch_size)
        flatbuffer = lce.convert_keras_model(model)
        path = out / f"lce_b{batch_size}.tflite"
        path.write_bytes(flatbuffer)
        predict = interpreter(flatbuffer, 1)
        count = len(images) - len(images) % batch_size
        logits = np.concatenate([predict([images[i : i + batch_size]])[0] for i in range(0, count, batch_size)])
        np.save(out / f"lce_logits_b{batch_size}.npy", logits.reshape(count, -1))
        result["models"][batch_size] = {"path": str(path), "bytes": len(flatbuffer), "operators": operators(flatbuffer)}
    return result


def time_passes(args: argparse.Namespace) -> dict:
    images = read_digits(args.arrays, "nhwc")
    predict = interpreter(Path(args.model).read_bytes(), args.threads)
    result = timed_pass(lambda batch: predict([batch]), images, args.batch_size)
    return {**result, "lce": versions()["larq-compute-engine"]}


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("larq-compute-engine", "larq", "tensorflow-cpu")}


def main(argv: list[str] | None = None) -> int:
    return worker_main(
        "peers_lce.py",
        prepare,
        time_passes,
        {
            "--batch-sizes": {"default": "100,1", "help": "prepare: one model per batch size"},
            "--out-dir": {"help": "prepare: where the flatbuffers and logits go"},
        },
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
