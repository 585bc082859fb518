"""What the peer benchmark's driver and its workers in other interpreters share: files, the timing loop.

NumPy and the standard library only: the ONNX Runtime and Larq Compute
Engine workers (``peers_ort.py``, ``peers_lce.py``) import this module from
their own virtual environments, which have no tinybnn. Nothing goes through
pickle.

- A *layer file* (``.npz``) holds a network as ``spec``, a JSON list of
  layers (UTF-8 bytes in a uint8 array), and each layer's arrays as members
  ``"<index>.<name>"``; the first entry is ``{"kind": "input", "input_shape": [C, H, W]}``.
- An *image file* is :func:`tinybnn.benchmarks.workers.write_arrays`' ``.npz``:
  uint8 ``images`` (N, H, W) and ``labels``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

#: batches run before the timed pass (compilation, caches, thread pools)
WARMUP_BATCHES = 20


def write_layers(path: str | Path, spec: list[dict]) -> Path:
    """Write a layer list whose arrays are NumPy values of its layers' dicts (to a path the caller created)."""
    listing, arrays = [], {}
    for i, layer in enumerate(spec):
        plain = {name: value for name, value in layer.items() if not isinstance(value, np.ndarray)}
        names = [name for name, value in layer.items() if isinstance(value, np.ndarray)]
        if names:
            plain["arrays"] = names
        for name in names:
            arrays[f"{i}.{name}"] = layer[name]
        listing.append(plain)
    np.savez(path, spec=np.frombuffer(json.dumps(listing).encode(), dtype=np.uint8), **arrays)
    return Path(path)


def read_layers(path: str | Path) -> list[dict]:
    """:func:`write_layers`' list back, each layer's arrays in its dict again."""
    with np.load(path, allow_pickle=False) as archive:
        spec = json.loads(archive["spec"].tobytes().decode())
        for i, layer in enumerate(spec):
            for name in layer.pop("arrays", []):
                layer[name] = archive[f"{i}.{name}"]
    return spec


def read_digits(path: str | Path, layout: str) -> np.ndarray:
    """An image file's uint8 (N, H, W) digits as float32 in [0, 1] (x / 255, as tinybnn reads
    them), laid out ``"nchw"`` (N, 1, H, W) or ``"nhwc"`` (N, H, W, 1)."""
    with np.load(path, allow_pickle=False) as arrays:
        images = arrays["images"].astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(images[:, None] if layout == "nchw" else images[..., None])


def timed_pass(run_batch: Callable[[np.ndarray], object], images: np.ndarray, batch_size: int) -> dict:
    """Seconds for one pass of ``run_batch`` over the images in batches (a whole number
    of them: a last partial batch is left out) after :data:`WARMUP_BATCHES` warm-up batches."""
    count = len(images) - len(images) % batch_size
    batches = [images[i : i + batch_size] for i in range(0, count, batch_size)]
    for i in range(WARMUP_BATCHES):
        run_batch(batches[i % len(batches)])
    start = time.perf_counter()
    for batch in batches:
        run_batch(batch)
    return {"seconds": time.perf_counter() - start, "images": count}


Task = Callable[[argparse.Namespace], dict]


def worker_main(
    prog: str, prepare: Task, time_passes: Task, options: dict[str, dict[str, Any]], argv: Sequence[str] | None = None
) -> int:
    """A peer worker's command line: ``prepare`` (build the peer's model from a layer file)
    or ``time`` (one timed pass), with the worker's own ``options``; prints one JSON line."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("task", choices=["prepare", "time"])
    p.add_argument("--arrays", required=True, help="the driver's .npz of uint8 images")
    p.add_argument("--layers", help="prepare: the driver's layer file")
    p.add_argument("--model", help="time: the model file prepare wrote")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    for flag, settings in options.items():
        p.add_argument(flag, **settings)
    args = p.parse_args(argv)
    print(json.dumps(prepare(args) if args.task == "prepare" else time_passes(args)))
    return 0
