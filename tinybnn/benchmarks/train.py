"""Training speed: one epoch of LeNet on Fashion-MNIST, tinybnn against PyTorch.

    python scripts/bench_train.py --data ../shared/datasets               # float and binary LeNet, 1 and 2 threads
    tinybnn bench train --data ../shared/datasets --models lenet --threads 2

Every measurement is one epoch (60,000 images, batch 100, Adam) in a fresh
worker process after a few warm-up batches (Numba compilation and first-touch
page faults stay out of the timed region). Each repeat runs tinybnn with
OpenBLAS as the environment has it, tinybnn with ``OPENBLAS_CORETYPE=SkylakeX``,
and PyTorch (when installed; ``torch_worker.py``) back to back on the same
images; the table gives median seconds, the OpenBLAS kernel each worker
reported, and the median of the paired ratios tinybnn / PyTorch.

``--float-path`` adds, for binary models, tinybnn with its binary layers on
the float path (``use_float_path``: forward passes as float GEMMs on ±1
values instead of XNOR-popcount GEMMs; the backward pass is the same), and a
column of paired ratios against it: what the XNOR forward pass buys in
training.

``--before SRC`` adds tinybnn as another source tree has it (``SRC`` holds a
``tinybnn/`` package, e.g. ``git archive main | tar -x -C SRC``; its workers
run with ``PYTHONPATH=SRC``), and a column of paired ratios against it: a
change's speed-up, measured in the same rounds as everything else.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ArgumentError
from .workers import (
    SKYLAKEX,
    format_table,
    label,
    load_images,
    median,
    openblas_core,
    paired_ratio,
    paired_runs,
    run_worker,
    thread_environment,
    tinybnn_worker,
    torch_available,
    torch_worker,
    write_arrays,
)

MODULE = "tinybnn.benchmarks.train"

WARMUP_BATCHES = 5

FLOAT_PATH = "tinybnn, float path"
BEFORE = "tinybnn, before"


def warmup_starts(count: int, batch_size: int) -> list[int]:
    """Offsets of the untimed warm-up batches (full batches, wrapping around small sets)."""
    full = max(1, count // batch_size)
    return [(i % full) * batch_size for i in range(WARMUP_BATCHES)]


def time_tinybnn_epoch(
    model_name: str, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, float_path: bool = False
) -> float:
    from ..autograd import Tensor, softmax_cross_entropy
    from ..data import iterate_batches
    from ..layers import use_float_path
    from ..models import build_model
    from ..optim import Adam
    from ..workspace import Workspace

    rng = np.random.default_rng(seed)
    model, _ = build_model(model_name, rng=rng)
    use_float_path(model, float_path)
    optimizer = Adam(model.parameters(), lr=1e-3)
    memory = Workspace("training step")

    def step(images: np.ndarray, labels: np.ndarray) -> None:
        with memory.use():
            loss = softmax_cross_entropy(model(Tensor(images)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    for start in warmup_starts(len(x), batch_size):
        step(x[start : start + batch_size], y[start : start + batch_size])
    started = time.perf_counter()
    for images, labels in iterate_batches(x, y, batch_size, rng=rng):
        step(images, labels)
    return time.perf_counter() - started


#: prints, as the last line of JSON a worker prints, the folder of the tinybnn package Python imports
_WHICH_PACKAGE = "import json, os, tinybnn; print(json.dumps({'package': os.path.dirname(tinybnn.__file__)}))"


def check_imported_package(source: str, package: str) -> None:
    """Refuse a baseline whose worker imported a tinybnn other than ``source``'s own."""
    if Path(package).resolve() != Path(source).resolve() / "tinybnn":
        raise RuntimeError(f"--before {source}: the worker imported tinybnn from {package}, not that tree")


