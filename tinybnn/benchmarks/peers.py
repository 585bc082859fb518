"""Peer benchmark: tinybnn's packed binary LeNet against ONNX Runtime and Larq Compute Engine.

    python scripts/bench_peers.py --data ../shared/datasets --model binary-lenet.npz \\
        --float-model lenet.npz --ort-python ort/bin/python --lce-python lce/bin/python
    tinybnn bench peers ... --check-only

Contenders, each timed over MNIST test digits in a fresh process after
warm-up batches, for every thread count and batch size asked:

- ``tinybnn``: the trained binary LeNet as :func:`tinybnn.convert.convert_model`
  returns it, called as ``model(Tensor(x)).data`` (under ``no_grad``) on
  float32 NCHW digits;
- ``ONNX Runtime`` (when a Python with ``onnxruntime`` and ``onnx`` is given or
  this one has them): the trained *float* LeNet as an ONNX graph built from
  its weights (``peers_ort.py``);
- ``LCE`` (when ``--lce-python`` points at a Python with Larq Compute Engine):
  the *same* trained binary weights in a Larq model (fc1 as a 1x1
  ``QuantConv2D``), converted per batch size, run with
  ``use_indirect_bgemm=True, use_xnnpack=True`` (``peers_lce.py``).

A peer that is absent gets one line saying why, and no column. Before timing
(and alone with ``--check-only``) the run compares predictions on the given
test digits (all 10,000 by default): LCE's against tinybnn's converted model,
tinybnn's converted model against its float path, ONNX Runtime's float LeNet
against tinybnn's. Each repeat runs every contender back to back; the table
gives median milliseconds per batch, images per second, and the median of
the paired ratios tinybnn / peer in images per second. Without ``--model``
or ``--float-model`` the LeNets get random (seeded) weights, which time the
same but make the agreement check a weaker one; docs/peers.md has the
commands that train them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ArgumentError
from .peers_common import read_digits, timed_pass, write_layers
from .workers import (
    format_table,
    median,
    openblas_core,
    paired_runs,
    paired_ratio,
    run_worker,
    thread_environment,
    tinybnn_worker,
    write_arrays,
)

MODULE = "tinybnn.benchmarks.peers"
ORT_WORKER = Path(__file__).with_name("peers_ort.py")
LCE_WORKER = Path(__file__).with_name("peers_lce.py")
TINYBNN, ORT, LCE = "tinybnn", "ONNX Runtime", "LCE"
#: what a peer's Python must import, and the option that names that Python
PEER_IMPORTS = {ORT: ("onnxruntime, onnx", "--ort-python"), LCE: ("larq_compute_engine, larq", "--lce-python")}
#: environment a peer needs (Larq 0.14 runs on TensorFlow 2.16 only with the Keras 2 API of tf-keras)
PEER_SETTINGS = {ORT: {}, LCE: {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}}


# --- the network as plain arrays -------------------------------------------------
def export_layers(model, input_shape: Sequence[int], where: str = "model") -> list[dict]:
    """A LeNet-like tinybnn Sequential as the workers' layer list (see :mod:`.peers_common`).

    Layers become ``conv`` (OIHW ``weight``, ``bias``, ``stride``, ``binary``),
    ``tanh``, ``maxpool`` (``kernel``, ``stride``), ``batchnorm`` (``gamma``,
    ``beta``, running ``mean`` and ``var``, ``eps``), ``flatten`` and ``dense``
    (``(out, in)`` ``weight``, ``bias``, ``binary``), all float32 as stored. A
    binary layer's weights go out as sign(w) with sign(0) = +1, the ±1 values
    its forward pass uses; a ``QActivation(1)`` before it is dropped (the
    peers' binary layers take the sign of their input themselves, and
    sign(sign(x)) = sign(x)). Anything the peers' twins would compute
    differently is refused with the layer named: padding, XNOR scaling, k-bit
    layers, activations other than tanh, average pooling.
    """
    from ..layers import (
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

    if not isinstance(model, Sequential):
        raise ArgumentError(f"{where}: the peer benchmark needs a Sequential LeNet, got {type(model).__name__}")
    spec: list[dict] = [{"kind": "input", "input_shape": [int(n) for n in input_shape]}]
    for index, layer in enumerate(model):
        name = f"{where}: layer {index} ({type(layer).__name__})"
        binary = isinstance(layer, (QConvolution, QFullyConnected))
        if binary and (layer.act_bit, layer.weight_bit, layer.scaling_factor) != (1, 1, False):
            raise ArgumentError(f"{name}: only 1-bit layers without scaling factor have peer twins")
        if binary and layer.bias is not None:
            raise ArgumentError(f"{name}: a binary layer with a bias has no peer twin here")
        if isinstance(layer, QActivation):
            if layer.act_bit != 1:
                raise ArgumentError(f"{name}: only 1-bit activations have peer twins")
            continue
        if isinstance(layer, (Convolution, FullyConnected)):
            weight = layer.weight.data.astype(np.float32)
            entry = {
                "kind": "conv" if isinstance(layer, Convolution) else "dense",
                "binary": binary,
                "weight": np.where(weight >= 0, 1.0, -1.0).astype(np.float32) if binary else weight,
            }
            if layer.bias is not None:
                entry["bias"] = layer.bias.data.astype(np.float32)
            if isinstance(layer, Convolution):
                if any(layer.pad):
                    raise ArgumentError(f"{name}: padded convolutions have no peer twins here")
                entry["stride"] = [int(s) for s in layer.stride]
        elif isinstance(layer, Activation) and layer.act_type == "tanh":
            entry = {"kind": "tanh"}
        elif isinstance(layer, Pooling) and layer.pool_type == "max" and not layer.global_pool:
            entry = {
                "kind": "maxpool",
                "kernel": [int(k) for k in layer.kernel],
                "stride": [int(s) for s in layer.stride],
            }
        elif isinstance(layer, BatchNorm):
            entry = {
                "kind": "batchnorm",
                "gamma": layer.gamma.data.astype(np.float32),
                "beta": layer.beta.data.astype(np.float32),
                "mean": layer.running_mean.astype(np.float32),
                "var": layer.running_var.astype(np.float32),
                "eps": layer.eps,
            }
        elif isinstance(layer, Flatten):
            entry = {"kind": "flatten"}
        else:
            raise ArgumentError(f"{name}: this layer has no peer twin here")
        spec.append(entry)
    return spec


# --- tinybnn's worker ---------------------------------------------------------------
def packed_model(model_file: str):
    """The converted binary LeNet of a model file, in evaluation mode."""
    from ..convert import convert_model
    from ..serialization import load_model

    return convert_model(load_model(model_file, kind="float").model.eval()).eval()


def time_tinybnn(model_file: str, arrays: str, batch_size: int) -> dict[str, Any]:
    from ..autograd import Tensor, no_grad

    model = packed_model(model_file)
    with no_grad():
        return timed_pass(lambda batch: model(Tensor(batch)).data, read_digits(arrays, "nchw"), batch_size)


def logits(model, images: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """``model``'s outputs on float32 NCHW images, in batches, without gradients."""
    from ..autograd import Tensor, no_grad

    with no_grad():
        return np.concatenate(
            [model(Tensor(images[i : i + batch_size])).data for i in range(0, len(images), batch_size)]
        )