def before_worker(source: str, args: Sequence[str], threads: int) -> dict:
    """A worker of the tinybnn package in source tree ``source``, run from that folder.

    ``python -m`` puts the current folder first on the module path, ahead of
    PYTHONPATH, so the worker runs in ``source`` (and has it on PYTHONPATH too).
    Before it runs, a Python started the same way says which package it imports,
    which is checked to be ``source``'s (so trees too old to report it are checked
    too); so is the package the worker reports, where it does."""
    tree = Path(source).resolve()
    env = thread_environment(threads)
    env["PYTHONPATH"] = str(tree)
    check_imported_package(source, run_worker([sys.executable, "-c", _WHICH_PACKAGE], env, cwd=str(tree))["package"])
    result = run_worker([sys.executable, "-m", MODULE, "--worker", *args], env, cwd=str(tree))
    if "package" in result:
        check_imported_package(source, result["package"])
    return result


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tinybnn bench train", description=__doc__.splitlines()[0])
    p.add_argument("--data", help="folder with fashion-mnist/ (default: $TINYBNN_DATA or the cache)")
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    p.add_argument("--models", default="lenet,binary-lenet", help="comma-separated: lenet, binary-lenet")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--images", type=int, default=60000, help="images per timed epoch (default: all 60,000)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    p.add_argument("--no-skylakex", action="store_true", help="skip the OPENBLAS_CORETYPE=SkylakeX variant")
    p.add_argument(
        "--float-path", action="store_true", help="also time binary models with their binary layers on the float path"
    )
    p.add_argument("--before", metavar="SRC", help="also time the tinybnn package in source tree SRC (a baseline)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--arrays", help=argparse.SUPPRESS)
    p.add_argument("--model", default="lenet", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        x, y = load_images(args.arrays)
        epoch_seconds = time_tinybnn_epoch(args.model, x, y, args.batch_size, args.seed, args.float_path)
        package = str(Path(__file__).resolve().parents[1])
        print(json.dumps({"seconds": epoch_seconds, "images": len(x), "openblas": openblas_core(), "package": package}))
        return 0

    from ..data import load_dataset

    if args.before and not (Path(args.before) / "tinybnn" / "__init__.py").is_file():
        raise ArgumentError(f"--before {args.before}: no tinybnn/__init__.py in that folder")
    data = load_dataset(args.dataset, data_dir=args.data, download=False)
    with_torch = not args.no_torch and torch_available()
    print(
        f"training benchmark: {args.images:,} {args.dataset} images per epoch, batch {args.batch_size}, "
        f"Adam, {args.repeats} repeats; median seconds per epoch, median of paired ratios"
        + (
            ""
            if with_torch
            else " (--no-torch: tinybnn only)"
            if args.no_torch
            else " (PyTorch not installed: tinybnn only)"
        )
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        images, labels = data.train_images[: args.images], data.train_labels[: args.images]
        arrays = write_arrays(Path(folder) / "images.npz", images, labels)
        common = ["--arrays", str(arrays), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
        for model in args.models.split(","):
            for threads in [int(t) for t in args.threads.split(",")]:
                worker_args = [*common, "--model", model]
                contenders = {"tinybnn": lambda: tinybnn_worker(MODULE, worker_args, threads)}
                if not args.no_skylakex:
                    contenders["tinybnn, SkylakeX"] = lambda: tinybnn_worker(MODULE, worker_args, threads, SKYLAKEX)
                if args.float_path and model != "lenet":
                    contenders[FLOAT_PATH] = lambda: tinybnn_worker(MODULE, [*worker_args, "--float-path"], threads)
                if args.before:
                    contenders[BEFORE] = lambda: before_worker(args.before, worker_args, threads)
                if with_torch:
                    contenders["PyTorch"] = lambda: torch_worker("train", worker_args, threads)
                runs = paired_runs(
                    contenders,
                    args.repeats,
                    lambda name, result: print(
                        f"  {model:13} {threads} thread(s)  {name:18} {result['seconds']:7.2f} s", flush=True
                    ),
                )
                seconds = {name: [r["seconds"] for r in results] for name, results in runs.items()}
                for name, values in seconds.items():
                    rows.append(
                        [
                            model,
                            threads,
                            label(name, runs[name]),
                            f"{median(values):.2f}",
                            f"{len(images) / median(values):.0f}",
                            paired_ratio(seconds, name, "PyTorch"),
                            paired_ratio(seconds, name, FLOAT_PATH),
                            paired_ratio(seconds, name, BEFORE),
                        ]
                    )
    headers = [
        "model",
        "threads",
        "implementation",
        "s/epoch",
        "images/s",
        "x PyTorch's time",
        "x float path's time",
        "x before's time",
    ]
    wanted = {5: with_torch, 6: args.float_path, 7: bool(args.before)}
    shown = [i for i in range(len(headers)) if i < 5 or wanted[i]]
    print()
    print(format_table([headers[i] for i in shown], [[row[i] for i in shown] for row in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