# --- the peers' interpreters -------------------------------------------------------
def peer_problem(peer: str, python: str | None) -> str | None:
    """Why ``peer`` cannot run with ``python`` (None if it can)."""
    modules, option = PEER_IMPORTS[peer]
    if python is None:
        return f"{peer}: left out (no {option} given)"
    if not Path(python).is_file():
        raise ArgumentError(f"{option} {python}: no such file")
    done = subprocess.run(
        [python, "-c", f"import {modules}"], capture_output=True, text=True, env=peer_environment(peer, 1)
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["it failed"])[-1]
        return f"{peer}: left out ({python} cannot import {modules}: {last})"
    return None


def peer_environment(peer: str, threads: int) -> dict[str, str]:
    """A peer worker's environment: ``threads`` threads everywhere, tinybnn's own settings
    removed, the peer's settings unless the user made them."""
    return {**PEER_SETTINGS[peer], **thread_environment(threads, tinybnn_settings=False)}


def peer_worker(peer: str, python: str, task: str, args: Sequence[str], threads: int = 1) -> dict[str, Any]:
    script = ORT_WORKER if peer == ORT else LCE_WORKER
    return run_worker([python, str(script), task, *args, "--threads", str(threads)], peer_environment(peer, threads))


# --- agreement -----------------------------------------------------------------------
def agreement(name: str, reference: str, theirs: np.ndarray, ours: np.ndarray) -> tuple[str, bool]:
    """A line saying on how many images two sets of logits predict the same class and on how
    many they agree to 1e-4 of the largest logit (a binary layer's input that lands on the
    other side of 0 in one engine moves a dot product by 2: the logits differ, maybe not the
    class), and whether every class is the same."""
    same = int((theirs.argmax(axis=1) == ours.argmax(axis=1)).sum())
    scale = max(float(np.abs(ours).max()), 1e-30)
    difference = np.abs(theirs - ours).max(axis=1)
    close = int((difference <= 1e-4 * scale).sum())
    line = (
        f"  {name} vs {reference}: {same:,}/{len(ours):,} same predictions, logits within 1e-4 of the "
        f"largest ({scale:.3g}) on {close:,}, max |logit difference| {float(difference.max()):.2g}"
    )
    return line, same == len(ours)


def load_or_build(path: str | None, name: str, seed: int, folder: Path, option: str) -> tuple[Any, str, str]:
    """(model, its file, how it was made): the file given, else random seeded weights saved to ``folder``."""
    from ..models import build_model
    from ..serialization import load_model, save_model

    if path is not None:
        return load_model(path, kind="float").model.eval(), path, path
    model, shape = build_model(name, rng=np.random.default_rng(seed))
    file = folder / f"{name}-random.npz"
    save_model(file, model, shape)
    return model.eval(), str(file), f"random weights, seed {seed} (no {option})"


# --- the driver ----------------------------------------------------------------------
def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tinybnn bench peers", description=__doc__.splitlines()[0])
    p.add_argument("--data", help="folder with mnist-5k/ or mnist/ (default: $TINYBNN_DATA or the cache)")
    p.add_argument("--model", help="a trained binary LeNet file (default: random weights)")
    p.add_argument("--float-model", help="a trained float LeNet file, for ONNX Runtime (default: random weights)")
    p.add_argument("--ort-python", help="a Python with onnxruntime and onnx (default: this one, if it has them)")
    p.add_argument("--lce-python", help="a Python with larq-compute-engine and larq (see docs/peers.md)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch-sizes", default="100,1")
    p.add_argument(
        "--images", type=int, default=10000, help="test digits checked and timed per pass (batch 1 times a fifth)"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights without --model")
    p.add_argument("--check-only", action="store_true", help="compare predictions, time nothing")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--arrays", help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for option in ("threads", "batch_sizes"):
        try:
            values = [int(v) for v in getattr(args, option).split(",")]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            raise ArgumentError(
                f"--{option.replace('_', '-')} must be positive integers separated by commas, "
                f"got {getattr(args, option)!r}"
            )
        setattr(args, option, values)
    for option in ("images", "repeats"):
        if getattr(args, option) < 1:
            raise ArgumentError(f"--{option} must be at least 1, got {getattr(args, option)}")
    if args.images < max(args.batch_sizes):
        raise ArgumentError(f"--images {args.images} is smaller than the largest batch size {max(args.batch_sizes)}")
    return args


def check(args, data, folder: Path, pythons: dict[str, str]) -> tuple[dict[str, Any], bool]:
    """Prepare the peers' models, print how their predictions agree; (files and versions, all agree)."""
    from ..data import to_float_nchw
    from ..layers import use_float_path
    from ..serialization import load_model

    images = to_float_nchw(data.test_images[: args.images])
    digits = write_arrays(folder / "digits.npz", data.test_images[: args.images], data.test_labels[: args.images])
    binary, binary_file, binary_origin = load_or_build(args.model, "binary-lenet", args.seed, folder, "--model")
    prepared: dict[str, Any] = {"model": binary_file}
    packed = logits(packed_model(binary_file), images)
    float_path = logits(use_float_path(load_model(binary_file, kind="float").model.eval()), images)
    labels = data.test_labels[: args.images]
    print(
        f"binary LeNet: {binary_origin}; float LeNet: "
        f"{args.float_model or f'random weights, seed {args.seed} (no --float-model)'}"
    )
    print(
        f"agreement on {len(images):,} MNIST test digits (tinybnn packed accuracy "
        f"{(packed.argmax(1) == labels).mean():.4f}):"
    )
    lines = [agreement("tinybnn packed", "tinybnn float path", packed, float_path)]
    if LCE in pythons:
        layers = write_layers(folder / "binary-lenet.layers.npz", export_layers(binary, (1, 28, 28), binary_file))
        done = peer_worker(
            LCE,
            pythons[LCE],
            "prepare",
            [
                "--layers",
                str(layers),
                "--arrays",
                str(digits),
                "--batch-sizes",
                ",".join(map(str, args.batch_sizes)),
                "--out-dir",
                str(folder),
            ],
        )
        prepared[LCE] = done
        for batch_size, model in done["models"].items():
            theirs = np.load(folder / f"lce_logits_b{batch_size}.npy")
            lines.append(
                agreement(
                    f"LCE (batch-{batch_size} model, operators {'/'.join(model['operators'])})",
                    "tinybnn packed",
                    theirs,
                    packed[: len(theirs)],
                )
            )
    if ORT in pythons:
        float_model, _, _ = load_or_build(args.float_model, "lenet", args.seed, folder, "--float-model")
        layers = write_layers(
            folder / "lenet.layers.npz", export_layers(float_model, (1, 28, 28), args.float_model or "float LeNet")
        )
        onnx_file = folder / "lenet.onnx"
        prepared[ORT] = peer_worker(
            ORT, pythons[ORT], "prepare", ["--layers", str(layers), "--arrays", str(digits), "--out", str(onnx_file)]
        )
        lines.append(
            agreement(
                "ONNX Runtime float LeNet",
                "tinybnn float LeNet",
                np.load(onnx_file.with_suffix(".logits.npy")),
                logits(float_model, images),
            )
        )
    for line, _ in lines:
        print(line)
    return prepared, all(ok for _, ok in lines)


def contenders(
    args, prepared: dict[str, Any], pythons: dict[str, str], arrays: Path, batch_size: int, threads: int
) -> dict[str, Callable[[], dict[str, Any]]]:
    common = ["--arrays", str(arrays), "--batch-size", str(batch_size)]
    runners = {TINYBNN: partial(tinybnn_worker, MODULE, [*common, "--model", prepared["model"]], threads)}
    if ORT in pythons:
        runners[ORT] = partial(
            peer_worker, ORT, pythons[ORT], "time", [*common, "--model", prepared[ORT]["path"]], threads
        )
    if LCE in pythons:
        runners[LCE] = partial(
            peer_worker,
            LCE,
            pythons[LCE],
            "time",
            [*common, "--model", prepared[LCE]["models"][str(batch_size)]["path"]],
            threads,
        )
    return runners


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        result = time_tinybnn(args.model, args.arrays, args.batch_size)
        print(json.dumps({**result, "openblas": openblas_core()}))
        return 0

    from ..data import load_dataset

    data = load_dataset("mnist", data_dir=args.data, download=False)
    if args.images > len(data.test_images):
        raise ArgumentError(f"--images {args.images}: the test set has {len(data.test_images)} digits")
    pythons = {ORT: args.ort_python or sys.executable, LCE: args.lce_python}
    for peer in (ORT, LCE):
        problem = peer_problem(peer, pythons[peer])
        if problem:
            print(problem)
            del pythons[peer]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        prepared, agree = check(args, data, folder, pythons)
        if args.check_only:
            return 0 if agree else 1
        versions = {peer: prepared[peer]["versions"] for peer in pythons}
        print(
            f"timing: {args.repeats} repeats, every contender in a fresh process after a warm-up; "
            f"peers: {json.dumps(versions)}"
        )
        cells: dict[tuple[int, int], dict[str, list[dict[str, Any]]]] = {}
        for batch_size in args.batch_sizes:
            count = args.images if batch_size > 1 else max(1, args.images // 5)
            arrays = write_arrays(folder / f"timed{batch_size}.npz", data.test_images[:count], data.test_labels[:count])
            runners = {
                (threads, name): runner
                for threads in args.threads
                for name, runner in contenders(args, prepared, pythons, arrays, batch_size, threads).items()
            }
            runs = paired_runs(
                runners,
                args.repeats,
                lambda key, result: print(
                    f"  batch {batch_size:>3}  {key[0]} thread(s)  {key[1]:13} "
                    f"{result['images'] / result['seconds']:>9,.0f} images/s",
                    flush=True,
                ),
            )
            for threads in args.threads:
                cells[batch_size, threads] = {name: runs[t, name] for t, name in runs if t == threads}
    print()
    print(results_table(cells))
    print()
    print(summary_table(cells))
    for line in thread_scaling(cells):
        print(line)
    if not agree:
        print("predictions disagree (see above)")
    return 0 if agree else 1


def results_table(cells: dict[tuple[int, int], dict[str, list[dict[str, Any]]]]) -> str:
    """One row per cell and contender: ms per batch, images/s, paired tinybnn / contender."""
    rows = []
    for (batch_size, threads), runs in cells.items():
        seconds = {name: [r["seconds"] for r in results] for name, results in runs.items()}
        for name, results in runs.items():
            images = results[0]["images"]
            core = results[0].get("openblas")
            rows.append(
                [
                    batch_size,
                    threads,
                    f"{name} [OpenBLAS {core}]" if core else name,
                    f"{1000 * median(seconds[name]) * batch_size / images:.3f}",
                    f"{images / median(seconds[name]):,.0f}",
                    paired_ratio(seconds, name, TINYBNN),
                ]
            )
    return format_table(["batch", "threads", "contender", "ms/batch", "images/s", "tinybnn / contender"], rows)


def summary_table(cells: dict[tuple[int, int], dict[str, list[dict[str, Any]]]]) -> str:
    """Images/s per contender (rows) and cell (columns), then the paired ratios tinybnn / peer."""
    names = list(next(iter(cells.values())))
    header = ["images/s"] + [f"batch {b}, {t} thread{'s' if t > 1 else ''}" for b, t in cells]
    rows = []
    for name in names:
        rows.append(
            [name]
            + [
                f"{runs[name][0]['images'] / median([r['seconds'] for r in runs[name]]):,.0f}"
                for runs in cells.values()
            ]
        )
    for name in names[1:]:
        ratios = []
        for runs in cells.values():
            seconds = {n: [r["seconds"] for r in results] for n, results in runs.items()}
            ratios.append(paired_ratio(seconds, name, TINYBNN) + "x")
        rows.append([f"tinybnn / {name}"] + ratios)
    return format_table(header, rows)


def thread_scaling(cells: dict[tuple[int, int], dict[str, list[dict[str, Any]]]]) -> list[str]:
    """For each batch size timed on more than one thread count, tinybnn's speed on each
    count over its speed on the fewest: the median of per-repeat ratios, which pair up
    because every repeat runs all thread counts back to back."""
    lines = []
    for batch_size in dict.fromkeys(b for b, _ in cells):
        counts = sorted(t for b, t in cells if b == batch_size)
        base = [r["seconds"] for r in cells[batch_size, counts[0]][TINYBNN]]
        for threads in counts[1:]:
            seconds = [r["seconds"] for r in cells[batch_size, threads][TINYBNN]]
            speed = median([b / s for b, s in zip(base, seconds)])
            lines.append(
                f"tinybnn, batch {batch_size}: {threads} threads run at {speed:.2f}x the speed of "
                f"{counts[0]} (median of {len(seconds)} paired repeats)"
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
